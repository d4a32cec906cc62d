"""Quantization adapters, interpreter selection and the Edge TPU error paths."""

import numpy as np
import pytest

from benchmark.backends import base, edgetpu, runtime
from benchmark.backends.fake import FakeBackend
from benchmark.errors import BackendUnavailable
from conftest import ROOT


def test_quantize_uses_the_tensors_own_parameters():
    spec = base.TensorSpec("x", (1, 3), np.dtype(np.int8), scale=0.5, zero_point=-3)
    q = base.quantize(np.array([[0.0, 1.0, 100.0]]), spec)
    np.testing.assert_array_equal(q, [[-3, -1, 127]])       # saturates at 127
    np.testing.assert_allclose(base.dequantize(q, spec), [[0.0, 1.0, 65.0]])
    u = base.TensorSpec("x", (1, 2), np.dtype(np.uint8), scale=1 / 255, zero_point=0)
    raw = np.array([[0, 255]], np.uint8)
    np.testing.assert_array_equal(base.quantize(raw / 255.0, u), raw)  # lossless round trip


def test_float_tensor_passthrough():
    spec = base.TensorSpec("x", (1, 2), np.dtype(np.float32))
    assert not spec.quantized
    x = np.array([[0.25, 0.5]])
    assert base.quantize(x, spec).dtype == np.float32
    np.testing.assert_array_equal(base.dequantize(x, spec), x)


def test_runtime_prefers_ai_edge_litert():
    rt = runtime.find_runtime()
    assert rt.package == "ai_edge_litert"


def test_runtime_missing_package_is_one_clean_error():
    with pytest.raises(BackendUnavailable, match="no TFLite interpreter found"):
        runtime.find_runtime(prefer="no_such_runtime")


def test_delegate_library_names():
    assert edgetpu.delegate_library_name("Linux") == "libedgetpu.so.1"
    assert edgetpu.delegate_library_name("Darwin") == "libedgetpu.1.dylib"
    assert edgetpu.delegate_library_name("Windows") == "edgetpu.dll"


def test_missing_libedgetpu_names_the_missing_piece(monkeypatch):
    monkeypatch.setattr(edgetpu, "find_delegate_library", lambda system=None: None)
    with pytest.raises(BackendUnavailable, match="libedgetpu.so.1 is not installed") as e:
        edgetpu.check_edgetpu_available()
    # the advice is the matched pair, not Coral's libedgetpu1-std (known-bad with ai-edge-litert)
    assert "matched libedgetpu/interpreter pair with tools/pi/setup.sh" in str(e.value)
    assert "libedgetpu1-std" not in str(e.value) and "apt repository" not in str(e.value)


def test_delegate_failure_means_no_device(monkeypatch, tmp_path):
    from benchmark.backends.fake import make_fake_compiled
    model = tmp_path / "m_int8_edgetpu.tflite"
    make_fake_compiled(ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite",
                       model)

    def failing_load_delegate(lib, options):
        raise ValueError("Failed to load delegate from libedgetpu.so.1\n")

    fake_rt = runtime.Runtime("fake", "0", object, failing_load_delegate)
    monkeypatch.setattr(edgetpu, "find_runtime", lambda prefer=None: fake_rt)
    with pytest.raises(BackendUnavailable, match="no Edge TPU device found at usb:0"):
        edgetpu.EdgeTPUBackend(model, device="usb:0", library="libedgetpu.so.1")


def test_uncompiled_model_is_refused_on_the_edgetpu(tmp_path):
    model = tmp_path / "m_float.tflite"
    model.write_bytes(b"\0" * 16)
    with pytest.raises(BackendUnavailable, match="not compiled for the Edge TPU"):
        edgetpu.EdgeTPUBackend(model, library="libedgetpu.so.1")


def test_fake_backend_is_deterministic():
    a = FakeBackend(input_shape=(1, 4, 4, 3), num_classes=5, seed=1)
    b = FakeBackend(input_shape=(1, 4, 4, 3), num_classes=5, seed=1)
    x = np.random.default_rng(0).random((3, 4, 4, 3), dtype=np.float32)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    np.testing.assert_allclose(a.predict(x).sum(1), 1.0, rtol=1e-5)


def test_pixel_transform_table_matches_direct_path():
    from benchmark.preprocess import PixelTransform
    t = PixelTransform(scale=1 / 255, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    spec = base.TensorSpec("x", (1, 2, 2, 3), np.dtype(np.int8), scale=0.03, zero_point=-5)
    table = t.table(lambda x: base.quantize(x, spec), 3)
    img = np.random.default_rng(0).integers(0, 256, (4, 2, 2, 3), dtype=np.uint8)
    np.testing.assert_array_equal(table[img, np.arange(3)], base.quantize(t(img), spec))


def test_compiled_model_is_refused_on_the_cpu(tmp_path):
    from benchmark.backends.litert_cpu import LiteRTCPUBackend
    model = tmp_path / "m_int8_edgetpu.tflite"
    model.write_bytes(b"\0" * 16)
    with pytest.raises(BackendUnavailable, match="compiled for the Edge TPU"):
        LiteRTCPUBackend(model)


PAIRS = ROOT.parent / "shared" / "edgetpu" / "pairs"


@pytest.mark.skipif(not PAIRS.is_dir(), reason="../shared/edgetpu/pairs not present")
@pytest.mark.parametrize("name, delegated, cpu_ops", [
    ("mobilenet_v1_0.25_128_quant", 31, []),
    ("keras_lstm_mnist_ptq", 6, []),
    ("mnist4_log23", 8, ["QUANTIZE", "DEQUANTIZE"]),
    ("posenet_mobilenet_v1_075_353_481_16_quant_decoder", 37, ["CUSTOM:PosenetDecoderOp"]),
    ("deeplabv3_mnv2_dm05_pascal_quant", 64, ["RESIZE_BILINEAR", "QUANTIZE", "CONCATENATION",
                                              "CONV_2D", "CONV_2D", "RESIZE_BILINEAR",
                                              "RESIZE_BILINEAR", "ARG_MAX"]),
])
def test_tpu_proof_of_real_compiled_models(name, delegated, cpu_ops):
    """The record the Edge TPU backend keeps, read from real compiler output (README splits)."""
    p = edgetpu.tpu_proof(PAIRS / f"{name}_edgetpu.tflite")
    assert p["edgetpu_custom_ops"] == p["tpu_segments"] == 1
    assert p["ops_delegated"] == delegated and p["cpu_ops"] == cpu_ops
    assert p["cpu_op_count"] == len(cpu_ops) and p["on_chip_parameter_bytes"] > 0


def test_tpu_proof_refuses_an_uncompiled_model():
    with pytest.raises(edgetpu.NotCompiledError, match=r"no edgetpu-custom-op node \(14 ops"):
        edgetpu.tpu_proof(ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite")
