"""Plots, the HTML/Markdown report, and the report rendered in headless Chromium."""

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from benchmark import plots
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
    assert (tmp_path / "figs" / "verification_reliability_diagram_and_confidence_histogram.png"
            ).is_file()
    bad = run_cli("benchmark.report", tmp_path / "nothing")
    assert bad.returncode == 3 and "not a run directory" in bad.stderr


def test_no_report_flag(tmp_path):
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--limit", "20", "--out", out, "--quiet", "--no-report")
    assert r.returncode == 0, r.stderr
    assert (out / "results.json").is_file() and not (out / "report.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package "
                    "'chromium'; .ci/run installs it)")
def test_report_in_headless_chromium(small_run, tmp_path):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    url = (small_run / "report.html").as_uri()
    netlog = tmp_path / "net.json"
    dom = subprocess.run([CHROMIUM, *flags, f"--log-net-log={netlog}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert "accuracy (95 % CI)" in dom.stdout and "float" in dom.stdout
    shot = small_run / "report_screenshot.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,2000", url],
                   capture_output=True, timeout=120)
    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
        assert np.asarray(im.convert("L")).std() > 5      # not a blank page
    # Requests the page made would carry its (file) origin; the browser's own
    # background requests carry "not an origin".
    log = json.loads(netlog.read_text())
    kinds = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    starts = [e.get("params", {}) for e in log["events"]
              if kinds.get(e["type"]) == "URL_REQUEST_START_JOB"]
    page_requests = [p["url"] for p in starts
                     if "url" in p and p.get("initiator") != "not an origin"
                     and not p["url"].startswith("file:")]
    assert page_requests == []
