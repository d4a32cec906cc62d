"""The fast report: confusion heatmaps drawn directly, class-count aware sections,
figures rendered in worker processes and cached per run."""

import base64
import importlib.util
import io
import json
import re
import time

import numpy as np
import pytest
from PIL import Image

from benchmark import plots, report
from benchmark.rundir import RunWriter, run_header
from conftest import ROOT


def _tool():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "tools" /
                                                  "bench_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _variant(cm: np.ndarray) -> dict:
    n = int(cm.sum())
    acc = float(np.trace(cm) / n)
    h = {"edges": [0.0, 0.5, 1.0], "counts": [1, n - 1], "fractions": [1 / n, 1 - 1 / n]}
    return {"accuracy": acc, "n": n, "n_correct": int(np.trace(cm)),
            "accuracy_interval": {"low": acc - 0.1, "high": min(1.0, acc + 0.1)},
            "mean_normalized_entropy": 0.1, "certainty_histogram": h, "output_histogram": h,
            "device": "cpu"}


def small_run(out, cms: dict, names) -> "Path":  # noqa: F821
    """A run of one split whose confusion matrices are ``cms`` (predictions consistent)."""
    k = len(names)
    record = {"split": "verification", "class_names": list(names), "variants": {}}
    arrays = {}
    rng = np.random.default_rng(0)
    for v, cm in cms.items():
        labels = np.repeat(np.arange(k), cm.sum(axis=1))
        pred = np.concatenate([np.repeat(np.arange(k), row) for row in cm])
        probs = rng.random((labels.size, k)).astype(np.float32)
        probs[np.arange(labels.size), pred] += k
        probs /= probs.sum(axis=1, keepdims=True)
        record["variants"][v] = _variant(cm)
        arrays[v] = {"confusion": cm, "probs": probs, "labels": labels,
                     "index": np.arange(labels.size)}
    w = RunWriter(out, ("verification",), run_header({}, {}))
    w.write_split(record, arrays)
    w.finish()
    return out


def _imgs(page: str, cls: str | None = None) -> list[Image.Image]:
    pat = (r"<img class='%s'[^>]*src='data:image/png;base64,([^']+)'" % cls if cls
           else r"<img [^>]*src='data:image/png;base64,([^']+)'")
    return [Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB")
            for b in re.findall(pat, page)]


CM = {"float": np.array([[8, 2, 0, 0], [1, 5, 3, 1], [0, 0, 10, 0], [0, 4, 0, 0]]),
      "int8": np.array([[7, 3, 0, 0], [0, 9, 1, 0], [2, 0, 8, 0], [0, 0, 1, 3]])}
NAMES = ["alpha", "beta", "gamma", "delta"]


def test_full_matrix_has_one_cell_per_class_pair(tmp_path):
    from matplotlib import colormaps
    run = small_run(tmp_path / "run", CM, NAMES)
    out, _ = report.write_report([run])
    page = out.read_text()
    heat = _imgs(page, "heat")
    assert len(heat) == 2
    k, cell = len(NAMES), plots.heatmap_cell(len(NAMES))
    for im, cm in zip(heat, CM.values()):
        assert im.size == (k * cell, k * cell)
        px = np.asarray(im)
        want = colormaps["viridis"](plots.row_normalized(cm), bytes=True)[..., :3]
        for i in range(k):                 # every pixel of a cell has its cell's colour
            for j in range(k):
                block = px[i * cell:(i + 1) * cell, j * cell:(j + 1) * cell]
                assert (block == want[i, j]).all(), (i, j)
    # class names in HTML, rows and columns, in class order; no top-K table for few classes
    section = page.split("Confusion matrices (row-normalized)</h3>", 1)[1].split("<h3>", 1)[0]
    assert re.findall(r"<div title='([^']+)'>", section) == NAMES * 4
    assert "class='topk'" not in section and "fraction of true class" in section


def test_top_confusions_ranks_off_diagonal_pairs():
    cms = {"a": np.array([[5, 3, 0], [1, 5, 0], [0, 4, 5]]),
           "b": np.array([[5, 1, 0], [0, 5, 2], [0, 4, 5]])}
    assert plots.top_confusions(cms, 3) == [(2, 1), (0, 1), (1, 2)]
    assert plots.top_confusions(cms) == [(2, 1), (0, 1), (1, 2), (1, 0)]
    assert plots.top_confusions({"a": np.eye(3, dtype=int)}) == []


def test_block_matrix_rows_still_sum_to_one():
    cm = np.random.default_rng(1).integers(0, 9, (250, 250))
    b = plots.block_matrix(cm, plots.overview_blocks(250))
    assert plots.overview_blocks(250) == 3 and b.shape == (84, 84)
    np.testing.assert_allclose(b.sum(axis=1), 1.0)
    np.testing.assert_allclose(b[0, 0], plots.row_normalized(cm)[:3, :3].sum() / 3)


@pytest.fixture(scope="module")
def run1000(tmp_path_factory):
    return _tool().synthetic_run(tmp_path_factory.mktemp("k1000") / "run", 1000, 3000,
                                 n_boot=50)


def test_thousand_classes_report_has_top_k_and_a_bounded_overview(run1000, tmp_path):
    t0 = time.perf_counter()
    out, _ = report.write_report([run1000], tmp_path / "r.html")
    seconds = time.perf_counter() - t0
    assert seconds < 120, seconds                 # ~5 s on an idle 2-core machine
    page = out.read_text()
    section = page.split("Confusion matrices (row-normalized)</h3>", 1)[1].split("<h3>", 1)[0]
    rows = re.findall(r"<tr><td>(class_\d+)</td><td>(class_\d+)</td>", section)
    assert len(rows) == report.TOP_CONFUSIONS
    sr = report.load_run(run1000).splits["verification"]
    total = sr.confusion("float") + sr.confusion("int8")
    np.fill_diagonal(total, 0)
    i, j = np.unravel_index(total.argmax(), total.shape)
    assert rows[0] == (f"class_{i:04d}", f"class_{j:04d}")
    heat = _imgs(section, "heat")
    assert len(heat) == 2 and all(max(im.size) <= plots.HEATMAP_PX for im in heat)
    assert "block of 10 &times; 10 classes" in section
    assert out.stat().st_size < 3_000_000


def test_rebuilding_reuses_cached_figures(tmp_path, monkeypatch):
    run = small_run(tmp_path / "run", CM, NAMES)
    out, _ = report.write_report([run])
    first = out.read_text()
    n = report.LAST_RENDER["rendered"]
    cache = sorted((run / report.FIGURE_CACHE).glob("*.png"))
    assert n >= 5 and len(cache) == n and report.LAST_RENDER["cached"] == 0

    def no_drawing(*a, **k):
        raise AssertionError("a cached figure was drawn again")
    monkeypatch.setattr(plots, "render", no_drawing)
    out, _ = report.write_report([run])
    assert report.LAST_RENDER == {"rendered": 0, "cached": n, "workers": 0}
    assert out.read_text() == first
    monkeypatch.undo()
    # a changed run changes the keys of what it changes, and stale files go
    res = json.loads((run / "results.json").read_text())
    res["variants"]["int8"]["certainty_histogram"]["counts"] = [5, 15]
    (run / "results.json").write_text(json.dumps(res))
    report.write_report([run])
    assert report.LAST_RENDER["rendered"] == 1 and report.LAST_RENDER["cached"] == n - 1
    assert len(list((run / report.FIGURE_CACHE).glob("*.png"))) == n


def test_workers_draw_the_same_bytes_as_this_process(tmp_path, monkeypatch):
    run = small_run(tmp_path / "run", CM, NAMES)
    sections = report.run_sections([report.load_run(run)])
    jobs = [(job, None) for secs in sections[0].values() for s in secs for _, job in s.images]
    # the pool starts for figures drawn with matplotlib (the others are Pillow, ~10 ms each);
    # with three of them, every job is drawn in the workers
    jobs += [(report.FigureJob(plots.bit_sweep, {"bits": [8, 6, 4], "swapped_pct": [0.1, k, 2],
                                                 "delta_error_pct": [0, 0.2, 1.5],
                                                 "ratio": [0, 0.4, 0.75]}), None)
             for k in (0.5, 0.6, 0.7)]
    monkeypatch.setattr(report, "_cpus", lambda: 2)
    monkeypatch.setattr(report, "_load", lambda: 0.0)
    pooled = report.render_figures(jobs)
    assert report.LAST_RENDER["workers"] == 2
    monkeypatch.setattr(report, "MIN_PARALLEL_FIGURES", 10 ** 6)
    serial = report.render_figures(jobs)
    assert report.LAST_RENDER["workers"] == 0 and pooled == serial


def test_workers_follow_cores_figures_and_load(monkeypatch):
    monkeypatch.setattr(report, "_cpus", lambda: 2)
    monkeypatch.setattr(report, "_load", lambda: 0.3)
    assert [report.figure_workers(n) for n in (0, 2, 3, 8)] == [0, 0, 2, 2]
    monkeypatch.setattr(report, "_load", lambda: 1.6)
    assert report.figure_workers(8) == 0
    monkeypatch.setattr(report, "_cpus", lambda: 1)
    monkeypatch.setattr(report, "_load", lambda: 0.0)
    assert report.figure_workers(8) == 0


def test_figure_keys_follow_the_data():
    h = {"edges": [0.0, 1.0], "counts": [3]}
    a = report.FigureJob(plots.histograms, {"hists": {"x": h}, "title": "t", "xlabel": "x"})
    b = report.FigureJob(plots.histograms, {"hists": {"x": dict(h, counts=[4])}, "title": "t",
                                            "xlabel": "x"})
    assert a.key() == report.FigureJob(plots.histograms, dict(a.kwargs)).key() != b.key()
    e = report.FigureJob(plots.entropy_distributions, {"entropies": {"x": np.zeros(3)}})
    f = report.FigureJob(plots.entropy_distributions, {"entropies": {"x": np.zeros(3, "f4")}})
    assert e.key() != f.key()


def test_no_worker_processes_falls_back_to_drawing_here(tmp_path, monkeypatch):
    run = small_run(tmp_path / "run", CM, NAMES)

    def no_pool(*a, **k):
        raise OSError("no processes")
    monkeypatch.setattr(report, "_cpus", lambda: 2)
    monkeypatch.setattr(report, "_load", lambda: 0.0)
    monkeypatch.setattr(report, "ProcessPoolExecutor", no_pool)
    out, _ = report.write_report([run])
    assert report.LAST_RENDER["workers"] == 0 and report.LAST_RENDER["rendered"] >= 5
    assert len(_imgs(out.read_text())) == report.LAST_RENDER["rendered"]


def _with_class_metrics(record: dict, preds: dict) -> dict:
    """Add what benchmark.run records (issue #12) from ``{variant: (labels, pred)}``."""
    from benchmark.metrics import per_class_report, recall_change
    k = len(record["class_names"])
    for v, (t, p) in preds.items():
        record["variants"][v]["per_class"] = per_class_report(t, p, num_classes=k)
        record["variants"][v]["top5_accuracy"] = 0.5
    t, pf = preds["float"]
    record["recall_change"] = {"reference": "float",
                               "int8": recall_change(t, pf, preds["int8"][1], num_classes=k)}
    return record


def test_per_class_tables_in_stdout_html_and_markdown(tmp_path):
    import io as _io
    names = [f"c{i}" for i in range(60)]
    t = np.repeat(np.arange(60), 2)
    pf = t.copy()
    pq = t.copy()
    pq[[0, 1, 2]] = 5           # class c0 loses both images, c1 one: recall -100 %, -50 %
    cms = {"float": np.diag(np.full(60, 2)), "int8": np.bincount(
        t * 60 + pq, minlength=3600).reshape(60, 60)}
    out = small_run(tmp_path / "run", cms, names)
    rec = json.loads((out / "results.json").read_text())
    rec = _with_class_metrics(rec, {"float": (t, pf), "int8": (t, pq)})
    (out / "results.json").write_text(json.dumps(rec))
    results = report.load_run(out).records()
    buf = _io.StringIO()
    report.print_tables(results, file=buf)
    text = buf.getvalue()
    # stdout: 60 classes > 43, only the largest recall changes, c0 first
    assert "Per class: verification (15 of 60 classes" in text
    rows = [x.split() for x in text.splitlines() if re.match(r"\s*c\d+ ", x)]
    assert rows[0][0] == "c0" and rows[0][-2:] == ["-100.0", "%"]
    assert rows[1][0] == "c1" and rows[1][-2:] == ["-50.0", "%"]
    macro = next(x.split() for x in text.splitlines() if x.strip().startswith("macro avg"))
    # int8 macro recall: (0 + 0.5 + 58 * 1 + class 5: 1) / 60; precision of c5: 2/5
    assert macro[2:6] == ["120", "1.000", "1.000", "1.000"] and macro[7] == f"{58.5 / 60:.3f}"
    assert "per-class summary" in text and "50.00 %" in text
    html_path, md_path = report.write_report([out])
    page, md = html_path.read_text(), md_path.read_text()
    # the report lists every class
    assert len(re.findall(r"<td[^>]*>\s*c\d+</td>", page)) == 60
    assert "Per class: verification</h3>" in page
    assert "**Per class: verification**" in md and len(re.findall(r"\|\s+c\d+ \|", md)) == 60


def test_runs_without_class_metrics_still_report(tmp_path):
    """Runs written before issue #12 (no per_class): no per-class tables, nothing fails."""
    out = small_run(tmp_path / "old", {"float": np.diag([2, 3])}, ["a", "b"])
    results = report.load_run(out).records()
    assert report.per_class_tables(results, "simple") == []
    assert "Per-class summary" not in [t for t, _ in report._tables(results, "simple")]
    report.write_report([out])
