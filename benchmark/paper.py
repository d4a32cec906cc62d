"""The paper's figures as data: ``python -m benchmark.paper``.

Xia et al., "An Underexplored Dilemma between Confidence and Calibration in
Quantized Neural Networks": Figure 1 is the float model's reliability curve
and confidence histogram, Figure 2 the share of swapped predictions, the
change in error rate and their ratio as weight bits drop (8 -> 4 at 8-bit
activations), with histograms of the swapped predictions over the float
model's confidence. This command runs ``benchmark.run`` with the float, int8
and ``w<b>`` variants and writes, next to the run's own files:

- ``paper_fig1_reliability.csv``: 15 equal-count (as in the paper) and 15
  equal-width reliability bins of the float model;
- ``paper_fig1_confidence.csv``: float confidence histogram, correct and wrong;
- ``paper_fig2_sweep.csv``: per variant: bits, accuracy, % swapped,
  delta error, ratio, ECE, and where the swaps sit (share of swaps and of all
  images at float confidence < 0.5, median float confidence of the swaps);
- ``paper_fig2_swaps_by_confidence.csv``: swapped / all counts in 50
  equal-width bins of float confidence per variant;
- ``paper.json`` (all of it) and ``paper_fig1.png`` / ``paper_fig2.png``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tabulate import tabulate

from benchmark.cli import main_wrapper
from benchmark.config import OBSERVERS, make_config
from benchmark.errors import UsageError
from benchmark.metrics.calibration import expected_calibration_error, reliability_bins
from benchmark.metrics.swaps import swapped_confidence_histogram
from benchmark.paths import PROJECT_ROOT
from benchmark.results import write_csv, write_json

LOW_CONFIDENCE = 0.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmark.paper",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet56", help="registered model (default resnet56)")
    p.add_argument("--dataset", help="dataset (default: the model's)")
    p.add_argument("--data-dir", help="the dataset's files")
    p.add_argument("--weights", help="pretrained weights (required for the CIFAR ResNets)")
    p.add_argument("--split", default="verification", choices=("full", "verification", "all"))
    p.add_argument("--weight-bits", default="8,7,6,5,4", metavar="B,B,...",
                   help="weight bit widths of the sweep (default 8,7,6,5,4)")
    p.add_argument("--act-observer", choices=OBSERVERS, default="minmax",
                   help="activation ranges of the int8 model (the paper: mse)")
    p.add_argument("--swap-bins", type=int, default=50,
                   help="equal-width float-confidence bins of the swap histograms (default 50)")
    p.add_argument("--reliability-bins", type=int, default=15, help="default 15")
    p.add_argument("--limit", type=int, help="evaluate N evenly spaced images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-threads", type=int)
    p.add_argument("--model-dir")
    p.add_argument("--cache-dir")
    p.add_argument("--out", help="run directory (default runs/paper-<model>-<UTC time>)")
    p.add_argument("--no-plots", action="store_true", help="tables and CSV only")
    return p.parse_args(argv)


def figure1(probs: np.ndarray, labels: np.ndarray, *, n_bins: int, hist_bins: int) -> dict:
    """Reliability bins (equal-count and equal-width) and confidence histogram of one model."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, hist_bins + 1)
    idx = np.clip(np.ceil(np.round(conf * hist_bins, 9)).astype(np.int64) - 1, 0, hist_bins - 1)
    return {
        "reliability_equal_count": reliability_bins(probs, labels, n_bins=n_bins,
                                                    strategy="quantile"),
        "reliability_equal_width": reliability_bins(probs, labels, n_bins=n_bins),
        "confidence_histogram": {"edges": edges,
                                 "correct": np.bincount(idx[correct], minlength=hist_bins),
                                 "wrong": np.bincount(idx[~correct], minlength=hist_bins)},
        "accuracy": float(correct.mean()), "mean_confidence": float(conf.mean()),
        "ece": expected_calibration_error(probs, labels, n_bins=n_bins)}


def swap_location(ref: np.ndarray, q: np.ndarray, *, threshold: float = LOW_CONFIDENCE) -> dict:
    """Where swaps sit on the float model's confidence: the paper's claim in three numbers.

    Examples
    --------
    >>> ref = np.array([[.9, .1], [.45, .55], [.6, .4], [.3, .7]])
    >>> q = np.array([[.9, .1], [.6, .4], [.4, .6], [.3, .7]])
    >>> loc = swap_location(ref, q)
    >>> loc["swaps"], loc["swaps_low_conf_share"], round(loc["median_conf"], 6)
    (2, 0.0, 0.65)
    """
    conf = ref.max(1)
    sw = ref.argmax(1) != q.argmax(1)
    low = conf < threshold
    return {"swaps": int(sw.sum()),
            "swaps_low_conf_share": float(low[sw].mean()) if sw.any() else float("nan"),
            "all_low_conf_share": float(low.mean()),
            "median_swapped_conf": float(np.median(conf[sw])) if sw.any() else float("nan"),
            "median_conf": float(np.median(conf))}


def _bits(variant: str) -> int:
    return 8 if variant == "int8" else int(variant[1:])


def analyse_split(split_dir: Path, result: dict, *, n_bins: int, swap_bins: int) -> dict:
    """Figure 1 and Figure 2 data of one split's run directory."""
    def load(v):
        with np.load(split_dir / f"predictions_{v}.npz") as z:
            return z["probs"].astype(np.float64), z["labels"]
    ref, labels = load("float")
    out = {"figure1": figure1(ref, labels, n_bins=n_bins, hist_bins=swap_bins), "figure2": []}
    order = ["int8"] + sorted((v for v in result["variants"] if v[:1] == "w" and v[1:].isdigit()),
                              key=lambda v: -int(v[1:]))
    for v in order:
        if v not in result["variants"]:
            continue
        q, _ = load(v)
        sw = result["swaps"][v]
        hist = swapped_confidence_histogram(ref, q, bins=swap_bins)
        out["figure2"].append(dict(
            variant=v, bits=_bits(v), accuracy=result["variants"][v]["accuracy"],
            swapped_pct=sw["swapped_pct"], delta_error_pct=sw["delta_error_pct"],
            ratio=sw["ratio"], ece=result["variants"][v]["calibration"]["ece"],
            **swap_location(ref, q), histogram=hist))
    return out


def write_outputs(out: Path, analyses: dict) -> None:
    rel_rows, conf_rows, sweep_rows, hist_rows = [], [], [], []
    for split, a in analyses.items():
        f1 = a["figure1"]
        for strategy in ("equal_count", "equal_width"):
            r = f1[f"reliability_{strategy}"]
            for b in range(len(r["counts"])):
                rel_rows.append([split, strategy, b, f"{r['edges'][b]:.6f}",
                                 f"{r['edges'][b + 1]:.6f}", int(r["counts"][b]),
                                 f"{r['mean_confidence'][b]:.6f}", f"{r['accuracy'][b]:.6f}"])
        h = f1["confidence_histogram"]
        for b in range(len(h["correct"])):
            conf_rows.append([split, f"{h['edges'][b]:.4f}", f"{h['edges'][b + 1]:.4f}",
                              int(h["correct"][b]), int(h["wrong"][b])])
        for row in a["figure2"]:
            sweep_rows.append([split, row["variant"], row["bits"], f"{row['accuracy']:.6f}",
                               f"{row['swapped_pct']:.4f}", f"{row['delta_error_pct']:.4f}",
                               f"{row['ratio']:.4f}", f"{row['ece']:.6f}", row["swaps"],
                               f"{row['swaps_low_conf_share']:.4f}",
                               f"{row['all_low_conf_share']:.4f}",
                               f"{row['median_swapped_conf']:.4f}"])
            hh = row["histogram"]
            for b in range(len(hh["swapped_counts"])):
                hist_rows.append([split, row["variant"], f"{hh['edges'][b]:.4f}",
                                  f"{hh['edges'][b + 1]:.4f}", hh["swapped_counts"][b],
                                  hh["all_counts"][b]])
    write_csv(out / "paper_fig1_reliability.csv",
              ["split", "binning", "bin", "low", "high", "count", "mean_confidence", "accuracy"],
              rel_rows)
    write_csv(out / "paper_fig1_confidence.csv", ["split", "low", "high", "correct", "wrong"],
              conf_rows)
    write_csv(out / "paper_fig2_sweep.csv",
              ["split", "variant", "weight_bits", "accuracy", "swapped_pct", "delta_error_pct",
               "ratio", "ece", "swaps", "swaps_low_conf_share", "all_low_conf_share",
               "median_swapped_conf"], sweep_rows)
    write_csv(out / "paper_fig2_swaps_by_confidence.csv",
              ["split", "variant", "low", "high", "swapped", "all"], hist_rows)
    write_json(out / "paper.json", analyses)


def tables(analyses: dict, model: str) -> str:
    rows1, rows2 = [], []
    for split, a in analyses.items():
        f1 = a["figure1"]
        rel = f1["reliability_equal_count"]
        gap = np.nansum((rel["mean_confidence"] - rel["accuracy"]) * rel["counts"]) / max(
            int(rel["counts"].sum()), 1)
        rows1.append([f"{model} {split}", f"{100 * f1['accuracy']:.2f} %",
                      f"{100 * f1['mean_confidence']:.2f} %", f"{100 * f1['ece']:.2f} %",
                      f"{100 * gap:+.2f} %"])
        for r in a["figure2"]:
            ratio = "n/a" if r["ratio"] != r["ratio"] else f"{r['ratio']:.3f}"
            low = ("n/a" if r["swaps_low_conf_share"] != r["swaps_low_conf_share"]
                   else f"{100 * r['swaps_low_conf_share']:.0f} %")
            rows2.append([f"{model} {split}", r["variant"], f"{100 * r['accuracy']:.2f} %",
                          f"{r['swapped_pct']:.2f} %", f"{r['delta_error_pct']:+.2f} %", ratio,
                          f"{r['swaps']}", low, f"{100 * r['all_low_conf_share']:.0f} %"])
    t1 = tabulate(rows1, headers=["Figure 1 (float)", "accuracy", "mean confidence",
                                  "ECE (15 bins)", "conf - acc"],
                  disable_numparse=True, stralign="right")
    t2 = tabulate(rows2, headers=["Figure 2", "variant", "accuracy", "swapped", "delta error",
                                  "ratio", "swaps", "swaps at conf<0.5", "all at conf<0.5"],
                  disable_numparse=True, stralign="right")
    return f"{t1}\n\n{t2}\n"


def plot(out: Path, analyses: dict) -> list[Path]:
    from benchmark import plots

    written = []
    rels = {f"{s} float": a["figure1"]["reliability_equal_count"] for s, a in analyses.items()}
    fig = plots.reliability({k: {kk: np.asarray(vv).tolist() for kk, vv in v.items()}
                             for k, v in rels.items()})
    fig.axes[0].set_title("Reliability (15 equal-count bins), float model")
    written.append(out / "paper_fig1.png")
    fig.savefig(written[-1], dpi=110)
    for split, a in analyses.items():
        rows = a["figure2"]
        if not rows:
            continue
        fig = plots.bit_sweep([r["bits"] for r in rows if r["variant"] != "int8"],
                              [r["swapped_pct"] for r in rows if r["variant"] != "int8"],
                              [r["delta_error_pct"] for r in rows if r["variant"] != "int8"],
                              [r["ratio"] for r in rows if r["variant"] != "int8"])
        written.append(out / f"paper_fig2_sweep_{split}.png")
        fig.savefig(written[-1], dpi=110)
        fig = plots.swapped_vs_confidence({r["variant"]: r["histogram"] for r in rows})
        written.append(out / f"paper_fig2_swaps_{split}.png")
        fig.savefig(written[-1], dpi=110)
    return written


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.swap_bins < 1 or a.reliability_bins < 1:
        raise UsageError("--swap-bins and --reliability-bins must be >= 1")
    out = a.out or str(PROJECT_ROOT / "runs" / (
        f"paper-{a.model}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"))
    cfg = make_config({"model": a.model, "dataset": a.dataset, "data_dir": a.data_dir,
                       "weights": a.weights, "split": a.split, "weight_bits": a.weight_bits,
                       "act_observer": a.act_observer, "limit": a.limit, "seed": a.seed,
                       "num_threads": a.num_threads, "model_dir": a.model_dir,
                       "cache_dir": a.cache_dir, "out": out, "report": False})
    from benchmark.run import run
    run_dir, results = run(cfg, tables=False)
    analyses = {}
    for split, r in results.items():
        split_dir = run_dir / split if len(results) > 1 else run_dir
        analyses[split] = analyse_split(split_dir, r, n_bins=a.reliability_bins,
                                        swap_bins=a.swap_bins)
    write_outputs(run_dir, analyses)
    text = tables(analyses, a.model)
    (run_dir / "paper_tables.txt").write_text(text)
    print(text, end="")
    if not a.no_plots:
        plot(run_dir, analyses)
    print(f"paper data in {run_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.paper", main))
