"""Figures from saved run data (draw only: arrays in, matplotlib Figures out, no I/O).

Uses ``matplotlib.figure.Figure`` directly, so no pyplot state and no GUI
backend are involved; callers render with ``fig.savefig``.
"""

from __future__ import annotations

import numpy as np


def _figure(w: float, h: float, ncols: int = 1):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def confusion_pair(cms: dict, class_names, *, normalize: bool = True):
    """Confusion matrices side by side (rows = true class), row-normalized by default."""
    n = len(cms)
    k = len(class_names)
    size = max(4.0, 0.16 * k + 2)
    fig, axes = _figure(size * n, size, n)
    for ax, (name, cm) in zip(axes, cms.items()):
        m = np.asarray(cm, np.float64)
        if normalize:
            m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=1 if normalize else None)
        ax.set_title(name)
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=6)
        ax.set_yticks(range(k), class_names, fontsize=6)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.colorbar(im, ax=list(axes), shrink=0.6, label="fraction of true class" if normalize
                 else "count")
    return fig


def histograms(hists: dict, *, title: str, xlabel: str, log: bool = False,
               ylabel: str = "count"):
    """Grouped bar histograms on [0, 1]; ``hists`` maps a label to ``{edges, counts}``."""
    fig, (ax,) = _figure(6.4, 3.6)
    n = len(hists)
    for i, (name, h) in enumerate(hists.items()):
        edges = np.asarray(h["edges"], np.float64)
        width = np.diff(edges) / (n + 0.5)
        ax.bar(edges[:-1] + i * width, h["counts"], width=width, align="edge", label=name,
               log=log)
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (log)" if log else ""))
    ax.legend()
    return fig


def entropy_distributions(entropies: dict, *, bins: int = 20):
    """Histograms of per-sample normalized entropy H / log K, log counts."""
    fig, (ax,) = _figure(6.4, 3.6)
    edges = np.linspace(0, 1, bins + 1)
    for name, h in entropies.items():
        ax.hist(np.asarray(h), bins=edges, histtype="step", linewidth=1.5, label=name, log=True)
    ax.set_xlabel("normalized entropy H / log K")
    ax.set_ylabel("images (log)")
    ax.set_title("Output entropy")
    ax.legend()
    return fig


def reliability(rels: dict, *, hists: dict | None = None,
                title: str = "Reliability (15 equal-width bins)"):
    """Reliability diagrams (accuracy vs confidence per bin) above confidence histograms.

    ``hists`` (``name -> {edges, counts}``) gives the lower panel's histograms;
    by default it shows the reliability bins' own counts, which is only a
    histogram when those bins have equal width (equal-count bins would draw a
    flat line by construction).
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, r in rels.items():
        conf = np.asarray([np.nan if v is None else v for v in r["mean_confidence"]], float)
        acc = np.asarray([np.nan if v is None else v for v in r["accuracy"]], float)
        ok = np.isfinite(conf)
        top.plot(conf[ok], acc[ok], marker="o", label=name)
        h = (hists or {}).get(name, r)
        bottom.stairs(h["counts"], np.asarray(h["edges"], float), label=name)
    top.set_ylabel("accuracy")
    top.set_title(title)
    top.legend()
    bottom.set_yscale("log")
    bottom.set_xlabel("confidence (top-1 probability)")
    bottom.set_ylabel("images (log)")
    return fig


def recall_changes(cm_ref, cm_q, class_names, *, top: int = 10, labels=("float", "int8")):
    """The classes whose recall changed most between two confusion matrices."""
    ref = np.asarray(cm_ref, float)
    q = np.asarray(cm_q, float)
    r_ref = np.diag(ref) / np.maximum(ref.sum(1), 1)
    r_q = np.diag(q) / np.maximum(q.sum(1), 1)
    delta = r_q - r_ref
    order = np.argsort(-np.abs(delta), kind="stable")[:top]
    fig, (ax,) = _figure(6.4, 0.35 * len(order) + 1.2)
    ax.barh(range(len(order)), 100 * delta[order],
            color=["tab:red" if d < 0 else "tab:green" for d in delta[order]])
    ax.set_yticks(range(len(order)), [class_names[i] for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"recall change {labels[1]} - {labels[0]} (percentage points)")
    ax.set_title("Classes whose recall changed most")
    return fig


def latency_distributions(samples: dict):
    """Per-variant latency histograms (ms)."""
    fig, (ax,) = _figure(6.4, 3.6)
    for name, s in samples.items():
        ax.hist(np.asarray(s), bins=40, histtype="step", linewidth=1.5, label=name)
    ax.set_xlabel("invoke latency (ms)")
    ax.set_ylabel("invokes")
    ax.set_title("Latency")
    ax.legend()
    return fig


def swapped_vs_confidence(swaps: dict):
    """Swapped predictions over the float model's confidence (the paper's Figure 2 style)."""
    return histograms({name: {"edges": h["edges"], "counts": h["swapped_counts"]}
                       for name, h in swaps.items()},
                      title="Where predictions swap", xlabel="float confidence",
                      ylabel="swapped predictions")


def bit_sweep(bits, swapped_pct, delta_error_pct, ratio):
    """% swapped, change in error rate and their ratio against weight bits (Figure 2 style)."""
    fig, (left, right) = _figure(9.0, 3.4, 2)
    left.plot(bits, swapped_pct, marker="o", label="% swapped")
    left.plot(bits, delta_error_pct, marker="s", label="delta error (pp)")
    left.set_xlabel("weight bits")
    left.set_ylabel("percent of images")
    left.invert_xaxis()
    left.legend()
    right.plot(bits, ratio, marker="o", color="tab:purple")
    right.set_xlabel("weight bits")
    right.set_ylabel("delta error / swapped")
    right.invert_xaxis()
    right.set_title("share of swaps that became new errors")
    return fig
