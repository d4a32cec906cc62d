"""benchmark.diagnose: verdict rules, ties, real SignNet conversions (collapsed, dark, ok)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from benchmark.diagnose import verdict as V
from conftest import ROOT

SHIPPED = ROOT / "models" / "signnet" / "verification"


def _row(name, ev, cal, *, op="CONV_2D", use=1.0, sqnr=40.0, fixed=False):
    return {"tensor": name, "op": op, "index": 0, "fixed_range": fixed, "range_use": use,
            "accumulated_sqnr_db": sqnr, "eval": {"clipped": ev, "at_limits": ev},
            "calibration": {"clipped": cal, "at_limits": cal}}


def _out(**kw):
    base = {"n": 100, "int8_accuracy": 0.99, "float_accuracy": 0.99, "ties_in_top1": 0.0,
            "ties": 0, "new_errors": 0, "new_errors_lower": 0, "new_errors_lower_share": None}
    return {**base, **kw}


def test_coverage_names_the_saturated_tensors_and_skips_fixed_ranges():
    rows = [_row("a", 0.30, 0.0), _row("b", 0.0001, 0.0), _row("c", 0.01, 0.0),
            _row("soft", 0.5, 0.0, op="SOFTMAX", fixed=True),
            _row("d", 0.004, 0.002)]  # saturates on calibration too: ratio 2 < 5
    v = V.verdict(rows, None, _out(int8_accuracy=0.80))
    assert v["mechanism"] == "calibration coverage"
    assert v["findings"][0]["tensors"] == ["a", "c"]
    assert not v["healthy"]


def test_input_clipping_outranks_coverage_only_when_it_clips_more():
    inp_row = {"tensor": "in", "int8_range": [0.0, 0.5], "scale": 0.5 / 255}
    x_eval = np.linspace(0, 1, 1001)          # half of the values above 0.5
    check = V.input_check(inp_row, (0.0, 1.0), x_eval, x_eval * 0.5)
    assert check["narrower"] and 0.49 < check["eval_clipped"] < 0.51
    assert check["calibration_clipped"] == 0.0
    few = V.verdict([_row("a", 0.05, 0.0)], check, _out())
    assert [f["mechanism"] for f in few["findings"]] == ["input clipping",
                                                         "calibration coverage"]
    many = V.verdict([_row("a", 0.9, 0.0)], check, _out())
    assert many["mechanism"] == "calibration coverage"


def test_ties_and_direction_of_new_errors():
    raw = np.array([[9, 9, 1],    # tie, argmax 0; float said 1 (true 1): new error, lower
                    [1, 9, 9],    # tie, argmax 1; float 2 (true 2): new error, lower
                    [1, 2, 9],    # clean, right
                    [9, 2, 1]], np.uint8)  # clean; float 0, true 0
    labels, fpred = np.array([1, 2, 2, 0]), np.array([1, 2, 2, 0])
    out = V.output_stats(raw, labels, fpred, None)
    assert out["ties"] == 2 and out["ties_in_top1"] == 0.5
    assert out["new_errors"] == 2 and out["new_errors_lower"] == 2
    assert out["new_errors_tied"] == 2 and out["int8_accuracy"] == 0.5
    out = {**out, "new_errors": 10, "new_errors_lower": 8, "new_errors_lower_share": 0.8}
    assert V.verdict([], None, out)["mechanism"] == "ties"
    out["new_errors_lower_share"] = 0.5
    assert V.verdict([], None, out)["findings"] == []


def test_healthy_needs_no_finding_and_a_small_drop():
    assert V.verdict([_row("a", 0.0, 0.0)], None, _out())["healthy"]
    v = V.verdict([_row("a", 0.0, 0.0)], None, _out(int8_accuracy=0.9))
    assert not v["healthy"] and v["summary"].startswith("unexplained")


def test_too_wide_ranges():
    rows = [_row("w", 0.0, 0.0, use=0.02, sqnr=9.0), _row("ok", 0.0, 0.0, use=0.02, sqnr=30)]
    v = V.verdict(rows, None, _out())
    assert v["mechanism"] == "too-wide ranges" and v["findings"][0]["tensors"] == ["w"]


def test_tensor_stats_count_saturation_but_not_a_relu_floor():
    from benchmark.diagnose.collect import TensorStats

    st = TensorStats(lo=0.0, hi=2.55, scale=0.01, count_low=False)
    real = st.add_int(np.array([-128, -128, 0, 127], np.int8), 128)
    np.testing.assert_allclose(real, [0, 0, 1.28, 2.55])
    assert st.at_low == 0 and st.at_high == 1 and st.n == 4
    st.add_float(np.array([0.0, -0.5, 1.28, 3.0]), real)
    assert st.clipped == 1          # 3.0 > 2.55; -0.5 is below a ReLU floor: not counted
    assert st.err_sq == pytest.approx(0.25 + 0.45 ** 2)


# ---------------------------------------------------------------- real conversions


@pytest.fixture(scope="module")
def small_data():
    """A small carolo-synth rendering (the shipped SignNet's classes, 12 sessions, 2/class)."""
    from benchmark.datasets.registry import load_dataset

    ds = load_dataset("carolo-synth", image_size=80, seed=0,
                      options={"n_sessions": 12, "per_class_per_session": 2}, verbose=False)
    train_idx, eval_idx = ds.split("verification", seed=0)
    return ds, train_idx, eval_idx


def _inputs(ds, eval_idx, model_dir, cal_idx, cal_images):
    from benchmark.diagnose.cli import Inputs, _calibration_info
    from benchmark.models.registry import get_model

    rep = {"indices": list(map(int, cal_idx)), "seed": 0}
    return Inputs(int8=model_dir / "signnet_int8.tflite",
                  float_model=model_dir / "signnet_float.tflite",
                  eval_images=ds.images[eval_idx], eval_labels=ds.labels[eval_idx],
                  cal_images=cal_images, calibration=_calibration_info(ds, rep, model_dir),
                  transform=get_model("signnet").preprocess, class_names=ds.class_names)


def test_shipped_signnet_is_healthy_without_tensorflow(small_data):
    from benchmark.diagnose.cli import diagnose

    if not (SHIPPED / "signnet_int8.tflite").is_file():
        pytest.skip("shipped SignNet not present")
    ds, train_idx, eval_idx = small_data
    cal_idx = train_idx[::8]      # training images of the same renderer (the shipped set's kind)
    r = diagnose(_inputs(ds, eval_idx[::2], SHIPPED, cal_idx, ds.images[cal_idx]))
    assert r["verdict"]["healthy"], r["verdict"]
    assert r["input"]["narrower"] is False
    conv = [t for t in r["tensors"] if t["op"] == "CONV_2D"]
    assert len(conv) == 4 and all(t["layer_sqnr_db"] > 25 for t in conv)


@pytest.fixture(scope="module")
def conversions(tf, small_data, tmp_path_factory):
    """Three seeded conversions of the shipped SignNet: 1 image, dark (x0.5), 64 images."""
    import keras

    from benchmark.convert import convert_keras
    from benchmark.models.registry import get_model

    if not (SHIPPED / "signnet.keras").is_file():
        pytest.skip("shipped SignNet not present")
    ds, train_idx, _ = small_data
    entry = get_model("signnet")
    model = keras.models.load_model(SHIPPED / "signnet.keras", compile=False)
    out = {}
    for name, size, spec in (("one", 1, None), ("dark", 64, "brightness:0.5"),
                             ("ok", 64, None)):
        d = tmp_path_factory.mktemp(name)
        convert_keras(model, entry, ds, train_idx, d, split="verification",
                      representative_size=size, seed=0, calibration_from=spec)
        out[name] = d
    return out


def _diagnose(small_data, d, every=1):
    """Diagnose the conversion in ``d`` on every ``every``-th evaluation image."""
    from benchmark.diagnose.cli import diagnose
    from benchmark.quant.calibration import images_of
    from benchmark.results import read_json_file

    ds, _, eval_idx = small_data
    rep = read_json_file(d / "representative_indices.json", "rep")
    return diagnose(_inputs(ds, eval_idx[::every], d, rep["indices"], images_of(ds, rep, 80)))


@pytest.mark.slow
def test_verdicts_of_three_conversions(small_data, conversions):
    # the two broken ones on half of the 180 evaluation images: their saturation (a third of
    # the dense layer's values; a fifth of the pixels) is a share of values, not of images;
    # the healthy one on all 180, where one new error is still within the 1-point drop
    one = _diagnose(small_data, conversions["one"], every=2)
    assert one["verdict"]["mechanism"] == "calibration coverage", one["verdict"]["summary"]
    named = one["verdict"]["findings"][0]["tensors"]
    assert any("probs" in t or "dense" in t for t in named)
    assert one["calibration"]["size"] == 1 and one["calibration"]["classes_covered"] == 1

    dark = _diagnose(small_data, conversions["dark"], every=2)
    assert dark["verdict"]["mechanism"] == "input clipping", dark["verdict"]["summary"]
    assert dark["input"]["narrower"] and dark["input"]["eval_clipped"] > 0.05

    ok = _diagnose(small_data, conversions["ok"])
    assert ok["verdict"]["healthy"], ok["verdict"]


@pytest.mark.slow
def test_layer_error_matches_quantization_debugger(tf, tmp_path):
    """Per-layer MSE equals TFLite's QuantizationDebugger (NumericVerify) within 1 %."""
    import csv

    import keras

    from benchmark.backends.runtime import find_runtime
    from benchmark.diagnose.cli import _open
    from benchmark.diagnose.collect import Collector
    from benchmark.diagnose.graph import OpModels, read_pair
    from benchmark.tflite_graph import read_graph

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    model = keras.Model(inp, keras.layers.Softmax()(x))
    data = np.random.default_rng(0).random((16, 16, 16, 3), dtype=np.float32)

    def gen():
        for i in range(len(data)):
            yield [data[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    dbg = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=gen)
    dbg.run()
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    theirs = [(r["op_name"], float(r["mean_squared_error"]))
              for r in csv.DictReader(io.StringIO(buf.getvalue()))]
    (tmp_path / "q.tflite").write_bytes(dbg.get_nondebug_quantized_model())
    (tmp_path / "f.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    q, _, layers = read_pair(tmp_path / "q.tflite", tmp_path / "f.tflite")
    rt = find_runtime()
    c = Collector(q, layers, _open(rt, "xnnpack", tmp_path / "q.tflite"),
                  _open(rt, "xnnpack", tmp_path / "f.tflite"),
                  OpModels(tmp_path / "f.tflite", read_graph(tmp_path / "f.tflite")),
                  lambda b: _open(rt, "xnnpack", content=b))
    stats, _, _ = c.run(data)
    ours = [(lay.op, float(np.mean(stats[lay.tensor.index].layer_mse)))
            for lay in layers if stats[lay.tensor.index].layer_mse]
    # the same ops in the same order (the debugger's names differ at the output)
    assert [op for op, _ in ours] == [op for op, _ in theirs]
    compared = [(a, b) for (_, a), (_, b) in zip(ours, theirs) if b > 1e-10]
    assert len(compared) == 4          # two convolutions, the dense layer, the softmax
    for a, b in compared:
        assert a == pytest.approx(b, rel=0.01)


def test_help_is_light_and_bad_inputs_are_one_line_errors(tmp_path):
    import subprocess
    import sys

    code = ("import sys, runpy\nsys.argv = ['x', '--help']\n"
            "try:\n    runpy.run_module('benchmark.diagnose', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'matplotlib', 'ai_edge_litert', 'torch')), "
            "file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "usage:" in r.stdout and "HEAVY []" in r.stderr
    r = subprocess.run([sys.executable, "-m", "benchmark.diagnose", "--int8",
                        str(tmp_path / "none.tflite")], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 3 and r.stderr.strip().count("\n") == 0
    assert "int8 model not found" in r.stderr


def test_float_model_of_another_network_is_refused():
    from benchmark.diagnose.graph import read_pair
    from benchmark.errors import DataError

    other = ROOT / "models" / "signnet-gtsrb" / "verification" / "signnet-gtsrb_float.tflite"
    if not other.is_file() or not (SHIPPED / "signnet_int8.tflite").is_file():
        pytest.skip("shipped models not present")
    q, f, layers = read_pair(SHIPPED / "signnet_int8.tflite", SHIPPED / "signnet_float.tflite")
    assert all(lay.float_tensor is not None for lay in layers)
    assert [lay.op for lay in layers][:2] == ["QUANTIZE", "CONV_2D"]
    # same ops (both SignNets): pairs; a graph with other ops must be refused
    from benchmark.diagnose.graph import pair_graphs
    from benchmark.tflite_graph import read_graph
    g = read_graph(other)
    g.operators = g.operators[:-1]
    with pytest.raises(DataError, match="do not match"):
        pair_graphs(q, g)
