"""The Edge TPU child process on its own: every way the fake delegate fails, one line each."""

import signal

import numpy as np
import pytest

from benchmark.backends import edgetpu, isolated
from benchmark.backends.fake import make_fake_compiled
from benchmark.errors import BackendUnavailable, DataError, UsageError
from conftest import ROOT

INT8 = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"
FAKE = "benchmark.backends.fake:FakeEdgeTPUBackend"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("compiled")
    path = d / "signnet_int8_edgetpu.tflite"
    make_fake_compiled(INT8, path)
    return path


def _open(path, **kw):
    return isolated.IsolatedEdgeTPUBackend(path, target=FAKE, **kw)


def test_child_runs_and_answers(compiled):
    x = np.random.default_rng(0).random((3, 80, 80, 3), np.float32)
    with _open(compiled, device=":0") as b:
        y = b.predict(x)
        info = b.info()
        proc = b._proc
    assert y.shape == (3, 30) and np.allclose(y.sum(1), 1.0, atol=0.05)
    assert info["isolation"] == "child process" and info["device"] == ":0"
    assert info["device_used"] is None                  # the fake library lists nothing
    assert proc.poll() == 0                             # closed cleanly


def test_abort_mid_run_names_the_device(compiled):
    b = _open(compiled, fail="abort", fail_at="invoke", fail_after=2)
    x = np.zeros((5, 80, 80, 3), np.float32)
    with pytest.raises(isolated.EdgeTPUFailure) as e:
        b.predict(x)
    assert e.value.signal_name == "SIGABRT" and e.value.stage == "invoking"
    assert "killed by SIGABRT" in str(e.value) and "unplugged" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(isolated.EdgeTPUFailure, match="child process is gone"):
        b.predict(x)


def test_segfault_while_loading_names_the_pairing(compiled):
    with pytest.raises(isolated.EdgeTPUFailure) as e:
        _open(compiled, fail="segv", fail_at="delegate")
    assert e.value.signal_name == signal.Signals.SIGSEGV.name
    assert "runtime pairing" in e.value.cause


def test_no_device_and_not_compiled_keep_their_class(compiled, tmp_path):
    with pytest.raises(BackendUnavailable, match="no Edge TPU device found at usb:1.*"
                       "Failed to load delegate.*likely cause: no device or no access"):
        _open(compiled, device="usb:1", fail="no-device", fail_at="delegate")
    renamed = tmp_path / "x_edgetpu.tflite"
    renamed.write_bytes(INT8.read_bytes())
    with pytest.raises(edgetpu.NotCompiledError, match="no edgetpu-custom-op node"):
        _open(renamed)
    assert issubclass(edgetpu.NotCompiledError, DataError)


def test_timeout_option_is_checked(monkeypatch, compiled):
    monkeypatch.setenv(isolated.ENV_TIMEOUT, "soon")
    with pytest.raises(UsageError, match="EDGETPU_BENCH_TPU_TIMEOUT"):
        _open(compiled)
    monkeypatch.setenv(isolated.ENV_TIMEOUT, "2.5")
    assert isolated.timeout_seconds() == 2.5


def test_fake_compiled_model_needs_the_delegate(compiled):
    """Like a real compiled model, the CPU interpreter alone cannot run it."""
    from benchmark.backends.runtime import find_runtime
    it = find_runtime().Interpreter(model_path=str(compiled))
    with pytest.raises(RuntimeError, match="unresolved custom op: edgetpu-custom-op"):
        it.allocate_tensors()
