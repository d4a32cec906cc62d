"""Figures from saved run data (draw only: arrays in, figures out, no file I/O).

Two kinds of figure functions, all module-level and taking plain data (lists,
dicts, numpy arrays) so that :func:`render` can run them in worker processes:

- matplotlib figures (``histograms``, ``reliability``, ...) return a
  ``matplotlib.figure.Figure`` with fixed margins (no layout engine, which
  used to be ~40 % of every ``savefig``); no pyplot state, no GUI backend;
- confusion-matrix heatmaps (``confusion_image``, ``confusion_overview``)
  return PNG bytes drawn directly with numpy and Pillow: one ``cell x cell``
  pixel block per class pair, no axes (the report puts the labels in HTML).

:func:`render` turns any of them into PNG bytes; for a matplotlib function with a
Pillow twin in :data:`benchmark.charts.TWINS` (the report's histograms,
entropy, reliability, recall-change and latency figures) it draws the twin
(same data, no matplotlib import: milliseconds instead of a second for a new
report). Bump :data:`RENDER_VERSION` when a figure's drawing changes: it is
part of the report's figure-cache key.
"""

from __future__ import annotations

import io

import numpy as np

from benchmark.charts import decade as _decade
from benchmark.charts import recall_delta  # noqa: F401  (re-exported)

#: Part of every cached figure's key; bump when any drawing below changes.
RENDER_VERSION = 5
#: Resolution of the matplotlib figures (pixels per inch).
DPI = 90
#: Up to this many classes the report shows the full confusion matrix.
FULL_MATRIX_MAX_CLASSES = 100
#: Side of a heatmap in pixels the cell size aims at.
HEATMAP_PX = 400
#: Viridis at 0, 1/8, ..., 1 (for an HTML colour bar without matplotlib).
VIRIDIS_STOPS = ("#440154", "#472c7b", "#3a528b", "#2c728e", "#20908c", "#28ae7f", "#5ec961",
                 "#addc30", "#fde724")


def _figure(w: float, h: float, ncols: int = 1, *, left: float = 0.75, right: float = 0.2,
            bottom: float = 0.6, top: float = 0.4, wspace: float = 0.0):
    """A ``w x h`` inch Figure with ``ncols`` axes and fixed margins given in inches.

    ``wspace`` is the gap between axes in inches.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h))
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    _margins(fig, left=left, right=right, bottom=bottom, top=top, wspace=wspace, ncols=ncols)
    return fig, axes


def _margins(fig, *, left, right, bottom, top, wspace=0.0, hspace=0.0, ncols=1, nrows=1):
    """``subplots_adjust`` with margins and gaps in inches."""
    w, h = fig.get_size_inches()
    axis_w = (w - left - right - wspace * (ncols - 1)) / ncols
    axis_h = (h - bottom - top - hspace * (nrows - 1)) / nrows
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=wspace / axis_w, hspace=hspace / axis_h)


def _log(axis) -> None:
    """Log-scale ticks at the decades with plain-text labels: mathtext labels and the ~8
    minor ticks a decade were a quarter of a figure's drawing time."""
    from matplotlib.ticker import FuncFormatter, NullLocator
    axis.set_major_formatter(FuncFormatter(_decade))
    axis.set_minor_locator(NullLocator())


def _title(ax, text: str) -> None:
    """A title at the top of the axes (y given: no search for ticks above the axes)."""
    ax.set_title(text, y=1.0)


def render(func, kwargs: dict) -> bytes:
    """PNG bytes of ``func(**kwargs)`` (a Figure is saved at :data:`DPI`, bytes pass through).

    A function of this module with a Pillow twin (:data:`benchmark.charts.TWINS`) is drawn
    by the twin. Module-level and picklable: the report runs it in worker processes.
    """
    out = twin(func)(**kwargs)
    if isinstance(out, (bytes, bytearray)):
        return bytes(out)
    buf = io.BytesIO()
    out.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def twin(func):
    """The function :func:`render` draws ``func`` with: its Pillow twin, else ``func``."""
    from benchmark import charts
    if getattr(func, "__module__", None) == __name__:
        return charts.TWINS.get(func.__name__, func)
    return func


def needs_matplotlib(func) -> bool:
    """Whether :func:`render` draws ``func`` with matplotlib (heatmaps and twins do not)."""
    return twin(func) is func and func not in (confusion_image, confusion_overview)


def warm_up(draw: bool = False) -> None:
    """Import what :func:`render` needs; with ``draw``, also draw a small figure (loads the
    font and fills the text-layout caches, which forked workers then inherit)."""
    from matplotlib import colormaps  # noqa: F401
    from matplotlib.backends import backend_agg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401
    if draw:
        fig = histograms({"a": {"edges": [0.0, 0.5, 1.0], "counts": [1, 100]}}, title="t",
                         xlabel="x", log=True)
        fig.savefig(io.BytesIO(), format="png", dpi=DPI)


# ---------------------------------------------------------------- confusion heatmaps


def row_normalized(cm) -> np.ndarray:
    """Each row divided by its sum (rows of zeros stay zero)."""
    m = np.asarray(cm, np.float64)
    return m / np.maximum(m.sum(axis=1, keepdims=True), 1)


def heatmap_cell(k: int) -> int:
    """Pixels per cell of a ``k x k`` heatmap: about :data:`HEATMAP_PX` wide, 2..16 px."""
    return int(max(2, min(16, HEATMAP_PX // max(k, 1))))


def heatmap_png(values, *, cell: int, vmax: float = 1.0) -> bytes:
    """PNG of a matrix coloured with viridis on ``[0, vmax]``; ``cell x cell`` px per entry.

    Entry ``(i, j)`` fills rows ``i*cell .. (i+1)*cell - 1`` and columns
    ``j*cell .. (j+1)*cell - 1`` with matplotlib's viridis colour of
    ``values[i, j] / vmax``.
    """
    from PIL import Image

    from benchmark.charts import viridis
    v = np.asarray(values, np.float64) / (vmax or 1.0)
    rgb = viridis(v)
    rgb = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def confusion_image(cm, *, normalize: bool = True, cell: int | None = None) -> bytes:
    """The full confusion matrix (rows = true class) as a heatmap PNG, one cell per class pair.

    Row-normalized on ``[0, 1]`` by default, else counts on ``[0, max]``.
    """
    m = np.asarray(cm, np.float64)
    cell = heatmap_cell(m.shape[0]) if cell is None else cell
    if normalize:
        return heatmap_png(row_normalized(m), cell=cell)
    return heatmap_png(m, cell=cell, vmax=float(m.max()) or 1.0)


def overview_blocks(k: int, max_blocks: int = FULL_MATRIX_MAX_CLASSES) -> int:
    """Classes per block of the overview of a ``k``-class matrix (at most ``max_blocks`` a side)."""
    return max(1, -(-k // max_blocks))


def block_matrix(cm, block: int) -> np.ndarray:
    """Row-normalized matrix summed over ``block x block`` class blocks, averaged over true rows.

    Entry ``(I, J)`` is the mean, over the true classes of block ``I``, of the
    fraction predicted in block ``J``; rows still sum to 1 (or 0).
    """
    f = row_normalized(cm)
    k = f.shape[0]
    nb = -(-k // block)
    pad = np.zeros((nb * block, nb * block))
    pad[:k, :k] = f
    sums = pad.reshape(nb, block, nb, block).sum(axis=(1, 3))
    rows = np.minimum(block, k - block * np.arange(nb))
    return sums / rows[:, None]


def confusion_overview(cm, *, max_blocks: int = FULL_MATRIX_MAX_CLASSES,
                       cell: int | None = None) -> bytes:
    """A downsampled heatmap of a large confusion matrix: at most ``max_blocks`` cells a side.

    Its size does not grow with the class count (see :func:`block_matrix`).
    """
    b = block_matrix(cm, overview_blocks(np.asarray(cm).shape[0], max_blocks))
    return heatmap_png(b, cell=heatmap_cell(b.shape[0]) if cell is None else cell)


def top_confusions(cms: dict, k: int = 20) -> list[tuple[int, int]]:
    """The ``k`` off-diagonal ``(true, predicted)`` pairs with most images summed over ``cms``.

    Pairs without any image are left out; ties keep row-major order.
    """
    total = None
    for cm in cms.values():
        m = np.asarray(cm, np.int64)
        total = m.copy() if total is None else total + m
    np.fill_diagonal(total, 0)
    flat = total.ravel()
    n = min(k, int(np.count_nonzero(flat)))
    if n == 0:
        return []
    cand = np.argpartition(-flat, n - 1)[:n] if n < flat.size else np.arange(flat.size)
    cand = cand[np.lexsort((cand, -flat[cand]))][:n]
    return [(int(i) // total.shape[1], int(i) % total.shape[1]) for i in cand]


# ---------------------------------------------------------------- matplotlib figures


def confusion_pair(cms: dict, class_names, *, normalize: bool = True):
    """Confusion matrices side by side as a matplotlib Figure (rows = true class).

    For interactive use; the report draws :func:`confusion_image` instead.
    """
    n = len(cms)
    k = len(class_names)
    size = max(4.0, 0.16 * k + 2)
    fig, axes = _figure((size - 0.6) * n + 1.2, size, n, left=1.2, right=1.2, bottom=1.2,
                        top=0.4, wspace=1.2 if n > 1 else 0.0)
    for ax, (name, cm) in zip(axes, cms.items()):
        m = row_normalized(cm) if normalize else np.asarray(cm, np.float64)
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=1 if normalize else None)
        _title(ax, name)
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
    if log:
        _log(ax.yaxis)
    ax.set_xlim(0, 1)
    _title(ax, title)
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
    _log(ax.yaxis)
    ax.set_xlabel("normalized entropy H / log K")
    ax.set_ylabel("images (log)")
    _title(ax, "Output entropy")
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
    fig = Figure(figsize=(6.4, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    _margins(fig, left=0.75, right=0.2, bottom=0.6, top=0.4, hspace=0.15, nrows=2)
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, r in rels.items():
        conf = np.asarray([np.nan if v is None else v for v in r["mean_confidence"]], float)
        acc = np.asarray([np.nan if v is None else v for v in r["accuracy"]], float)
        ok = np.isfinite(conf)
        top.plot(conf[ok], acc[ok], marker="o", label=name)
        h = (hists or {}).get(name, r)
        bottom.stairs(h["counts"], np.asarray(h["edges"], float), label=name)
    top.set_ylabel("accuracy")
    _title(top, title)
    top.legend()
    bottom.set_yscale("log")
    _log(bottom.yaxis)
    bottom.set_xlabel("confidence (top-1 probability)")
    bottom.set_ylabel("images (log)")
    return fig


def recall_changes(cm_ref, cm_q, class_names, *, top: int = 10, labels=("float", "int8")):
    """The classes whose recall changed most between two confusion matrices."""
    order, delta = recall_delta(cm_ref, cm_q, top)
    names = [str(class_names[i]) for i in order]
    # 7 pt labels: about 0.06 inch a character, plus the tick and the axis padding
    left = min(3.0, 0.35 + 0.055 * max((len(s) for s in names), default=1))
    fig, (ax,) = _figure(6.4, 0.35 * len(order) + 1.2, left=left, bottom=0.55, top=0.35)
    ax.barh(range(len(order)), 100 * delta[order],
            color=["tab:red" if d < 0 else "tab:green" for d in delta[order]])
    ax.set_yticks(range(len(order)), names, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"recall change {labels[1]} - {labels[0]} (percentage points)")
    _title(ax, "Classes whose recall changed most")
    return fig


def latency_distributions(samples: dict):
    """Per-variant latency histograms (ms)."""
    fig, (ax,) = _figure(6.4, 3.6)
    for name, s in samples.items():
        ax.hist(np.asarray(s), bins=40, histtype="step", linewidth=1.5, label=name)
    ax.set_xlabel("invoke latency (ms)")
    ax.set_ylabel("invokes")
    _title(ax, "Latency")
    ax.legend()
    return fig


def swapped_vs_confidence(swaps: dict):
    """Swapped predictions over the float model's confidence (the paper's Figure 2 style)."""
    return histograms({name: {"edges": h["edges"], "counts": h["swapped_counts"]}
                       for name, h in swaps.items()},
                      title="Where predictions swap", xlabel="float confidence",
                      ylabel="swapped predictions")


def bit_sweep(bits, swapped_pct, delta_error_pct, ratio, what: str = "weight"):
    """% swapped, change in error rate and their ratio against weight (or ``what``) bits
    (Figure 2 style)."""
    fig, (left, right) = _figure(9.0, 3.4, 2, wspace=0.9)
    left.plot(bits, swapped_pct, marker="o", label="% swapped")
    left.plot(bits, delta_error_pct, marker="s", label="delta error (pp)")
    left.set_xlabel(f"{what} bits")
    left.set_ylabel("percent of images")
    left.invert_xaxis()
    left.legend()
    right.plot(bits, ratio, marker="o", color="tab:purple")
    right.set_xlabel(f"{what} bits")
    right.set_ylabel("delta error / swapped")
    right.invert_xaxis()
    _title(right, "share of swaps that became new errors")
    return fig


def _short(names, width: int = 28) -> list[str]:
    return [n if len(n) <= width else "…" + n[-(width - 1):] for n in names]


def diagnose_saturation(names, eval_pct, calibration_pct):
    """% of each tensor's values saturating on the eval and the calibration images."""
    fig, (ax,) = _figure(9.0, 3.8, left=0.8, bottom=2.0)
    x = np.arange(len(names))
    ax.bar(x - 0.2, eval_pct, width=0.4, label="eval")
    ax.bar(x + 0.2, calibration_pct, width=0.4, label="calibration")
    ax.set_xticks(x, _short(names), rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("% of values saturated")
    ax.legend()
    _title(ax, "saturation per tensor (float values outside the int8 range)")
    return fig


def diagnose_histograms(hists: dict, *, cols: int = 4):
    """int8 value histograms per tensor (eval and calibration); the grid's limits are the
    axes' ends (``-128``/``127``), marked in red. ``hists``: name -> (eval, calibration)."""
    from matplotlib.figure import Figure
    rows = max(1, -(-len(hists) // cols))
    fig = Figure(figsize=(3.0 * cols, 2.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    _margins(fig, left=0.4, right=0.2, bottom=0.4, top=0.3, wspace=0.4, hspace=0.55,
             ncols=cols, nrows=rows)
    x = np.arange(256)
    for ax, (name, (ev, cal)) in zip(axes, hists.items()):
        for h, label in ((ev, "eval"), (cal, "calibration")):
            h = np.asarray(h, float)
            if h.sum():
                ax.step(x, h / h.sum(), where="mid", label=label, lw=0.8)
        ax.axvline(0, color="red", lw=0.8)
        ax.axvline(255, color="red", lw=0.8)
        ax.set_yscale("log")
        _log(ax.yaxis)
        ax.set_title(_short([name], 36)[0], fontsize=7, y=1.0)
        ax.tick_params(labelsize=6)
    for ax in axes[len(hists):]:
        ax.set_visible(False)
    if hists:
        axes[0].legend(fontsize=6)
    return fig


def diagnose_layer_error(names, layer_db, accumulated_db):
    """SQNR (dB) per tensor: the op's own (layer) error and the accumulated error."""
    fig, (ax,) = _figure(9.0, 3.8, left=0.8, bottom=2.0)
    x = np.arange(len(names))
    for vals, label, marker in ((layer_db, "layer (op on int8 inputs)", "o"),
                                (accumulated_db, "accumulated (float model)", "s")):
        v = np.array([np.nan if d is None or not np.isfinite(d) else d for d in vals], float)
        ax.plot(x, v, marker=marker, label=label)
    ax.set_xticks(x, _short(names), rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("SQNR (dB)")
    ax.legend()
    _title(ax, "per-layer error, float vs int8")
    return fig


def calibration_sweep(curves: dict):
    """Change in accuracy (points) vs calibration size per split: median (line) and worst
    (dashed) over the seeded draws. ``curves``: split -> [(size, median, worst), ...]."""
    fig, (ax,) = _figure(6.0, 3.6)
    for split, pts in curves.items():
        pts = sorted(pts)
        x = [p[0] for p in pts]
        line, = ax.plot(x, [p[1] for p in pts], marker="o", label=f"{split} median")
        ax.plot(x, [p[2] for p in pts], ls="--", marker="v", color=line.get_color(),
                label=f"{split} worst")
    ax.set_xscale("log")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("calibration images")
    ax.set_ylabel("int8 - float accuracy (points)")
    ax.legend(fontsize=7)
    _title(ax, "accuracy vs calibration size")
    return fig
