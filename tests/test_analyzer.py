"""Static Edge TPU analyzer: golden results on the shipped model and on models the tests build."""

import numpy as np
import pytest

from benchmark.compile.analyzer import (AFTER_CPU, BAD_TYPE, DYNAMIC_LINES, MAPPED,
                                        NOT_SUPPORTED, OTHERWISE, analyze, analyze_graph)
from benchmark.tflite_graph import read_graph
from conftest import ROOT, SHARED

SHIPPED = ROOT / "models" / "signnet" / "verification"


def test_shipped_signnet_int8_maps_fully():
    r = analyze(SHIPPED / "signnet_int8.tflite")
    assert r["error"] is None
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["subgraphs"]) == (14, 0, 1)
    assert r["operators"] == [
        {"operator": "QUANTIZE", "count": 2, "status": MAPPED},
        {"operator": "CONV_2D", "count": 4, "status": MAPPED},
        {"operator": "MAX_POOL_2D", "count": 4, "status": MAPPED},
        {"operator": "RESHAPE", "count": 1, "status": MAPPED},
        {"operator": "FULLY_CONNECTED", "count": 2, "status": MAPPED},
        {"operator": "SOFTMAX", "count": 1, "status": MAPPED},
    ]
    assert r["fits_on_chip_cache"] and 0 < r["parameter_bytes_on_tpu"] < 300_000


def test_float_model_is_rejected_as_not_quantized():
    r = analyze(SHIPPED / "signnet_float.tflite")
    assert r["error"] == {"kind": "not_quantized", "message": "Model not quantized",
                          "lines": ["Invalid model: <model>", "Model not quantized"]}
    assert r["ops_on_tpu"] == 0 and r["ops_on_cpu"] == 12
    assert {row["status"] for row in r["operators"]} == {BAD_TYPE}


def _tiny(tf, build_middle, batch_size=1, rep_seed=0):
    import keras
    from benchmark.convert import to_tflite
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), batch_size=batch_size)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = build_middle(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5, activation="softmax")(x)
    rep = np.random.default_rng(rep_seed).random((8, 16, 16, 3), dtype=np.float32)
    return read_graph(to_tflite(tf, keras.Model(inp, x), rep, "uint8"))


@pytest.mark.slow
def test_dynamic_batch_is_the_compilers_dynamic_tensor_failure(tf):
    """Batch None + Flatten: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE computes a shape at run
    time; the compiler's interpreter run refuses the delegate (log 36)."""
    g = _tiny(tf, lambda x: x, batch_size=None)
    assert {"SHAPE", "PACK"} <= set(g.op_names)
    r = analyze_graph(g)
    assert r["error"]["kind"] == "dynamic_shapes"
    log = (SHARED / "edgetpu" / "36_console_dynamic_sized_tensors_failed_v16.log")
    expected = DYNAMIC_LINES
    if log.is_file():
        expected = [ln.strip() for ln in log.read_text().splitlines()
                    if "ailed" in ln or ln.startswith("ERROR")]
    assert [ln.strip() for ln in r["error"]["lines"]] == expected
    assert "RESHAPE" in r["error"]["detail"]
    assert (r["ops_on_tpu"], r["subgraphs"]) == (0, 0) and r["ops_on_cpu"] == len(g.operators)
    assert r["dynamic_tensors"] > 0


@pytest.mark.slow
def test_exp_v2_is_the_compilers_parse_failure(tf):
    """TF 2.21 emits EXP v2 for int8; compiler 16 registers EXP v1 only (libedgetpu#71)."""
    g = _tiny(tf, lambda x: keras_layer(tf, "exp")(x))
    assert ("EXP", 2) in [(o.name, o.version) for o in g.operators]
    r = analyze_graph(g)
    assert r["error"]["kind"] == "op_version"
    assert r["error"]["message"] == ("ERROR: Didn't find op for builtin opcode 'EXP' version '2'."
                                     " An older version of this builtin might be supported. "
                                     "Are you using an old TFLite binary with a newer model?")
    assert r["error"]["lines"][-1] == "Model could not be parsed"
    assert r["ops_on_tpu"] == 0 and r["subgraphs"] == 0


@pytest.mark.slow
def test_gelu_is_an_op_code_the_compiler_does_not_know(tf):
    """GELU (op code 150, TFLite 2.9) is newer than the compiler's schema."""
    g = _tiny(tf, lambda x: keras_layer(tf, "gelu")(x))
    assert "GELU" in g.op_names
    r = analyze_graph(g)
    assert r["error"]["kind"] == "op_version"
    assert r["error"]["message"].startswith("ERROR: Op builtin_code out of range: 150.")
    assert r["ops_on_tpu"] == 0


def keras_layer(tf, kind):
    import keras
    if kind == "exp":
        return keras.layers.Lambda(lambda t: tf.exp(t))
    return keras.layers.Activation(kind)


@pytest.mark.slow
def test_unsupported_op_in_the_middle_sends_the_rest_to_cpu(tf):
    import keras
    g = _tiny(tf, lambda x: keras.layers.Activation("hard_swish")(
        keras.layers.Conv2D(4, 3, padding="same")(x)))
    r = analyze_graph(g)
    names = [d["operator"] for d in r["detail"]]
    assert "HARD_SWISH" in names
    cut = names.index("HARD_SWISH")
    assert r["first_cpu_op"]["operator"] == "HARD_SWISH"
    assert [d["status"] for d in r["detail"][:cut]] == [MAPPED] * cut
    assert r["detail"][cut]["status"] == NOT_SUPPORTED
    rest = r["detail"][cut + 1:]
    assert {d["status"] for d in rest} == {AFTER_CPU}
    assert (r["ops_on_tpu"], r["ops_on_cpu"]) == (cut, len(names) - cut)
    assert {"operator": "HARD_SWISH", "count": 1, "status": NOT_SUPPORTED} in r["operators"]


@pytest.mark.slow
def test_relu_after_pool_is_flagged_as_fused_pool_activation(tf):
    """The blog's conv -> pool -> ReLU order converts to MAX_POOL_2D with a fused ReLU."""
    import keras
    g = _tiny(tf, lambda x: keras.layers.ReLU()(keras.layers.MaxPooling2D()(
        keras.layers.Conv2D(4, 3, padding="same")(x))))
    r = analyze_graph(g)
    fused = [d for d in r["detail"] if d["operator"] == "MAX_POOL_2D" and d["status"] == OTHERWISE]
    assert fused and "fused RELU" in fused[0]["reason"]


def test_too_new_op_versions_are_a_model_level_error(monkeypatch):
    from benchmark.compile import analyzer
    g = read_graph(SHIPPED / "signnet_int8.tflite")
    for op in g.operators:
        if op.name == "CONV_2D":
            op.version = 6   # what TF 2.9+ emits for some convs; compiler 16 cannot parse it
    r = analyzer.analyze_graph(g)
    assert r["error"]["kind"] == "op_version"
    assert "'CONV_2D' version '6'" in r["error"]["message"]
    assert "CONV_2D v6" in r["error"]["detail"]
    assert r["ops_on_tpu"] == 0
