"""The Edge TPU code path end to end with a fake delegate (no Coral needed).

The fake (tests/edgetpu_fakes.py): the delegate library is "found", the Edge
TPU child process opens :class:`benchmark.backends.fake.FakeEdgeTPUBackend`
(the real EdgeTPUBackend code with a fake ``load_delegate``), and the
compiled model really holds an ``edgetpu-custom-op`` node whose options carry
the int8 model, which the fake delegate runs on the CPU kernels. Everything
else is the real code: library check, proof that the model is compiled,
delegate options, child process, evaluation, attribution.
"""

import shutil

import numpy as np
import pytest

from benchmark.backends import edgetpu, runtime
from benchmark.config import make_config
from benchmark.run import run
from conftest import ROOT, load_predictions, read_results
from edgetpu_fakes import compiled_models, use_fake_edgetpu


@pytest.fixture
def models_with_compiled(tmp_path):
    return compiled_models(tmp_path)


@pytest.fixture
def fake_edgetpu(monkeypatch):
    use_fake_edgetpu(monkeypatch)


@pytest.mark.parametrize("device", ["edgetpu", "auto"])
def test_edgetpu_path_end_to_end(fake_edgetpu, models_with_compiled, tmp_path, device):
    cfg = make_config({"device": device, "split": "verification", "limit": 40,
                       "model_dir": str(models_with_compiled), "out": str(tmp_path / "run"),
                       "edgetpu_device": "usb:0", "latency": 5})
    out, results = run(cfg, quiet=True)
    res = read_results(out)
    assert res["device_resolved"] == "edgetpu"
    assert set(res["variants"]) == {"float", "int8", "int8-edgetpu"}
    tpu = res["variants"]["int8-edgetpu"]
    assert tpu["device"] == "edgetpu" and tpu["runtime"]["device"] == "usb:0"
    assert tpu["runtime"]["delegate_options"] == {"device": "usb:0"}
    assert tpu["runtime"]["isolation"] == "child process"
    assert tpu["runtime"]["pairing"]["interpreter"]["package"].startswith("fake-")
    proof = tpu["runtime"]["tpu"]
    assert proof["edgetpu_custom_ops"] == 1 and proof["tpu_segments"] == 1
    assert proof["cpu_ops"] == [] and proof["ops_delegated"] == 14
    assert tpu["model_file"].endswith("signnet_int8_edgetpu.tflite")
    assert tpu["latency"]["n"] == 5
    att = res["attribution"]
    # this fake runs the same int8 kernels unperturbed (test_attribution perturbs them)
    assert att["int8_cpu_vs_edgetpu"]["top1"] == 1.0
    assert att["int8_cpu_vs_edgetpu"]["lsb"]["max_lsb"] == 0
    assert att["device_delta"] == 0.0 and att["device_change"]["mcnemar_p"] == 1.0
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
    use_fake_edgetpu(monkeypatch, fail="no-device", fail_at="delegate")
    cfg = make_config({"device": "auto", "split": "verification", "limit": 20,
                       "model_dir": str(models_with_compiled), "out": str(tmp_path / "run")})
    out, _ = run(cfg, quiet=True)
    res = read_results(out)
    assert set(res["variants"]) == {"float", "int8"}
    assert "Failed to load delegate" in res["edgetpu_failure"]["error"]
    with pytest.raises(Exception, match="no Edge TPU device found"):
        run(make_config({"device": "edgetpu", "split": "verification", "limit": 20,
                         "model_dir": str(models_with_compiled),
                         "out": str(tmp_path / "run2")}), quiet=True)
    assert set(read_results(tmp_path / "run2")["variants"]) == {"float", "int8"}


def test_renamed_cpu_model_is_refused(fake_edgetpu, tmp_path, capsys):
    """A CPU int8 model renamed to *_edgetpu.tflite would run on the CPU: refused, one line
    (by the backend itself, and by the run before anything is evaluated)."""
    from benchmark.commands import main
    root = tmp_path / "models"
    dst = root / "signnet" / "verification"
    shutil.copytree(ROOT / "models" / "signnet" / "verification", dst)
    shutil.copy(dst / "signnet_int8.tflite", dst / "signnet_int8_edgetpu.tflite")
    with pytest.raises(edgetpu.NotCompiledError, match="no edgetpu-custom-op node"):
        edgetpu.EdgeTPUBackend(dst / "signnet_int8_edgetpu.tflite", library="libedgetpu.so.1")
    rc = main(["run", "--device", "edgetpu", "--split", "verification", "--limit", "10",
               "--model-dir", str(root), "--out", str(tmp_path / "run"), "--quiet",
               "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3 and len(err) == 1 and "edgetpu-custom-op" in err[0], err


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
    assert set(res["variants"]) == {"float", "int8"} and "edgetpu_failure" not in res


def test_pycoral_make_interpreter_is_used_when_installed(monkeypatch, models_with_compiled):
    calls = []
    real = runtime.find_runtime()
    cpu_model = models_with_compiled / "signnet" / "verification" / "signnet_int8.tflite"

    def make_interpreter(path, device=None):
        calls.append((path, device))
        return real.Interpreter(model_path=str(cpu_model))

    monkeypatch.setattr(edgetpu, "_pycoral_make_interpreter", lambda: make_interpreter)
    model = models_with_compiled / "signnet" / "verification" / "signnet_int8_edgetpu.tflite"
    b = edgetpu.EdgeTPUBackend(model, device="pci:0", library="libedgetpu.so.1")
    assert calls == [(str(model), "pci:0")]
    assert b.info()["runtime"] == "pycoral" and b.info()["device"] == "pci:0"
    # pycoral's pairing is recorded as its tflite_runtime (judged, not refused or switched)
    assert b.info()["pairing"]["interpreter"]["package"] == "tflite_runtime"
