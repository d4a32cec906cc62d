"""benchmark.backends.BACKENDS / make_backend: lazy registry, same constructor arguments."""

import subprocess
import sys

import pytest

import benchmark.backends as backends
from benchmark.backends import BACKENDS, make_backend
from benchmark.errors import UsageError
from conftest import ROOT

MODEL = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"


def test_importing_backends_loads_no_interpreter():
    code = ("import sys, benchmark.backends as b; print(b.BACKENDS.names()); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('ai_edge_litert', 'tflite_runtime', 'tensorflow') "
            "or m.startswith('benchmark.backends.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["['cpu', 'edgetpu', 'fake', 'keras']", "[]"]


def test_unknown_device_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown device 'gpu' .--device.; available: cpu, "
                                         "edgetpu, fake, keras"):
        make_backend("gpu", MODEL)


class _Recorder:
    def __init__(self, model_path, **kwargs):
        self.model_path, self.kwargs = model_path, kwargs


@pytest.mark.parametrize("device, expect", [
    ("cpu", {"num_threads": 2}),
    ("edgetpu", {"device": "usb:0", "prefer": "x"}),
    ("keras", {}),
    ("fake", {"prefer": "x"}),
])
def test_builtin_constructor_arguments(monkeypatch, device, expect):
    monkeypatch.setattr(BACKENDS, "_resolved", {device: _Recorder})
    monkeypatch.setattr(BACKENDS, "_lazy", {})
    b = make_backend(device, "m.tflite", num_threads=2, edgetpu_device="usb:0", prefer="x")
    assert b.model_path == "m.tflite" and b.kwargs == expect


def test_registered_backend_gets_given_options():
    BACKENDS.register("recorder", _Recorder)
    try:
        assert make_backend("recorder", "m", colour=1).kwargs == {"colour": 1}
        assert make_backend("recorder", "m", num_threads=3, edgetpu_device="pci").kwargs == \
            {"num_threads": 3, "device": "pci"}
    finally:
        BACKENDS.unregister("recorder")
    assert "recorder" not in backends.BACKENDS


def test_real_cpu_and_fake_backends():
    with make_backend("cpu", MODEL, num_threads=1) as b:
        assert b.info()["backend"] == "litert-cpu"
    f = make_backend("fake", None, input_shape=(1, 4, 4, 3), num_classes=5)
    assert f.output_spec.shape == (1, 5)
