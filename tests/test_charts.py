"""Pillow report charts (benchmark.charts): colours, ticks, where bars land, no matplotlib."""

import io
import subprocess
import sys

import numpy as np
from PIL import Image

from benchmark import charts, plots
from conftest import ROOT


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _img(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_viridis_is_matplotlibs():
    from matplotlib import colormaps
    v = np.linspace(-0.2, 1.2, 3001)
    assert (charts.viridis(v) == colormaps["viridis"](v, bytes=True)[:, :3]).all()


def test_ticks_and_log_limits():
    assert charts.nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert charts.nice_ticks(0, 37) == [0.0, 10.0, 20.0, 30.0]
    assert charts.nice_ticks(-0.05, 1.05) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert charts.log_limits([0, 3, 2500]) == (1.0, 10000.0)
    assert charts.log_limits([0, 0]) == (1.0, 10.0)


def test_histogram_bars_stand_where_the_counts_are():
    h = {"a": {"edges": [0.0, 0.5, 1.0], "counts": [0, 10]},
         "b": {"edges": [0.0, 0.5, 1.0], "counts": [5, 0]}}
    px = _img(charts.histograms(h, title="t", xlabel="x"))
    img = charts.canvas(6.4, 3.6)
    x0, y0, x1, y1 = charts.box(img)
    p = charts.Panel(img, (x0, y0, x1, y1), (0.0, 1.0), (0.0, 10.5))
    width = 0.5 / 2.5
    near_floor = int(p.py(0.5))
    # a: only its second bin, full height; b (offset by one bar width): only its first bin
    assert tuple(px[near_floor, int(p.px(0.5 + width / 2))]) == _rgb(charts.COLORS[0])
    assert tuple(px[int(p.py(9.5)), int(p.px(0.5 + width / 2))]) == _rgb(charts.COLORS[0])
    assert tuple(px[near_floor, int(p.px(width / 2))]) == (255, 255, 255)
    assert tuple(px[near_floor, int(p.px(width * 1.5))]) == _rgb(charts.COLORS[1])
    assert tuple(px[int(p.py(6)), int(p.px(width * 1.5))]) == (255, 255, 255)  # 5 < 6


def test_recall_bar_points_the_way_recall_moved():
    ref = np.diag([10, 10, 10])
    q = np.array([[10, 0, 0], [5, 5, 0], [0, 0, 10]])        # class 1 loses half its recall
    order, delta = plots.recall_delta(ref, q, 3)
    assert order[0] == 1 and delta[1] == -0.5
    px = _img(charts.recall_changes(ref, q, ["a", "b", "c"]))
    red = np.all(px == _rgb(charts.COLORS[3]), axis=-1)
    green = np.all(px == _rgb(charts.COLORS[2]), axis=-1)
    assert red.any() and not green.any()
    rows = np.nonzero(red.any(axis=1))[0]
    assert rows.max() < px.shape[0] / 2          # the first (top) bar is the changed class


def test_render_draws_twins_without_matplotlib():
    code = ("import sys; from benchmark import plots; "
            "h = {'a': {'edges': [0.0, 0.5, 1.0], 'counts': [1, 100]}}; "
            "b = plots.render(plots.histograms, {'hists': h, 'title': 't', 'xlabel': 'x', "
            "'log': True}); "
            "c = plots.render(plots.confusion_image, {'cm': [[3, 1], [0, 4]]}); "
            "assert b[:4] == c[:4] == b'\\x89PNG', b[:8]; "
            "print('matplotlib' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
    assert plots.needs_matplotlib(plots.bit_sweep)
    assert not plots.needs_matplotlib(plots.histograms)
    assert not plots.needs_matplotlib(plots.confusion_image)


def test_every_twin_is_deterministic_and_takes_the_same_arguments():
    rel = {"mean_confidence": [0.3, None, 0.9], "accuracy": [0.2, None, 0.95],
           "counts": [3, 0, 50], "edges": [0.0, 0.33, 0.66, 1.0]}
    h = {"edges": [0.0, 0.5, 1.0], "counts": [1, 9], "swapped_counts": [1, 2]}
    calls = {
        "histograms": {"hists": {"x": h}, "title": "t", "xlabel": "x", "log": True},
        "entropy_distributions": {"entropies": {"x": [0.1, 0.2, 0.9]}},
        "latency_distributions": {"samples": {"x": [0.1, 0.2, 0.3]}},
        "reliability": {"rels": {"x": rel}},
        "recall_changes": {"cm_ref": np.eye(3, dtype=int), "cm_q": np.eye(3, dtype=int)[::-1],
                           "class_names": ["a", "b", "c"], "top": 2},
        "swapped_vs_confidence": {"swaps": {"int8": h}},
    }
    assert set(calls) == set(charts.TWINS)
    for name, kwargs in calls.items():
        a = plots.render(getattr(plots, name), kwargs)
        assert a == charts.TWINS[name](**kwargs) and a[:4] == b"\x89PNG", name
        assert len(getattr(plots, name)(**kwargs).axes) >= 1     # the matplotlib one still works
