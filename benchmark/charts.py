"""Report charts drawn with Pillow and numpy (no matplotlib): PNG bytes in milliseconds.

The report's simple figures (histograms, step histograms, reliability
diagrams, recall-change bars, latency histograms) as PNG bytes, the same
data and layout as the matplotlib functions of :mod:`benchmark.plots` they
stand in for (:data:`TWINS`): fixed pixel margins, DejaVu Sans (the font
matplotlib ships, read as a file, matplotlib is not imported), matplotlib's
"tab10" colours, log axes labelled at the decades. A new run's report used
to spend most of its time importing matplotlib and laying out text; these
draw a figure in ~10 ms. Drawing is deterministic for given Pillow and font
versions, which are part of the report's figure-cache key.
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np

#: matplotlib's default colour cycle ("tab10").
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")
#: Pixels per inch of the sizes below (the same as :data:`benchmark.plots.DPI`).
DPI = 90
#: matplotlib's viridis as 256 RGB rows (``colormaps["viridis"](range(256), bytes=True)``).
VIRIDIS = np.frombuffer(bytes.fromhex(
    "44015444025544035745055845065a45085b46095c460b5e460c5f460e61470f62471163471265471466471567"
    "47166947186a48196b481a6c481c6e481d6f481e70482071482172482273482374472575472676472777472878"
    "472a79472b7a472c7b462d7c462f7c46307d46317e45327f45347f453580453681443781443982433a83433b83"
    "433c84423d84423e854240854141864142864043874044873f45873f47883e48883e49893d4a893d4b893d4c89"
    "3c4d8a3c4e8a3b508a3b518a3a528b3a538b39548b39558b38568b38578c37588c37598c365a8c365b8c355c8c"
    "355d8c345e8d345f8d33608d33618d32628d32638d31648d31658d31668d30678d30688d2f698d2f6a8d2e6b8e"
    "2e6c8e2e6d8e2d6e8e2d6f8e2c708e2c718e2c728e2b738e2b748e2a758e2a768e2a778e29788e29798e287a8e"
    "287a8e287b8e277c8e277d8e277e8e267f8e26808e26818e25828e25838d24848d24858d24868d23878d23888d"
    "23898d22898d228a8d228b8d218c8d218d8c218e8c208f8c20908c20918c1f928c1f938b1f948b1f958b1f968b"
    "1e978a1e988a1e998a1e998a1e9a891e9b891e9c891e9d881e9e881e9f881ea0871fa1871fa2861fa38620a485"
    "20a58521a68521a78422a78423a88323a98224aa8225ab8126ac8127ad8028ae7f29af7f2ab07e2bb17d2cb17d"
    "2eb27c2fb37b30b47a32b57a33b67935b77836b87738b97639b9763bba753dbb743ebc7340bd7242be7144be70"
    "45bf6f47c06e49c16d4bc26c4dc26b4fc36951c46853c56755c66657c66559c7645bc8625ec96160c96062ca5f"
    "64cb5d67cc5c69cc5b6bcd596dce5870ce5672cf5574d05477d05279d1517cd24f7ed24e81d34c83d34b86d449"
    "88d5478bd5468dd64490d64392d74195d73f97d83e9ad83c9dd93a9fd938a2da37a5da35a7db33aadb32addc30"
    "afdc2eb2dd2cb5dd2bb7dd29bade27bdde26bfdf24c2df22c5df21c7e01fcae01ecde01dcfe11cd2e11bd4e11a"
    "d7e219dae218dce218dfe318e1e318e4e318e7e419e9e419ece41aeee51bf1e51cf3e51ef6e61ff8e621fae622"
    "fde724"
), np.uint8).reshape(256, 3)


def viridis(v) -> np.ndarray:
    """RGB bytes of ``v`` in [0, 1] (clipped) as matplotlib's viridis colours them."""
    i = np.floor(np.clip(np.asarray(v, np.float64), 0.0, 1.0) * 256).astype(np.int64)
    return VIRIDIS[np.minimum(i, 255)]


@functools.lru_cache(maxsize=None)
def font_path() -> str | None:
    """DejaVu Sans as shipped with matplotlib (found without importing it), else None."""
    import importlib.util
    import os
    spec = importlib.util.find_spec("matplotlib")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = os.path.join(loc, "mpl-data", "fonts", "ttf", "DejaVuSans.ttf")
        if os.path.isfile(p):
            return p
    return None


@functools.lru_cache(maxsize=None)
def font(size: int):
    from PIL import ImageFont
    path = font_path()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size)


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k steps) covering ``[lo, hi]``, about ``n`` of them.

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0, 37)
    [0.0, 10.0, 20.0, 30.0]
    """
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [float(round(k * step, 12)) for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075"
                             "\u2076\u2077\u2078\u2079")


def decade(value, _pos=None) -> str:
    """``10`` with a superscript exponent at powers of ten, else nothing (no mathtext).

    >>> [decade(v) for v in (1, 1000, 0.01, 20)]
    ['10⁰', '10³', '10⁻²', '']
    """
    if value <= 0:
        return ""
    e = float(np.log10(value))
    if abs(e - round(e)) > 1e-9:
        return ""
    return "10" + str(int(round(e))).translate(_SUPERSCRIPT)


def _fmt(v: float) -> str:
    return f"{v:g}"


def recall_delta(cm_ref, cm_q, top: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(the ``top`` classes by largest absolute recall change, per-class recall q - ref)."""
    ref = np.asarray(cm_ref, float)
    q = np.asarray(cm_q, float)
    delta = np.diag(q) / np.maximum(q.sum(1), 1) - np.diag(ref) / np.maximum(ref.sum(1), 1)
    return np.argsort(-np.abs(delta), kind="stable")[:top], delta


def log_limits(values) -> tuple[float, float]:
    """Decades around the positive ``values`` (``(1, 10)`` when there are none)."""
    v = np.asarray(values, np.float64)
    v = v[v > 0]
    if v.size == 0:
        return 1.0, 10.0
    lo, hi = math.floor(math.log10(v.min())), math.ceil(math.log10(v.max()))
    return 10.0 ** lo, 10.0 ** max(hi, lo + 1)


class Panel:
    """One pair of axes at pixel box ``(x0, y0, x1, y1)`` of a Pillow image."""

    def __init__(self, img, box, xlim, ylim, *, xlog=False, ylog=False):
        from PIL import ImageDraw
        self.img, self.box = img, box
        self.draw = ImageDraw.Draw(img)
        self.xlim, self.ylim, self.xlog, self.ylog = xlim, ylim, xlog, ylog

    def _t(self, v, lim, log):
        if log:
            v, lim = np.log10(np.maximum(v, 1e-300)), np.log10(lim)
        return (np.asarray(v, np.float64) - lim[0]) / ((lim[1] - lim[0]) or 1.0)

    def px(self, x):
        x0, _, x1, _ = self.box
        return x0 + self._t(x, self.xlim, self.xlog) * (x1 - x0)

    def py(self, y):
        _, y0, _, y1 = self.box
        return y1 - self._t(y, self.ylim, self.ylog) * (y1 - y0)

    def clip_y(self, y):
        return np.clip(self.py(y), self.box[1], self.box[3])

    def rect(self, x0, x1, y0, y1, color) -> None:
        """A filled rectangle in data coordinates, clipped to the axes."""
        a, b = sorted((float(self.px(x0)), float(self.px(x1))))
        c, d = sorted((float(self.clip_y(y0)), float(self.clip_y(y1))))
        if b - a >= 0.5 and d - c >= 0.5:
            self.draw.rectangle([round(a), round(c), max(round(b) - 1, round(a)), round(d)],
                                fill=color)

    def line(self, xs, ys, color, width: int = 2, dash: bool = False) -> None:
        px, py = self.px(np.asarray(xs, float)), self.clip_y(np.asarray(ys, float))
        pts = [(float(x), float(y)) for x, y in zip(px, py) if np.isfinite(x) and np.isfinite(y)]
        if dash:
            for a, b in zip(pts[:-1], pts[1:]):
                n = max(1, int(math.hypot(b[0] - a[0], b[1] - a[1]) // 6))
                for k in range(0, n, 2):
                    p = [a[i] + (b[i] - a[i]) * k / n for i in (0, 1)]
                    q = [a[i] + (b[i] - a[i]) * min(k + 1, n) / n for i in (0, 1)]
                    self.draw.line([tuple(p), tuple(q)], fill=color, width=width)
        elif len(pts) > 1:
            self.draw.line(pts, fill=color, width=width, joint="curve")

    def markers(self, xs, ys, color, r: int = 3) -> None:
        for x, y in zip(self.px(np.asarray(xs, float)), self.py(np.asarray(ys, float))):
            if np.isfinite(x) and np.isfinite(y):
                self.draw.ellipse([x - r, y - r, x + r, y + r], fill=color)

    def stairs(self, counts, edges, color, width: int = 2) -> None:
        """A step outline: ``counts[i]`` over ``[edges[i], edges[i + 1]]`` (0 where empty)."""
        c = np.asarray(counts, np.float64)
        e = np.asarray(edges, np.float64)
        floor = self.ylim[0]
        y = np.where(c > 0, c, floor) if self.ylog else c
        xs = np.repeat(e, 2)[1:-1]
        ys = np.repeat(y, 2)
        self.line(np.r_[e[0], xs, e[-1]], np.r_[floor, ys, floor], color, width)

    def ticks(self) -> tuple[list, list]:
        """(x ticks, y ticks) inside the limits: decades on log axes, round steps else."""
        def one(lim, log):
            if log:
                lo, hi = math.ceil(math.log10(lim[0]) - 1e-9), math.floor(math.log10(lim[1]))
                return [10.0 ** k for k in range(lo, hi + 1)]
            return [t for t in nice_ticks(*lim) if lim[0] - 1e-9 <= t <= lim[1] + 1e-9]
        return one(self.xlim, self.xlog), one(self.ylim, self.ylog)

    def frame(self, *, xlabel="", ylabel="", title="", yticklabels=None,
              xticklabels: bool = True) -> None:
        """The axes' frame, ticks with labels, axis labels and the title."""
        x0, y0, x1, y1 = self.box
        d, small = self.draw, font(11)
        d.rectangle([x0, y0, x1, y1], outline="black", width=1)
        xt, yt = self.ticks()
        for t in xt:
            x = float(self.px(t))
            d.line([(x, y1), (x, y1 + 4)], fill="black")
            if xticklabels:
                label = decade(t) if self.xlog else _fmt(t)
                d.text((x, y1 + 6), label, fill="black", font=small, anchor="ma")
        if yticklabels is None:
            yticklabels = [(t, decade(t) if self.ylog else _fmt(t)) for t in yt]
        for t, label in yticklabels:
            y = float(self.py(t))
            d.line([(x0 - 4, y), (x0, y)], fill="black")
            d.text((x0 - 6, y), label, fill="black", font=small, anchor="rm")
        if xlabel:
            d.text(((x0 + x1) / 2, y1 + 22), xlabel, fill="black", font=font(12), anchor="ma")
        if ylabel:
            self._vertical(ylabel, x0 - 52, (y0 + y1) / 2)
        if title:
            d.text(((x0 + x1) / 2, y0 - 6), title, fill="black", font=font(13), anchor="md")

    def _vertical(self, text: str, x: float, y: float) -> None:
        from PIL import Image, ImageDraw
        f = font(12)
        w = int(f.getlength(text)) + 4
        tile = Image.new("RGB", (w, 16), "white")
        ImageDraw.Draw(tile).text((2, 1), text, fill="black", font=f)
        tile = tile.rotate(90, expand=True)
        self.img.paste(tile, (int(x), int(y - tile.height / 2)))

    def legend(self, items, where: str = "ur") -> None:
        """Labelled colour patches in a box at the upper right (``ur``) or left (``ul``)."""
        if not items:
            return
        f = font(11)
        w = 28 + max(int(f.getlength(name)) for name, _ in items)
        h = 6 + 16 * len(items)
        x0, y0, x1, _ = self.box
        left = x1 - w - 6 if where == "ur" else x0 + 6
        self.draw.rectangle([left, y0 + 6, left + w, y0 + 6 + h], fill="white",
                            outline="#cccccc")
        for k, (name, color) in enumerate(items):
            y = y0 + 12 + 16 * k
            self.draw.rectangle([left + 6, y + 2, left + 20, y + 10], fill=color)
            self.draw.text((left + 25, y + 6), name, fill="black", font=f, anchor="lm")


def canvas(w_in: float, h_in: float):
    from PIL import Image
    return Image.new("RGB", (round(w_in * DPI), round(h_in * DPI)), "white")


def box(img, left=0.75, right=0.2, bottom=0.6, top=0.4) -> tuple[int, int, int, int]:
    """Pixel box of axes with margins in inches (like ``plots._margins``)."""
    return (round(left * DPI), round(top * DPI), img.width - round(right * DPI),
            img.height - round(bottom * DPI))


def png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _ylim(values, log: bool) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    if log:
        return log_limits(v)
    top = float(v.max()) if v.size else 1.0
    return 0.0, (top * 1.05) or 1.0


# ---------------------------------------------------------------- the figures


def histograms(hists: dict, *, title: str, xlabel: str, log: bool = False,
               ylabel: str = "count") -> bytes:
    """Grouped bars on [0, 1] (see :func:`benchmark.plots.histograms`)."""
    img = canvas(6.4, 3.6)
    allc = np.concatenate([np.asarray(h["counts"], float) for h in hists.values()] or [[]])
    p = Panel(img, box(img), (0.0, 1.0), _ylim(allc, log), ylog=log)
    n = len(hists)
    base = p.ylim[0]
    for i, (name, h) in enumerate(hists.items()):
        edges = np.asarray(h["edges"], np.float64)
        width = np.diff(edges) / (n + 0.5)
        for x, wd, c in zip(edges[:-1] + i * width, width, np.asarray(h["counts"], float)):
            if c > 0:
                p.rect(x, x + wd, base, c, COLORS[i % 10])
    p.frame(xlabel=xlabel, ylabel=ylabel + (" (log)" if log else ""), title=title)
    p.legend([(name, COLORS[i % 10]) for i, name in enumerate(hists)])
    return png(img)


def _step_figure(series: dict, edges, *, log: bool, xlabel: str, ylabel: str,
                 title: str) -> bytes:
    img = canvas(6.4, 3.6)
    counts = {k: np.histogram(np.asarray(v, np.float64), bins=edges)[0]
              for k, v in series.items()}
    allc = np.concatenate(list(counts.values()) or [[]])
    e = np.asarray(edges, np.float64)
    p = Panel(img, box(img), (float(e[0]), float(e[-1])), _ylim(allc, log), ylog=log)
    for i, c in enumerate(counts.values()):
        p.stairs(c, e, COLORS[i % 10])
    p.frame(xlabel=xlabel, ylabel=ylabel, title=title)
    p.legend([(name, COLORS[i % 10]) for i, name in enumerate(series)])
    return png(img)


def entropy_distributions(entropies: dict, *, bins: int = 20) -> bytes:
    """Histograms of normalized entropy, log counts (see
    :func:`benchmark.plots.entropy_distributions`)."""
    return _step_figure(entropies, np.linspace(0, 1, bins + 1), log=True,
                        xlabel="normalized entropy H / log K", ylabel="images (log)",
                        title="Output entropy")


def latency_distributions(samples: dict) -> bytes:
    """Latency histograms, 40 bins over all samples (see
    :func:`benchmark.plots.latency_distributions`)."""
    allv = np.concatenate([np.asarray(s, np.float64) for s in samples.values()])
    lo, hi = float(allv.min()), float(allv.max())
    return _step_figure(samples, np.linspace(lo, hi if hi > lo else lo + 1, 41), log=False,
                        xlabel="invoke latency (ms)", ylabel="invokes", title="Latency")


def reliability(rels: dict, *, hists: dict | None = None,
                title: str = "Reliability (15 equal-width bins)") -> bytes:
    """Reliability diagram above confidence histograms (see :func:`benchmark.plots.reliability`)."""
    img = canvas(6.4, 6.0)
    x0, y0, x1, y1 = box(img)
    gap = round(0.15 * DPI)
    split = y0 + round((y1 - y0 - gap) * 2 / 3)
    top = Panel(img, (x0, y0, x1, split), (0.0, 1.0), (-0.05, 1.05))
    lows = {n: (hists or {}).get(n, r) for n, r in rels.items()}
    allc = np.concatenate([np.asarray(h["counts"], float) for h in lows.values()] or [[]])
    bottom = Panel(img, (x0, split + gap, x1, y1), (0.0, 1.0), log_limits(allc), ylog=True)
    top.line([0, 1], [0, 1], "#808080", width=1, dash=True)
    for i, (name, r) in enumerate(rels.items()):
        conf = np.asarray([np.nan if v is None else v for v in r["mean_confidence"]], float)
        acc = np.asarray([np.nan if v is None else v for v in r["accuracy"]], float)
        ok = np.isfinite(conf) & np.isfinite(acc)
        top.line(conf[ok], acc[ok], COLORS[i % 10])
        top.markers(conf[ok], acc[ok], COLORS[i % 10])
        bottom.stairs(lows[name]["counts"], lows[name]["edges"], COLORS[i % 10])
    top.frame(ylabel="accuracy", title=title, xticklabels=False)
    top.legend([("perfect", "#808080")] + [(n, COLORS[i % 10]) for i, n in enumerate(rels)],
               where="ul")
    bottom.frame(xlabel="confidence (top-1 probability)", ylabel="images (log)")
    return png(img)


def recall_changes(cm_ref, cm_q, class_names, *, top: int = 10,
                   labels=("float", "int8")) -> bytes:
    """Bars of the classes whose recall changed most (see
    :func:`benchmark.plots.recall_changes`)."""
    order, delta = recall_delta(cm_ref, cm_q, top)
    names = [str(class_names[i]) for i in order]
    f = font(10)
    left = min(3.0, (max((f.getlength(s) for s in names), default=8) + 14) / DPI)
    img = canvas(6.4, 0.35 * len(order) + 1.2)
    vals = 100 * delta[order]
    span = float(np.abs(vals).max()) if vals.size else 1.0
    span = span * 1.1 or 1.0
    lo, hi = min(0.0, float(vals.min(initial=0)) * 1.1) or -0.05 * span, \
        max(0.0, float(vals.max(initial=0)) * 1.1) or 0.05 * span
    p = Panel(img, box(img, left=left, bottom=0.55, top=0.35), (lo, hi),
              (len(order) - 0.5, -0.5))
    for k, v in enumerate(vals):
        p.rect(0.0, v, k - 0.4, k + 0.4, COLORS[3] if v < 0 else COLORS[2])
    p.line([0, 0], [p.ylim[0], p.ylim[1]], "black", width=1)
    p.frame(xlabel=f"recall change {labels[1]} - {labels[0]} (percentage points)",
            title="Classes whose recall changed most",
            yticklabels=[(k, s) for k, s in enumerate(names)])
    return png(img)


def swapped_vs_confidence(swaps: dict) -> bytes:
    """Swapped predictions over float confidence (see
    :func:`benchmark.plots.swapped_vs_confidence`)."""
    return histograms({name: {"edges": h["edges"], "counts": h["swapped_counts"]}
                       for name, h in swaps.items()},
                      title="Where predictions swap", xlabel="float confidence",
                      ylabel="swapped predictions")


#: matplotlib functions of :mod:`benchmark.plots` -> the Pillow function drawing the same
#: data here (same keyword arguments); :func:`benchmark.plots.render` uses them.
TWINS = {name: globals()[name] for name in (
    "histograms", "entropy_distributions", "latency_distributions", "reliability",
    "recall_changes", "swapped_vs_confidence")}
