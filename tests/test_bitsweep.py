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


# ------------------------------------------------------------------ activation bits


def test_coarser_grid_by_hand():
    from benchmark.quant.actbits import coarser

    assert coarser(0.02, -128, 8) == (np.float32(0.02), -128)
    s, z = coarser(0.02, -128, 4)              # ReLU output: 0 stays at -128
    assert s == pytest.approx(0.02 * 17) and z == -128
    s, z = coarser(0.01, 10, 6)                # f = 255/63; -128 stays -128
    assert z == round(-128 + 138 * 63 / 255)
    with pytest.raises(ValueError):
        coarser(0.1, 0, 1)


def test_eight_activation_bits_reproduce_the_int8_model():
    from benchmark.quant.actbits import requantize_activations

    assert requantize_activations(INT8, 8) == INT8.read_bytes()


@pytest.mark.parametrize("bits", [6, 4])
def test_activation_variants_are_standard_int8_and_pass_the_analyzer(bits):
    from benchmark.compile.analyzer import analyze
    from benchmark.convert import check_int8_graph
    from benchmark.quant.actbits import requantize_activations
    from benchmark.tflite_graph import read_graph

    blob = requantize_activations(INT8, bits)
    g, ref = read_graph(blob), read_graph(INT8)
    assert check_int8_graph(g) == []
    assert g.op_names == ref.op_names
    a = analyze(blob)
    assert a["error"] is None and a["ops_on_tpu"] == a["total_ops"] == len(ref.operators)
    # pooling / reshape keep their input's quantization (the kernels require it)
    for op in g.operators:
        if op.name in ("MAX_POOL_2D", "RESHAPE"):
            i, o = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
            assert (i.scale[0], i.zero_point[0]) == (o.scale[0], o.zero_point[0])
    # the model's own input/output and the softmax keep theirs
    for t in g.input_tensors() + g.output_tensors():
        r = ref.tensors[t.index]
        assert (t.scale[0], t.zero_point[0]) == (r.scale[0], r.zero_point[0])


def test_activation_values_lie_on_the_coarse_grid():
    """On real images, a ReLU conv output of a4 uses the lowest 16 integers (plus headroom)."""
    from benchmark.backends.runtime import find_runtime
    from benchmark.diagnose.cli import _open
    from benchmark.quant.actbits import requantize_activations
    from benchmark.tflite_graph import read_graph

    blob = requantize_activations(INT8, 4)
    g = read_graph(blob)
    it = _open(find_runtime(), "builtin", content=blob)
    conv = [op.outputs[0] for op in g.operators if op.name == "CONV_2D"]
    rng = np.random.default_rng(0)
    d = it.get_input_details()[0]
    vals = {t: [] for t in conv}
    for _ in range(4):
        it.set_tensor(d["index"], rng.integers(0, 256, d["shape"], dtype=np.uint8))
        it.invoke()
        for t in conv:
            vals[t].append(it.get_tensor(t).ravel())
    for t, v in vals.items():
        v = np.concatenate(v).astype(int)
        assert v.min() >= -128 and np.mean(v <= -128 + 15) > 0.95, g.tensors[t].name
