"""Plots, the HTML/Markdown report, and the report rendered in headless Chromium."""

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark import plots, report
from benchmark.cli import main_wrapper
from benchmark.rundir import Run, SplitRun
from conftest import run_cli

CHROMIUM = shutil.which("chromium")


def test_plot_functions_return_figures():
    from matplotlib.figure import Figure
    names = ["a", "b", "c"]
    cm = np.array([[5, 1, 0], [0, 6, 0], [1, 0, 4]])
    f = plots.confusion_pair({"float": cm, "int8": cm}, names)
    assert isinstance(f, Figure) and len(f.axes) == 3          # two matrices + colorbar
    h = {"edges": np.linspace(0, 1, 21).tolist(), "counts": list(range(20))}
    assert len(plots.histograms({"float": h, "int8": h}, title="t", xlabel="x",
                                log=True).axes) == 1
    rel = {"edges": np.linspace(0, 1, 16).tolist(), "counts": [0] * 14 + [10],
           "mean_confidence": [None] * 14 + [0.99], "accuracy": [None] * 14 + [1.0]}
    assert len(plots.reliability({"float": rel}).axes) == 2
    assert len(plots.recall_changes(cm, cm[::-1], names, top=2).axes) == 1
    assert len(plots.entropy_distributions({"x": [0.1, 0.2]}).axes) == 1
    assert len(plots.latency_distributions({"x": [0.1, 0.2, 0.3]}).axes) == 1
    assert len(plots.bit_sweep([8, 6, 4], [0.1, 0.5, 2.0], [0.0, 0.2, 1.5],
                               [0.0, 0.4, 0.75]).axes) == 2
    sw = {"edges": np.linspace(0, 1, 11).tolist(), "swapped_counts": [0] * 9 + [3]}
    assert len(plots.swapped_vs_confidence({"int8": sw}).axes) == 1


def _fake_run(name, acc_int8):
    h = {"edges": [0.0, 0.5, 1.0], "counts": [1, 9], "fractions": [0.1, 0.9]}

    def variant(acc):
        return {"accuracy": acc, "n": 10, "accuracy_interval": {"low": 0.5, "high": 1.0},
                "mean_normalized_entropy": 0.01, "certainty_histogram": h,
                "output_histogram": h,
                "calibration": {"ece": 0.02, "mce": 0.1, "nll": 0.3, "brier": 0.1, "gap": 0.01}}
    res = {"class_names": ["a", "b"],
           "variants": {"float": variant(0.9), "int8": variant(acc_int8)}}
    res["split"] = "full"
    return Run(dir=Path(name), top=res, splits={"full": SplitRun(res, Path(name))})


def test_comparison_table_has_a_column_per_run_and_highlights_differences():
    runs = [_fake_run("runA", 0.8), _fake_run("runB", 0.7)]
    heads, rows = report.comparison_rows(runs)
    assert heads == ["runA", "runB"]
    assert ["full/int8 accuracy", 0.8, 0.7] in rows
    assert ["full/float accuracy", 0.9, 0.9] in rows
    page = report.comparison_html(runs)
    assert "<th>runA</th><th>runB</th>" in page
    assert page.count("class='diff'") == 1 and "<td class='diff'>0.7000</td>" in page
    md = report.build_markdown(runs)
    assert "**Comparison**" in md and "runA" in md and "runB" in md


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [(tag, k, v) for k, v in attrs if k in ("src", "href")]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "run"
    r = run_cli("benchmark.run", "--split", "all", "--limit", "60", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    return out


def test_report_is_self_contained(small_run):
    page = (small_run / "report.html").read_text()
    assert (small_run / "report.md").is_file()
    assert "accuracy (95 % CI)" in page and "<table>" in page
    p = _Refs()
    p.feed(page)
    assert "script" not in p.tags and "link" not in p.tags
    assert "http://" not in page and "https://" not in page
    imgs = [v for tag, k, v in p.refs if tag == "img"]
    assert len(imgs) >= 10 and len(p.refs) == len(imgs)
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    assert (small_run / "report.html").stat().st_size < 3_000_000


def test_report_rebuilds_from_files_and_compares_runs(small_run, tmp_path):
    out = tmp_path / "cmp.html"
    r = run_cli("benchmark.report", small_run, small_run / "full", "--out", out,
                "--figures", tmp_path / "figs")
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert "<h2>Comparison</h2>" in page and page.count("<h2>Run ") == 2
    assert (tmp_path / "cmp.md").read_text().count("## Run ") == 2
    # one folder of figures per run, every run's figures (not only the first run's)
    rel = "verification_reliability_diagram_and_confidence_histogram.png"
    first, second = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert first.startswith("1-") and second == "2-full"
    assert (tmp_path / "figs" / first / rel).is_file()
    assert (tmp_path / "figs" / second / "full_reliability_diagram_and_confidence_histogram.png"
            ).is_file()
    bad = run_cli("benchmark.report", tmp_path / "nothing")
    assert bad.returncode == 3 and "not a run directory" in bad.stderr


def _report_exit(capsys, run_dir):
    code = main_wrapper("benchmark.report", report.main, [str(run_dir)])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return code, err


def test_bad_run_files_give_one_line_and_exit_3(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run / "full", run)
    (run / "results.json").write_text("[]")
    assert _report_exit(capsys, run) == (3, f"benchmark.report: error: {run / 'results.json'}: "
                                            "not a benchmark.run results.json\n")
    (run / "results.json").write_text((small_run / "full" / "results.json").read_text())
    (run / "predictions_int8.npz").write_bytes(b"not a zip")
    code, err = _report_exit(capsys, run)
    assert code == 3 and "predictions_int8.npz: unreadable predictions" in err
    shutil.copy(small_run / "full" / "predictions_int8.npz", run)
    (run / "confusion_int8.csv").write_text("true\\pred,a\n")
    code, err = _report_exit(capsys, run)
    assert code == 3 and "expected a 30 x 30 confusion matrix" in err
    assert not (run / "report.html").exists()


def test_latency_figure_only_with_samples(small_run):
    sr = report.load_run(small_run).splits["verification"]
    res = json.loads(json.dumps(sr.record))
    sr = SplitRun(res, sr.dir)
    lat = {"mean_ms": 0.2, "std_ms": 0.01, "p50_ms": 0.2, "p90_ms": 0.21, "p99_ms": 0.22,
           "throughput_per_s": 5000, "first_invoke_ms": 0.3}
    res["variants"]["int8"]["latency"] = dict(lat)
    assert "Latency" not in [t for t, _ in report.split_figures(sr)]
    res["variants"]["int8"]["latency"]["samples_ms"] = [0.19, 0.2, 0.21]
    figs = dict(report.split_figures(sr))
    assert len(figs["Latency"].axes) == 1


def test_no_report_flag(tmp_path):
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--limit", "20", "--out", out, "--quiet", "--no-report")
    assert r.returncode == 0, r.stderr
    assert (out / "results.json").is_file() and not (out / "report.html").exists()


def _chromium(tmp_path, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    r = subprocess.run([CHROMIUM, *flags, *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def _page_requests(netlog: Path) -> list[str]:
    """Non-file URLs the page requested, from a Chromium ``--log-net-log`` file.

    Requests the page made carry its (file) origin as initiator; the browser's own
    background requests (update checks etc.) carry "not an origin".
    """
    log = json.loads(netlog.read_text())
    kinds = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    starts = [e.get("params", {}) for e in log["events"]
              if kinds.get(e["type"]) == "URL_REQUEST_START_JOB"]
    return [p["url"] for p in starts
            if "url" in p and p.get("initiator") != "not an origin"
            and not p["url"].startswith("file:")]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package "
                    "'chromium'; .ci/run installs it)")
def test_report_in_headless_chromium(small_run, tmp_path):
    url = (small_run / "report.html").as_uri()
    netlog = tmp_path / "net.json"
    dom = _chromium(tmp_path, f"--log-net-log={netlog}", "--dump-dom", url)
    assert "accuracy (95 % CI)" in dom.stdout and "float" in dom.stdout
    assert dom.stdout.count("<img") >= 10
    shot = small_run / "report_screenshot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
        assert np.asarray(im.convert("L")).std() > 5      # not a blank page
    assert _page_requests(netlog) == []
    # positive control: the same check sees a page's request (port 9 refuses at once)
    probe = tmp_path / "probe.html"
    probe.write_text("<!DOCTYPE html><img src='http://127.0.0.1:9/x.png'>")
    _chromium(tmp_path, f"--log-net-log={tmp_path / 'probe.json'}", "--dump-dom",
              probe.as_uri())
    assert _page_requests(tmp_path / "probe.json") == ["http://127.0.0.1:9/x.png"]
