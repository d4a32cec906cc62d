"""The Edge TPU code path end to end with a fake delegate (no Coral needed).

The fake: the delegate library is "found", ``load_delegate`` returns a token,
and the interpreter ignores the delegate, so the ``*_edgetpu.tflite`` (here a
copy of the int8 model) runs on the CPU kernels. Everything else is the real
code: library check, delegate options, backend, evaluation, attribution.
"""

import shutil

import numpy as np
import pytest

from benchmark.backends import edgetpu, runtime
from benchmark.config import make_config
from benchmark.run import run
from conftest import ROOT, load_predictions, read_results


@pytest.fixture
def fake_edgetpu(monkeypatch):
    calls = []
    real = runtime.find_runtime()

    class FakeDelegateInterpreter(real.Interpreter):
        def __init__(self, *a, experimental_delegates=None, **kw):
            assert experimental_delegates == ["fake-delegate"]
            super().__init__(*a, **kw)

    def load_delegate(lib, options):
        calls.append((lib, options))
        return "fake-delegate"

    fake = runtime.Runtime("fake-litert", "0", FakeDelegateInterpreter, load_delegate)
    monkeypatch.setattr(edgetpu, "find_delegate_library", lambda system=None: "libedgetpu.so.1")
    monkeypatch.setattr(edgetpu, "find_runtime", lambda prefer=None: fake)
    return calls


@pytest.fixture
def models_with_compiled(tmp_path):
    root = tmp_path / "models"
    src = ROOT / "models" / "signnet" / "verification"
    dst = root / "signnet" / "verification"
    shutil.copytree(src, dst)
    shutil.copy(dst / "signnet_int8.tflite", dst / "signnet_int8_edgetpu.tflite")
    return root


@pytest.mark.parametrize("device", ["edgetpu", "auto"])
def test_edgetpu_path_end_to_end(fake_edgetpu, models_with_compiled, tmp_path, device):
    cfg = make_config({"device": device, "split": "verification", "limit": 40,
                       "model_dir": str(models_with_compiled), "out": str(tmp_path / "run"),
                       "edgetpu_device": "usb:0", "latency": 5})
    out, results = run(cfg, quiet=True)
    assert fake_edgetpu == [("libedgetpu.so.1", {"device": "usb:0"})]
    res = read_results(out)
    assert res["device_resolved"] == "edgetpu"
    assert set(res["variants"]) == {"float", "int8", "int8-edgetpu"}
    tpu = res["variants"]["int8-edgetpu"]
    assert tpu["device"] == "edgetpu" and tpu["runtime"]["device"] == "usb:0"
    assert tpu["model_file"].endswith("signnet_int8_edgetpu.tflite")
    assert tpu["latency"]["n"] == 5
    att = res["attribution"]
    # the fake runs the same int8 kernels, so CPU and "TPU" must agree exactly
    assert att["int8_cpu_vs_edgetpu"]["top1"] == 1.0
    assert att["int8_cpu_vs_edgetpu"]["max_abs_prob_diff"] == 0.0
    assert att["device_delta"] == 0.0
    assert "int8-edgetpu" in res["swaps"]
    a = load_predictions(out, "int8")["probs"]
    b = load_predictions(out, "int8-edgetpu")["probs"]
    np.testing.assert_array_equal(a, b)


def test_auto_without_runtime_uses_the_cpu(monkeypatch, tmp_path):
    monkeypatch.setattr(edgetpu, "find_delegate_library", lambda system=None: None)
    cfg = make_config({"device": "auto", "split": "verification", "limit": 20,
                       "out": str(tmp_path / "run")})
    out, _ = run(cfg, quiet=True)
    res = read_results(out)
    assert res["device_resolved"] == "cpu" and set(res["variants"]) == {"float", "int8"}


def test_auto_with_runtime_but_no_device_falls_back(monkeypatch, models_with_compiled, tmp_path):
    def failing(lib, options):
        raise ValueError("Failed to load delegate from libedgetpu.so.1")

    rt = runtime.find_runtime()
    monkeypatch.setattr(edgetpu, "find_delegate_library", lambda system=None: "libedgetpu.so.1")
    monkeypatch.setattr(edgetpu, "find_runtime", lambda prefer=None: runtime.Runtime(
        "fake", "0", rt.Interpreter, failing))
    cfg = make_config({"device": "auto", "split": "verification", "limit": 20,
                       "model_dir": str(models_with_compiled), "out": str(tmp_path / "run")})
    out, _ = run(cfg, quiet=True)
    res = read_results(out)
    assert set(res["variants"]) == {"float", "int8"}
    with pytest.raises(Exception, match="no Edge TPU device found"):
        run(make_config({"device": "edgetpu", "split": "verification", "limit": 20,
                         "model_dir": str(models_with_compiled),
                         "out": str(tmp_path / "run2")}), quiet=True)


@pytest.mark.edgetpu
@pytest.mark.skipif(edgetpu.find_delegate_library() is None,
                    reason="no Edge TPU runtime (libedgetpu) on this machine")
def test_real_edgetpu(tmp_path):
    compiled = ROOT / "models" / "signnet" / "verification" / "signnet_int8_edgetpu.tflite"
    if not compiled.is_file():
        pytest.skip("no compiled model: run tools/compile_all.sh on an x86-64 host")
    out, res = run(make_config({"device": "edgetpu", "split": "verification", "limit": 100,
                                "out": str(tmp_path / "run")}), quiet=True)
    assert res["verification"]["attribution"]["int8_cpu_vs_edgetpu"]["top1"] > 0.95


def test_auto_without_compiled_model_uses_the_cpu(fake_edgetpu, tmp_path):
    cfg = make_config({"device": "auto", "split": "verification", "limit": 20,
                       "out": str(tmp_path / "run")})
    out, _ = run(cfg, quiet=True)
    res = read_results(out)
    assert set(res["variants"]) == {"float", "int8"} and fake_edgetpu == []


def test_pycoral_make_interpreter_is_used_when_installed(monkeypatch, models_with_compiled):
    calls = []
    real = runtime.find_runtime()

    def make_interpreter(path, device=None):
        calls.append((path, device))
        return real.Interpreter(model_path=path)

    monkeypatch.setattr(edgetpu, "_pycoral_make_interpreter", lambda: make_interpreter)
    model = models_with_compiled / "signnet" / "verification" / "signnet_int8_edgetpu.tflite"
    b = edgetpu.EdgeTPUBackend(model, device="pci:0", library="libedgetpu.so.1")
    assert calls == [(str(model), "pci:0")]
    assert b.info()["runtime"] == "pycoral" and b.info()["device"] == "pci:0"
