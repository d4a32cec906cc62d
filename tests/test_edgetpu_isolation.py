"""A failing Edge TPU delegate in its child process: one line, CPU results kept, auto falls back.

The fakes fail as real libedgetpu/interpreter pairings do: the child is
killed by SIGSEGV, ``allocate_tensors()`` raises the real "Unsupported data
type in custom op handler" error, or an invoke hangs (a short timeout).
"""

import json

import numpy as np
import pytest

from benchmark.commands import main
from conftest import load_predictions
from edgetpu_fakes import compiled_models, use_fake_edgetpu


@pytest.fixture
def models_with_compiled(tmp_path):
    return compiled_models(tmp_path)


def _run(models, out, device, capsys, *extra):
    rc = main(["run", "--device", device, "--split", "verification", "--limit", "20",
               "--model-dir", str(models), "--out", str(out), "--no-report", *extra])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _check(models, tmp_path, capsys, message: str, quiet: bool = False):
    """--device edgetpu: exit 4, one line naming the cause, CPU predictions written;
    --device auto: exit 0, CPU fallback said on stdout and in results.json."""
    rc, out, err = _run(models, tmp_path / "tpu", "edgetpu", capsys)
    assert rc == 4
    lines = [ln for ln in err.splitlines() if ln.startswith("edgetpu-bench run: error:")]
    assert len(lines) == 1 and message in lines[0] and "likely cause" in lines[0], err
    assert "Traceback" not in err
    res = json.loads((tmp_path / "tpu" / "results.json").read_text())
    assert set(res["variants"]) == {"float", "int8"}
    assert res["edgetpu_failure"]["fallback"] is None
    assert res["edgetpu_failure"]["variant"] == "int8-edgetpu"
    p = load_predictions(tmp_path / "tpu", "int8")
    assert p["probs"].shape == (20, 30) and np.isfinite(p["probs"]).all()

    rc, out, err = _run(models, tmp_path / "auto", "auto", capsys)
    assert rc == 0, err
    assert "auto: falling back to the CPU" in out and message in out
    if quiet:
        rc, out, _ = _run(models, tmp_path / "quiet", "auto", capsys, "--quiet")
        assert rc == 0 and "auto: falling back to the CPU" in out      # also with --quiet
    res = json.loads((tmp_path / "auto" / "results.json").read_text())
    assert res["device_resolved"] == "cpu" and set(res["variants"]) == {"float", "int8"}
    assert res["edgetpu_failure"]["fallback"] == "cpu" and message in res["edgetpu_failure"][
        "error"]
    return lines[0]


def test_segfaulting_delegate(monkeypatch, models_with_compiled, tmp_path, capsys):
    use_fake_edgetpu(monkeypatch, fail="segv")
    line = _check(models_with_compiled, tmp_path, capsys, "killed by SIGSEGV", quiet=True)
    assert "runtime pairing" in line


def test_unsupported_data_type_error(monkeypatch, models_with_compiled, tmp_path, capsys):
    use_fake_edgetpu(monkeypatch, fail="unsupported")
    line = _check(models_with_compiled, tmp_path, capsys,
                  "Unsupported data type in custom op handler")
    assert "allocate_tensors() failed" in line and "runtime pairing" in line


def test_hanging_invoke(monkeypatch, models_with_compiled, tmp_path, capsys):
    monkeypatch.setenv("EDGETPU_BENCH_TPU_TIMEOUT", "3")
    use_fake_edgetpu(monkeypatch, fail="hang", fail_at="invoke")
    line = _check(models_with_compiled, tmp_path, capsys, "no answer within 3 s")
    assert "unplugged" in line
