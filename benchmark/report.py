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


def calibration_table(results: dict) -> str:
    """Rows = split/variant: ECE, MCE, NLL, Brier, mean confidence - accuracy."""
    rows = []
    for s, r in results.items():
        for v, m in r["variants"].items():
            c = m.get("calibration")
            if c:
                rows.append([f"{s}/{v}", f"{100 * c['ece']:.2f} %", f"{100 * c['mce']:.2f} %",
                             f"{c['nll']:.4f}", f"{c['brier']:.4f}", f"{100 * c['gap']:+.2f} %"])
    return tabulate(rows, headers=["calibration", "ECE (15 bins)", "MCE", "NLL", "Brier",
                                   "conf - acc"], disable_numparse=True, stralign="right")


def swap_table(results: dict) -> str:
    """The paper's swap statistics of each quantized variant against float, per split."""
    rows = []
    for s, r in results.items():
        for v, sw in r.get("swaps", {}).items():
            if v == "reference":
                continue
            ratio = "n/a" if sw["ratio"] != sw["ratio"] else f"{sw['ratio']:.3f}"
            ci = sw["accuracy_change"]
            rows.append([f"{s}/{v}", f"{sw['swapped_pct']:.2f} %",
                         f"{sw['delta_error_pct']:+.2f} %", ratio,
                         f"{sw['right_to_wrong']}/{sw['wrong_to_right']}/{sw['wrong_to_wrong']}",
                         f"{sw['mcnemar_p']:.3g}",
                         f"[{100 * ci['low']:+.2f}, {100 * ci['high']:+.2f}] %"])
    return tabulate(rows, headers=["vs float", "swapped", "delta error", "ratio",
                                   "R->W/W->R/W->W", "McNemar p", "delta acc 95 % CI"],
                    disable_numparse=True, stralign="right")


def latency_table(results: dict) -> str:
    """Per split/variant latency statistics (only variants that measured it)."""
    rows = []
    for s, r in results.items():
        for v, m in r["variants"].items():
            lat = m.get("latency")
            if lat:
                rows.append([f"{s}/{v}", m["device"], f"{lat['mean_ms']:.3f}",
                             f"{lat['std_ms']:.3f}", f"{lat['p50_ms']:.3f}",
                             f"{lat['p90_ms']:.3f}", f"{lat['p99_ms']:.3f}",
                             f"{lat['throughput_per_s']:.0f}", f"{lat['first_invoke_ms']:.3f}",
                             m.get("model_bytes", "")])
    return tabulate(rows, headers=["latency (ms)", "device", "mean", "std", "p50", "p90", "p99",
                                   "per s", "first", "bytes"],
                    disable_numparse=True, stralign="right")


def attribution_table(results: dict) -> str:
    """float -> int8 (CPU) -> int8 (Edge TPU), per split."""
    rows = []
    for s, r in results.items():
        a = r.get("attribution")
        if a:
            acc, same = a["accuracy"], a["int8_cpu_vs_edgetpu"]
            rows.append([s, _pct(acc["float"]) if "float" in acc else "", _pct(acc["int8"]),
                         _pct(acc["int8-edgetpu"]), _pct(same["top1"]),
                         f"{same['max_abs_prob_diff']:.4f}"])
    return tabulate(rows, headers=["attribution", "float", "int8 CPU", "int8 Edge TPU",
                                   "same top-1 CPU/TPU", "max |diff|"],
                    disable_numparse=True, stralign="right")


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
    if any(m.get("calibration") for r in results.values() for m in r["variants"].values()):
        print(calibration_table(results), file=file)
        print(file=file)
    if any(r.get("swaps") for r in results.values()):
        print(swap_table(results), file=file)
        print(file=file)
    if any(r.get("attribution") for r in results.values()):
        print(attribution_table(results), file=file)
        print(file=file)
    if any(m.get("latency") for r in results.values() for m in r["variants"].values()):
        print(latency_table(results), file=file)
        print(file=file)
    print("Certainty histogram (probability given to the true class)", file=file)
    print(histogram_table(results, "certainty_histogram"), file=file)
    print(file=file)
    print("Histogram of all output values", file=file)
    print(histogram_table(results, "output_histogram"), file=file)
