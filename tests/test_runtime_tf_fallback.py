"""find_runtime() falls back to TensorFlow's interpreter without LiteRT and tflite_runtime."""

import sys

import numpy as np

from benchmark.backends import runtime
from conftest import ROOT

MODEL = ROOT / "models" / "signnet" / "full" / "signnet_float.tflite"


def _hide(monkeypatch, *packages):
    """Make ``packages`` (and their interpreter submodules) unimportable."""
    for name in packages:
        for mod in (name, f"{name}.interpreter"):
            monkeypatch.setitem(sys.modules, mod, None)


def test_tensorflow_fallback_interpreter_loads_a_model(monkeypatch, tf):
    _hide(monkeypatch, "ai_edge_litert", "tflite_runtime")
    rt = runtime.find_runtime()
    assert rt.package == "tensorflow" and rt.version == tf.__version__
    assert rt.Interpreter is tf.lite.Interpreter
    assert rt.load_delegate is tf.lite.experimental.load_delegate
    it = rt.Interpreter(model_path=str(MODEL), num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    it.invoke()
    probs = it.get_tensor(out["index"])
    assert probs.shape[0] == 1 and np.isclose(probs.sum(), 1.0, atol=1e-3)


def test_prefer_tensorflow(tf):
    assert runtime.find_runtime(prefer="tensorflow").Interpreter is tf.lite.Interpreter


def test_nothing_importable_lists_each_problem(monkeypatch):
    _hide(monkeypatch, "ai_edge_litert", "tflite_runtime")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    try:
        runtime.find_runtime()
    except runtime.BackendUnavailable as e:
        msg = str(e)
    else:
        raise AssertionError("find_runtime() found a runtime with none importable")
    assert "no TFLite interpreter found" in msg
    assert all(p in msg for p in ("ai_edge_litert:", "tflite_runtime:", "tensorflow:"))
