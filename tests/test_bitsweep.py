"""Weight-bit sweep: re-quantized weights against an independent numpy reference."""

import numpy as np
import pytest

from benchmark.backends.litert_cpu import LiteRTCPUBackend
from benchmark.quant.bitsweep import fake_quantize, requantize_weights
from benchmark.tflite_graph import op_name, unpack_model
from conftest import ROOT, read_results

INT8 = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"


def _weights(blob):
    """(op, real weights, int weights, scales, bias int32, bias scales, input scale) per layer."""
    m, schema = unpack_model(blob)
    g = m.subgraphs[0]
    out = []
    for op in g.operators:
        if op_name(m, schema, op) in ("CONV_2D", "FULLY_CONNECTED"):
            x, w, b = (g.tensors[i] for i in op.inputs[:3])
            wi = np.asarray(m.buffers[w.buffer].data, np.uint8).view(np.int8).reshape(w.shape)
            s = np.asarray(w.quantization.scale, np.float64)
            bi = np.asarray(m.buffers[b.buffer].data, np.uint8).view(np.int32)
            out.append((wi * s.reshape(-1, *[1] * (wi.ndim - 1)), wi, s, bi,
                        np.asarray(b.quantization.scale, np.float64),
                        float(x.quantization.scale[0])))
    return out


def test_fake_quantize_by_hand():
    q, s = fake_quantize(np.array([[0.7, -0.35, 0.0], [0.0, 0.0, 0.0]]), 3, axis=0)
    # channel 0: max 0.7 -> scale 0.7/3; 0.7 -> 3, -0.35 -> -1.5 -> rint -2 ; zero channel -> 1
    assert q.tolist() == [[3, -2, 0], [0, 0, 0]]
    np.testing.assert_allclose(s, [0.7 / 3, 1.0])
    with pytest.raises(ValueError):
        fake_quantize(np.ones(3), 1, axis=None)


@pytest.mark.parametrize("bits", [6, 4])
def test_requantized_weights_match_an_independent_reference(bits):
    before = _weights(INT8.read_bytes())
    after = _weights(requantize_weights(INT8, bits))
    qmax = 2 ** (bits - 1) - 1
    for (w0, _, _, b0, bs0, xs), (w1, q1, s1, b1, bs1, xs1) in zip(before, after):
        assert xs == xs1
        flat = w0.reshape(w0.shape[0], -1)                   # per output channel
        ref_scale = np.abs(flat).max(axis=1) / qmax
        ref_q = np.clip(np.round(flat / ref_scale[:, None]), -qmax, qmax)
        np.testing.assert_allclose(s1, ref_scale, rtol=1e-6)
        np.testing.assert_array_equal(q1.reshape(q1.shape[0], -1), ref_q)
        assert np.abs(q1).max() <= qmax
        # biases keep their real value on the new scale input_scale * weight_scale
        np.testing.assert_allclose(bs1, xs * s1, rtol=1e-6)
        np.testing.assert_allclose(b1 * bs1, b0 * bs0, atol=bs1.max())


def test_eight_bits_reproduces_the_int8_model():
    imgs = np.random.default_rng(0).integers(0, 256, (16, 80, 80, 3), dtype=np.uint8)
    from benchmark.preprocess import PixelTransform
    a = LiteRTCPUBackend(INT8, num_threads=1).predict_images(imgs, PixelTransform())
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(requantize_weights(INT8, 8))
        f.flush()
        b = LiteRTCPUBackend(f.name, num_threads=1).predict_images(imgs, PixelTransform())
        assert (a.argmax(1) == b.argmax(1)).all()
        assert np.abs(a - b).max() <= 2 / 256      # at most a couple of output steps


def test_run_with_weight_bits(tmp_path):
    from conftest import run_cli
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--split", "verification", "--limit", "60", "--weight-bits",
                "8,4", "--out", out, "--quiet", "--no-report")
    assert r.returncode == 0, r.stderr
    assert "weight-bit sweep" in r.stdout
    res = read_results(out)
    assert {"float", "int8", "w8", "w4"} <= set(res["variants"])
    assert set(res["swaps"]) == {"reference", "int8", "w8", "w4"}
    assert (out / "models" / "signnet_w4.tflite").is_file()
    assert (out / "predictions_w4.npz").is_file()
    bad = run_cli("benchmark.run", "--weight-bits", "8,1", "--out", tmp_path / "bad")
    assert bad.returncode == 2 and "--weight-bits must be distinct bit widths" in bad.stderr
