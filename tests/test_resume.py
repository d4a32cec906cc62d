"""Run-directory safety: kill a run, ``--resume`` it, refuse foreign files and a second writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmark.errors import UsageError
from benchmark.rundir import LOCK, RESULTS, RUN_STATE, RunWriter, foreign_files, read_run
from conftest import ROOT

# 200 images a split: each run is frozen (SIGSTOP) the moment its marker file appears, so
# what is on disk when it is killed does not depend on the size; resume works split by split.
ARGS = ["--split", "all", "--weight-bits", "8,6,4", "--limit", "200", "--no-prediction-cache",
        "--no-report", "--quiet"]


def _start(out, *extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "benchmark.run", *ARGS, "--out", str(out),
                             *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run(out, *extra):
    p = _start(out, *extra)
    stdout, stderr = p.communicate(timeout=300)
    return p.returncode, stderr


def _stop_when(p, path, timeout=120):
    """Freeze ``p`` (SIGSTOP) as soon as ``path`` exists; False if ``p`` ended first."""
    t0 = time.monotonic()
    while not path.exists():
        if p.poll() is not None or time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.005)
    p.send_signal(signal.SIGSTOP)
    return True


def _same_run(a, b):
    ra, rb = read_run(a), read_run(b)
    assert list(ra.splits) == list(rb.splits) == ["full", "verification"]
    for split, sa in ra:
        sb = rb.splits[split]
        assert sa.variants == sb.variants == ["float", "int8", "w8", "w6", "w4"]
        for v in sa.variants:
            pa, pb = sa.predictions(v), sb.predictions(v)
            for k in ("probs", "labels", "index"):
                np.testing.assert_array_equal(pa[k], pb[k])
            assert (sa.dir / f"predictions_{v}.npz").read_bytes() == \
                (sb.dir / f"predictions_{v}.npz").read_bytes()
        assert (sa.dir / "metrics.csv").read_bytes() == (sb.dir / "metrics.csv").read_bytes()
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    rc, err = _run(out)
    assert rc == 0, err[-2000:]
    return out


@pytest.mark.parametrize("when", ["started", "one split done"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(reference, tmp_path, when):
    out = tmp_path / "run"
    p = _start(out)
    marker = out / RUN_STATE if when == "started" else out / "full" / RESULTS
    assert _stop_when(p, marker), "the run ended before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert not (out / RESULTS).exists()         # killed mid-run
    rc, err = _run(out)                          # without --resume: refused, nothing touched
    assert rc == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    rc, err = _run(out, "--resume")
    assert rc == 0, err[-2000:]
    _same_run(reference, out)


def test_sigint_then_resume(reference, tmp_path):
    out = tmp_path / "run"
    p = _start(out)
    assert _stop_when(p, out / RUN_STATE)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGCONT)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the run finished before SIGINT reached Python code")
    assert p.returncode == 130 and "interrupted" in err
    assert not (out / RESULTS).exists()
    rc, err = _run(out, "--resume")
    assert rc == 0, err[-2000:]
    _same_run(reference, out)


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "run"
    first = _start(out)
    assert _stop_when(first, out / RUN_STATE)   # holds the lock, frozen
    try:
        rc, err = _run(out)
        assert rc == 2, err
        assert err.strip() == (f"benchmark.run: error: --out {out} is being written by another "
                               f"process (pid {first.pid}); wait for it or choose another --out")
        rc, err = _run(out, "--resume")
        assert rc == 2 and "being written by another process" in err
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    assert read_run(out).splits["verification"].variants[-1] == "w4"


def test_foreign_files_are_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / ".results.json.tmp-1-ab12cd34").write_text("{")   # a killed atomic write
    assert foreign_files(out, ("verification",)) == ["notes.txt"]
    w = RunWriter(out, ("verification",), {"config": {}}, resume=True, fingerprint="x")
    with pytest.raises(UsageError, match=r"did not write \(notes.txt\)"):
        w.open()
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / RUN_STATE).exists()
    # the lock was released: a second writer can take it
    (out / "notes.txt").unlink()
    (out / ".results.json.tmp-1-ab12cd34").unlink()
    with RunWriter(out, ("verification",), {"config": {}}, fingerprint="x"):
        assert (out / LOCK).read_text() == str(os.getpid())


def test_resume_refuses_another_configuration(tmp_path):
    out = tmp_path / "run"
    with RunWriter(out, ("verification",), {"config": {}}, fingerprint="a"):
        pass
    with pytest.raises(UsageError, match="another configuration"):
        RunWriter(out, ("verification",), {"config": {}}, resume=True, fingerprint="b").open()
    with pytest.raises(UsageError, match="earlier run; pass --resume"):
        RunWriter(out, ("verification",), {"config": {}}, fingerprint="a").open()
    RunWriter(out, ("verification",), {"config": {}}, resume=True, fingerprint="a").open().close()


def test_split_files_of_several_splits_are_known(tmp_path):
    out = tmp_path / "run"
    (out / "full" / "models").mkdir(parents=True)
    for rel in ("full/predictions_int8.npz", "full/models/signnet_w4.tflite", "metrics.csv",
                ".figures/ab.png", "full/results.json", "verification/stray.npz",
                "predictions_int8.npz"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(b"")
    assert foreign_files(out, ("full", "verification")) == ["predictions_int8.npz",
                                                            "verification/stray.npz"]
