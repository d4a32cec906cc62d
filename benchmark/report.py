"""Text tables in the blog's shape (accuracy, entropy, histograms)."""

from __future__ import annotations

from tabulate import tabulate


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def accuracy_table(results: dict) -> str:
    """Rows = variants, columns = splits: accuracy with its 95 % interval."""
    splits = list(results)
    variants = list(dict.fromkeys(v for r in results.values() for v in r["variants"]))
    rows = []
    for v in variants:
        row = [v]
        for s in splits:
            m = results[s]["variants"].get(v)
            if m is None:
                row.append("")
                continue
            ci = m["accuracy_interval"]
            row.append(f"{_pct(m['accuracy'])} [{100 * ci['low']:.2f}, {100 * ci['high']:.2f}]"
                       f" n={m['n']}")
        rows.append(row)
    return tabulate(rows, headers=["accuracy (95 % CI)", *splits])


def entropy_table(results: dict) -> str:
    splits = list(results)
    variants = list(dict.fromkeys(v for r in results.values() for v in r["variants"]))
    rows = [[v, *(f"{results[s]['variants'][v]['mean_normalized_entropy']:.4f}"
                  if v in results[s]["variants"] else "" for s in splits)] for v in variants]
    if any("agreement" in r for r in results.values()):
        rows.append(["float = int8 (top-1)", *(_pct(results[s]["agreement"]["top1"])
                                               if "agreement" in results[s] else ""
                                               for s in splits)])
    return tabulate(rows, headers=["mean H / log K", *splits])


def histogram_table(results: dict, key: str) -> str:
    """Bins as rows; count and fraction per split and variant as columns."""
    headers, columns, edges = ["bin"], [], None
    for s, r in results.items():
        for v, m in r["variants"].items():
            h = m[key]
            edges = h["edges"]
            headers += [f"{s}/{v} n", "%"]
            columns.append(h)
    rows = []
    for i in range(len(edges) - 1):
        row = [f"{edges[i]:.2f}-{edges[i + 1]:.2f}"]
        for h in columns:
            row += [h["counts"][i], f"{100 * h['fractions'][i]:.2f}"]
        rows.append(row)
    return tabulate(rows, headers=headers, disable_numparse=True, stralign="right")


def print_tables(results: dict, file=None) -> None:
    """Print all blog-style tables for ``{split: split_result}``."""
    print(accuracy_table(results), file=file)
    print(file=file)
    print(entropy_table(results), file=file)
    print(file=file)
    print("Certainty histogram (probability given to the true class)", file=file)
    print(histogram_table(results, "certainty_histogram"), file=file)
    print(file=file)
    print("Histogram of all output values", file=file)
    print(histogram_table(results, "output_histogram"), file=file)
