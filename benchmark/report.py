"""Reports of saved runs: text tables (stdout), one-file HTML and Markdown.

``python -m benchmark.report RUN_DIR [RUN_DIR ...] [--out report.html]``
builds everything from the run files alone (results.json, confusion CSVs,
predictions npz), so a report can be rebuilt without re-running inference.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
import time
from pathlib import Path

from tabulate import tabulate

from benchmark.variants import EDGETPU_NAME, sweep_variants


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def accuracy_table(results: dict, fmt: str = "simple") -> str:
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
    return tabulate(rows, headers=["accuracy (95 % CI)", *splits],
                    tablefmt=fmt)


def entropy_table(results: dict, fmt: str = "simple") -> str:
    splits = list(results)
    variants = list(dict.fromkeys(v for r in results.values() for v in r["variants"]))
    rows = [[v, *(f"{results[s]['variants'][v]['mean_normalized_entropy']:.4f}"
                  if v in results[s]["variants"] else "" for s in splits)] for v in variants]
    if any("agreement" in r for r in results.values()):
        rows.append(["float = int8 (top-1)", *(_pct(results[s]["agreement"]["top1"])
                                               if "agreement" in results[s] else ""
                                               for s in splits)])
    return tabulate(rows, headers=["mean H / log K", *splits],
                    tablefmt=fmt)


def calibration_table(results: dict, fmt: str = "simple") -> str:
    """Rows = split/variant: ECE, MCE, NLL, Brier, mean confidence - accuracy."""
    rows = []
    for s, r in results.items():
        for v, m in r["variants"].items():
            c = m.get("calibration")
            if c:
                rows.append([f"{s}/{v}", f"{100 * c['ece']:.2f} %", f"{100 * c['mce']:.2f} %",
                             f"{c['nll']:.4f}", f"{c['brier']:.4f}", f"{100 * c['gap']:+.2f} %"])
    return tabulate(rows, headers=["calibration", "ECE (15 bins)", "MCE", "NLL", "Brier",
                                   "conf - acc"], disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def swap_table(results: dict, fmt: str = "simple") -> str:
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
                    disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def sweep_table(results: dict, fmt: str = "simple") -> str:
    """Weight-bit sweep (variants ``w<b>``): accuracy and swap statistics against float."""
    rows = []
    for s, r in results.items():
        for v, var in sweep_variants(r["variants"]):
            m, sw = r["variants"][v], r.get("swaps", {}).get(v, {})
            ratio = sw.get("ratio", float("nan"))
            rows.append([s, str(var.weight_bits), _pct(m["accuracy"]),
                         f"{sw.get('swapped_pct', 0):.2f} %",
                         f"{sw.get('delta_error_pct', 0):+.2f} %",
                         "n/a" if ratio != ratio else f"{ratio:.3f}",
                         f"{100 * m['calibration']['ece']:.2f} %"])
    return tabulate(rows, headers=["weight-bit sweep", "bits", "accuracy", "swapped",
                                   "delta error", "ratio", "ECE"],
                    disable_numparse=True, stralign="right", tablefmt=fmt)


def latency_table(results: dict, fmt: str = "simple") -> str:
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
                    disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def attribution_table(results: dict, fmt: str = "simple") -> str:
    """float -> int8 (CPU) -> int8 (Edge TPU), per split."""
    rows = []
    for s, r in results.items():
        a = r.get("attribution")
        if a:
            acc, same = a["accuracy"], a["int8_cpu_vs_edgetpu"]
            rows.append([s, _pct(acc["float"]) if "float" in acc else "", _pct(acc["int8"]),
                         _pct(acc[EDGETPU_NAME]), _pct(same["top1"]),
                         f"{same['max_abs_prob_diff']:.4f}"])
    return tabulate(rows, headers=["attribution", "float", "int8 CPU", "int8 Edge TPU",
                                   "same top-1 CPU/TPU", "max |diff|"],
                    disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def histogram_table(results: dict, key: str, fmt: str = "simple") -> str:
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
    return tabulate(rows, headers=headers, disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def print_tables(results: dict, file=None) -> None:
    """Print all blog-style tables for ``{split: split_result}``."""
    for _, table in _tables(results, "simple"):
        print(table, file=file)
        print(file=file)
    print("Certainty histogram (probability given to the true class)", file=file)
    print(histogram_table(results, "certainty_histogram"), file=file)
    print(file=file)
    print("Histogram of all output values", file=file)
    print(histogram_table(results, "output_histogram"), file=file)


def _tables(results: dict, fmt: str) -> list[tuple[str, str]]:
    """(title, table) of every summary table the results have data for."""
    variants = [(v, m) for r in results.values() for v, m in r["variants"].items()]
    out = [("Accuracy", accuracy_table(results, fmt)),
           ("Mean normalized entropy", entropy_table(results, fmt))]
    if any(m.get("calibration") for _, m in variants):
        out.append(("Calibration", calibration_table(results, fmt)))
    if any(r.get("swaps") for r in results.values()):
        out.append(("Swapped predictions", swap_table(results, fmt)))
    if any(sweep_variants(r["variants"]) for r in results.values()):
        out.append(("Weight-bit sweep", sweep_table(results, fmt)))
    if any(r.get("attribution") for r in results.values()):
        out.append(("Attribution", attribution_table(results, fmt)))
    if any(m.get("latency") for _, m in variants):
        out.append(("Latency", latency_table(results, fmt)))
    return out


# ---------------------------------------------------------------- saved runs


def load_run(run_dir: Path):
    """A saved run, read through :func:`benchmark.rundir.read_run` (DataError if unreadable)."""
    from benchmark.rundir import read_run
    return read_run(run_dir)


def split_figures(sr) -> list[tuple[str, object]]:
    """(title, Figure) pairs for one split (a :class:`benchmark.rundir.SplitRun`)."""
    from benchmark import plots
    from benchmark.metrics import normalized_entropy
    res = sr.record
    variants = list(res["variants"])
    names = res["class_names"]
    figs = []
    cms = {v: sr.confusion(v) for v in variants if sr.has_confusion(v)}
    # side by side: the reference, the int8 model and the device; sweep variants are in tables
    shown = {v: cms[v] for v in ("float", "int8", EDGETPU_NAME) if v in cms} or cms
    if shown:
        figs.append(("Confusion matrices (row-normalized)", plots.confusion_pair(shown, names)))
    for key, title, xlabel in (
            ("certainty_histogram", "Certainty: probability given to the true class",
             "probability of the true class"),
            ("output_histogram", "All output values", "output value")):
        h = {v: res["variants"][v][key] for v in variants}
        fig = plots.histograms(h, title=title, xlabel=xlabel, log=True)
        figs.append((title + " (log counts)", fig))
    ent = {v: normalized_entropy(sr.predictions(v)["probs"]) for v in variants
           if sr.has_predictions(v)}
    if ent:
        figs.append(("Entropy distributions", plots.entropy_distributions(ent)))
    rel = {v: res["variants"][v]["calibration"]["reliability"] for v in variants
           if res["variants"][v].get("calibration")}
    if rel:
        figs.append(("Reliability diagram and confidence histogram", plots.reliability(rel)))
    quant = [v for v in variants if v != "float"]
    if "float" in cms and quant and quant[0] in cms:
        figs.append(("Recall changes", plots.recall_changes(cms["float"], cms[quant[0]], names,
                                                            labels=("float", quant[0]))))
    sw = {v: h["swapped_by_confidence"] for v, h in res.get("swaps", {}).items()
          if v != "reference"}
    if sw:
        figs.append(("Swapped predictions over float confidence", plots.swapped_vs_confidence(sw)))
    sweep = sorted((var.weight_bits, res["swaps"][v]) for v, var in sweep_variants(res["variants"])
                   if v in res.get("swaps", {}))
    if len(sweep) > 1:
        b = [x[0] for x in sweep]
        figs.append(("Weight-bit sweep", plots.bit_sweep(
            b, [x[1]["swapped_pct"] for x in sweep], [x[1]["delta_error_pct"] for x in sweep],
            [x[1]["ratio"] for x in sweep])))
    # latency dicts without raw samples (older runs) only get the table
    lat = {v: m["latency"]["samples_ms"] for v, m in res["variants"].items()
           if (m.get("latency") or {}).get("samples_ms")}
    if lat:
        figs.append(("Latency", plots.latency_distributions(lat)))
    return figs


def _png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


_CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px}
th{background:#f2f2f2}.diff{background:#ffe08a}img{max-width:100%;display:block;margin:0.5em 0}
code,pre{background:#f6f6f6}h2{border-bottom:1px solid #ddd}"""


COMPARE_KEYS = (("accuracy", "accuracy"), ("mean_normalized_entropy", "mean H/log K"))


def comparison_rows(runs: list[dict]) -> tuple[list[str], list[list]]:
    """Rows = metric per split/variant, columns = runs (None where absent)."""
    keys = []
    for run in runs:
        for s, sr in run.splits.items():
            for v in sr.record["variants"]:
                for k, label in COMPARE_KEYS + (("ece", "ECE"),):
                    if (s, v, k, label) not in keys:
                        keys.append((s, v, k, label))
    rows = []
    for s, v, k, label in keys:
        row = [f"{s}/{v} {label}"]
        for run in runs:
            sr = run.splits.get(s)
            m = sr.record["variants"].get(v) if sr is not None else None
            val = None
            if m is not None:
                val = m.get("calibration", {}).get("ece") if k == "ece" else m.get(k)
            row.append(val)
        rows.append(row)
    return [str(r.dir) for r in runs], rows


def comparison_html(runs: list[dict]) -> str:
    """The multi-run comparison as an HTML section.

    Parameters
    ----------
    runs : list of dict
        Runs as returned by :func:`load_run`; the first one is the reference.

    Returns
    -------
    str
        ``<h2>Comparison</h2>`` and a table with one row per metric (split/variant
        accuracy, mean normalized entropy, ECE) and one column per run; cells that
        differ from the first run's value have ``class='diff'``.
    """
    heads, rows = comparison_rows(runs)
    parts = ["<h2>Comparison</h2><p>Cells that differ from the first run are "
             "highlighted.</p><table class='comparison'><tr><th>metric</th>"
             + "".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>"]
    for row in rows:
        first = row[1]
        cells = []
        for i, val in enumerate(row[1:]):
            txt = "" if val is None else f"{val:.4f}"
            cls = " class='diff'" if i and val is not None and first is not None \
                and abs(val - first) > 1e-12 else ""
            cells.append(f"<td{cls}>{txt}</td>")
        parts.append(f"<tr><td>{html.escape(row[0])}</td>{''.join(cells)}</tr>")
    parts.append("</table>")
    return "".join(parts)


def build_html(runs: list[dict]) -> str:
    """One self-contained page: no external CSS, JS, fonts or images."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             "<title>edgetpu-bench report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>edgetpu-bench report</h1>"]
    if len(runs) > 1:
        parts.append(comparison_html(runs))
    for run in runs:
        results = run.records()
        top = run.top
        parts.append(f"<h2>Run {html.escape(str(run.dir))}</h2>")
        env = top.get("environment", {})
        parts.append("<details><summary>config and environment</summary><pre>"
                     + html.escape(json.dumps({"config": top.get("config"), "environment": env},
                                              indent=2)) + "</pre></details>")
        for title, table in _tables(results, "html"):
            parts.append(f"<h3>{html.escape(title)}</h3>{table}")
        for key, title in (("certainty_histogram", "Certainty histogram"),
                           ("output_histogram", "Histogram of all outputs")):
            parts.append(f"<h3>{title}</h3>{histogram_table(results, key, 'html')}")
        for split, sr in run.splits.items():
            for title, fig in split_figures(sr):
                parts.append(f"<h3>{html.escape(split)}: {html.escape(title)}</h3>"
                             f"<img alt='{html.escape(title)}' "
                             f"src='data:image/png;base64,{_png_b64(fig)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_markdown(runs: list[dict]) -> str:
    """Summary tables for pasting into an issue or a README."""
    out = []
    for run in runs:
        results = run.records()
        env = run.top.get("environment", {})
        out.append(f"## Run `{run.dir}` (git {env.get('git')})\n")
        for title, table in _tables(results, "github"):
            out.append(f"**{title}**\n\n{table}\n")
    if len(runs) > 1:
        heads, rows = comparison_rows(runs)
        out.append("**Comparison**\n\n" + tabulate(
            [[r[0], *("" if v is None else f"{v:.4f}" for v in r[1:])] for r in rows],
            headers=["metric", *heads], tablefmt="github") + "\n")
    return "\n".join(out)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def write_figures(run_dir: Path, fig_dir: Path) -> list[Path]:
    """Save every figure of a run as ``<split>_<title>.png`` in ``fig_dir``."""
    from benchmark.results import atomic_write_bytes
    run = load_run(run_dir)
    paths = []
    for split, sr in run.splits.items():
        for title, fig in split_figures(sr):
            path = Path(fig_dir) / f"{split}_{_slug(title)}.png"
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            atomic_write_bytes(path, buf.getvalue())
            paths.append(path)
    return paths


def figure_dirs(run_dirs, fig_dir: Path) -> list[Path]:
    """Where each run's figures go: ``fig_dir`` for one run, ``fig_dir/<i>-<name>`` for several."""
    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) == 1:
        return [Path(fig_dir)]
    return [Path(fig_dir) / f"{i + 1}-{_slug(d.resolve().name) or 'run'}"
            for i, d in enumerate(run_dirs)]


def save_all_figures(run_dirs, fig_dir: Path) -> list[Path]:
    """Every figure of every run (see :func:`figure_dirs`)."""
    paths = []
    for run_dir, d in zip(run_dirs, figure_dirs(run_dirs, fig_dir)):
        paths += write_figures(run_dir, d)
    return paths


def write_report(run_dirs, out: Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md``; return their paths."""
    from benchmark.results import atomic_write_bytes
    runs = [load_run(Path(d)) for d in run_dirs]
    if out is None:
        out = runs[0].dir / "report.html" if len(runs) == 1 else Path("report.html")
    out = Path(out)
    atomic_write_bytes(out, build_html(runs).encode())
    md = out.with_suffix(".md")
    atomic_write_bytes(md, build_markdown(runs).encode())
    return out, md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.report",
                                description="Build report.html (self-contained) and report.md "
                                            "from saved run directories.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories (benchmark.run --out)")
    p.add_argument("--out", type=Path, default=None,
                   help="HTML file (default RUN_DIR/report.html for one run, ./report.html "
                        "for several); report.md goes beside it")
    p.add_argument("--figures", type=Path, default=None, metavar="DIR",
                   help="also save every figure as PNG files in DIR (one sub-folder per run "
                        "when several runs are given)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    html_path, md_path = write_report(args.runs, args.out)
    if args.figures:
        for path in save_all_figures(args.runs, args.figures):
            print(f"wrote {path}")
    print(f"wrote {html_path} ({html_path.stat().st_size // 1024} KiB) and {md_path} in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    from benchmark.cli import main_wrapper
    sys.exit(main_wrapper("benchmark.report", main))
