"""On a real Coral Edge TPU (``-m edgetpu``; skipped without libedgetpu or a device).

Runs Coral's MobileNet v1 0.25 pair from ../shared/edgetpu/pairs (the uncompiled model on the
CPU, the compiled one on the TPU) on seeded random images: the delegate loads in its child
process, the model handed to it holds the custom op, the TPU agrees with the CPU int8 model
within the LSB tolerance, and the cold first invoke is slower than the warm ones.
"""

import numpy as np
import pytest

from benchmark.backends import edgetpu, make_backend
from benchmark.compare import LSB_TOLERANCE, lsb_difference
from conftest import SHARED

PAIRS = SHARED / "edgetpu" / "pairs"
CPU_MODEL = PAIRS / "mobilenet_v1_0.25_128_quant.tflite"
TPU_MODEL = PAIRS / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"

pytestmark = [
    pytest.mark.edgetpu,
    pytest.mark.skipif(edgetpu.find_delegate_library() is None,
                       reason="no Edge TPU runtime (libedgetpu) on this machine"),
    pytest.mark.skipif(not TPU_MODEL.is_file(), reason="../shared/edgetpu/pairs not present"),
]


@pytest.fixture(scope="module")
def tpu():
    from benchmark import devices
    if not devices.list_devices():
        pytest.skip("libedgetpu lists no Edge TPU")
    with make_backend("edgetpu", TPU_MODEL) as b:
        yield b


def _images(n=32):
    return np.random.default_rng(0).integers(0, 256, (n, 128, 128, 3), np.uint8)


def test_delegate_loads_and_the_custom_op_is_there(tpu):
    info = tpu.info()
    assert info["isolation"] == "child process"
    assert info["tpu"]["edgetpu_custom_ops"] >= 1 and info["tpu"]["cpu_ops"] == []
    assert info["tpu"]["ops_delegated"] == 31
    assert info["device_used"] is not None and info["device_used"]["path"]
    assert info["pairing"]["status"] in ("known-good", "unknown")   # known-bad is refused


def test_tpu_agrees_with_cpu_int8_within_tolerance(tpu):
    from benchmark.preprocess import PixelTransform
    cpu = make_backend("cpu", CPU_MODEL, num_threads=1)
    x = _images()
    a = cpu.predict_images(x, PixelTransform())
    b = tpu.predict_images(x, PixelTransform())
    r = lsb_difference(a, b, scale=tpu.output_spec.scale)
    assert r["within_tolerance"] >= 0.99, r                     # +-LSB_TOLERANCE
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.9
    assert LSB_TOLERANCE == r["tolerance"]


def test_latency_cold_vs_warm():
    from benchmark.latency import measure_latency, time_first_invoke
    with make_backend("edgetpu", TPU_MODEL) as b:      # fresh: the first invoke uploads
        cold = time_first_invoke(b)
        r = measure_latency(b, runs=50, warmup=5, first_invoke_ms=cold)
    assert r["delegate_ms"] >= 0 and r["allocate_ms"] >= 0
    assert cold > r["p50_ms"], r
    assert 0 < r["p50_ms"] < 50
