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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tabulate import tabulate

from benchmark.cli import main_wrapper
from benchmark.config import RunConfig, make_config
from benchmark.errors import UsageError
from benchmark.metrics.calibration import expected_calibration_error, reliability_bins
from benchmark.metrics.swaps import swapped_confidence_histogram
from benchmark.results import atomic_write_bytes, write_csv, write_json
from benchmark.variants import sweep_variants

LOW_CONFIDENCE = 0.5


#: What the paper's command sets differently from benchmark.run's defaults.
PAPER_DEFAULTS = {"model": "resnet56", "weight_bits": "8,7,6,5,4", "report": False}


@dataclass(frozen=True)
class PaperConfig:
    """benchmark.paper's settings: a run configuration plus the figures' binning."""

    run: RunConfig
    swap_bins: int = 50
    reliability_bins: int = 15
    plots: bool = True

    def validate(self) -> "PaperConfig":
        if self.swap_bins < 1 or self.reliability_bins < 1:
            raise UsageError("--swap-bins and --reliability-bins must be >= 1")
        if not self.run.weight_bits:
            raise UsageError("--weight-bits must name at least one bit width")
        return self


def parse_args(argv=None) -> PaperConfig:
    """The paper's command line: every ``benchmark.run`` option plus the figures' options."""
    from benchmark.run import add_run_arguments, split_cli_dataset_options
    p = argparse.ArgumentParser(prog="python -m benchmark.paper",
                                description=__doc__.split("\n")[0])
    add_run_arguments(p, skip=("report", "variants"))
    p.add_argument("--swap-bins", type=int, default=50,
                   help="equal-width float-confidence bins of the swap histograms (default 50)")
    p.add_argument("--reliability-bins", type=int, default=15, help="default 15")
    p.add_argument("--no-plots", action="store_true", help="tables and CSV only")
    a = vars(p.parse_args(argv))
    swap_bins, rel_bins, no_plots = a.pop("swap_bins"), a.pop("reliability_bins"), \
        a.pop("no_plots")
    config_file, _ = a.pop("config"), a.pop("quiet")
    split_cli_dataset_options(a)
    run_cfg = replace(make_config(a, config_file, defaults=PAPER_DEFAULTS), report=False)
    return PaperConfig(run=run_cfg, swap_bins=swap_bins, reliability_bins=rel_bins,
                       plots=not no_plots).validate()


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


def analyse_split(split, *, n_bins: int, swap_bins: int) -> dict:
    """Figure 1 and Figure 2 data of one split (a :class:`benchmark.pipeline.SplitResult`)."""
    result = split.record

    def load(v):
        p = split.variants[v].predictions
        return p.probs.astype(np.float64), p.labels
    ref, labels = load("float")
    out = {"figure1": figure1(ref, labels, n_bins=n_bins, hist_bins=swap_bins), "figure2": []}
    order = [("int8", 8)] + [(v, var.weight_bits)
                             for v, var in sweep_variants(result["variants"])]
    for v, bits in order:
        if v not in result["variants"]:
            continue
        q, _ = load(v)
        sw = result["swaps"][v]
        hist = swapped_confidence_histogram(ref, q, bins=swap_bins)
        out["figure2"].append(dict(
            variant=v, bits=bits, accuracy=result["variants"][v]["accuracy"],
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


def _savefig(fig, path: Path) -> Path:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(path, buf.getvalue())
    return path


def figure1_plot(analyses: dict):
    """Figure 1: equal-count reliability curve over an equal-width confidence histogram."""
    from benchmark import plots
    rels = {f"{s} float": a["figure1"]["reliability_equal_count"] for s, a in analyses.items()}
    # The lower panel is a confidence histogram: equal-width bins (equal-count ones are flat).
    hists = {f"{s} float": a["figure1"]["reliability_equal_width"] for s, a in analyses.items()}
    return plots.reliability({k: {kk: np.asarray(vv).tolist() for kk, vv in v.items()}
                              for k, v in rels.items()},
                             hists={k: {"edges": np.asarray(v["edges"]).tolist(),
                                        "counts": np.asarray(v["counts"]).tolist()}
                                    for k, v in hists.items()},
                             title="Reliability (15 equal-count bins), float model")


def plot(out: Path, analyses: dict) -> list[Path]:
    from benchmark import plots

    written = [_savefig(figure1_plot(analyses), out / "paper_fig1.png")]
    for split, a in analyses.items():
        rows = [r for r in a["figure2"] if r["variant"] != "int8"]
        if not rows:
            continue
        fig = plots.bit_sweep([r["bits"] for r in rows], [r["swapped_pct"] for r in rows],
                              [r["delta_error_pct"] for r in rows], [r["ratio"] for r in rows])
        written.append(_savefig(fig, out / f"paper_fig2_sweep_{split}.png"))
        fig = plots.swapped_vs_confidence({r["variant"]: r["histogram"]
                                           for r in a["figure2"]})
        written.append(_savefig(fig, out / f"paper_fig2_swaps_{split}.png"))
    return written


def main(argv=None) -> int:
    cfg = parse_args(argv)
    from benchmark.pipeline import run_result
    result = run_result(cfg.run, tables=False, default_prefix=f"paper-{cfg.run.model}-")
    analyses = {split: analyse_split(sr, n_bins=cfg.reliability_bins, swap_bins=cfg.swap_bins)
                for split, sr in result.splits.items()}
    write_outputs(result.out, analyses)
    text = tables(analyses, cfg.run.model)
    atomic_write_bytes(result.out / "paper_tables.txt", text.encode())
    print(text, end="")
    if cfg.plots:
        plot(result.out, analyses)
    print(f"paper data in {result.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.paper", main))
