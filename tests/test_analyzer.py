"""Static Edge TPU analyzer: golden results on the shipped model and on models the tests build."""

import numpy as np
import pytest

from benchmark.compile.analyzer import (AFTER_CPU, BAD_TYPE, MAPPED, NOT_SUPPORTED, OTHERWISE,
                                        analyze, analyze_graph)
from benchmark.tflite_graph import read_graph
from conftest import ROOT

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
    assert r["error"] == {"kind": "not_quantized", "message": "Model not quantized"}
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
def test_dynamic_batch_falls_back_to_cpu_at_the_first_shape_op(tf):
    g = _tiny(tf, lambda x: x, batch_size=None)
    r = analyze_graph(g)
    names = [d["operator"] for d in r["detail"]]
    first_shape = names.index("SHAPE")
    assert r["first_cpu_op"]["operator"] == "SHAPE"
    assert r["first_cpu_op"]["index"] == first_shape
    assert all(d["status"] == MAPPED for d in r["detail"][:first_shape])
    assert r["detail"][first_shape]["status"] == NOT_SUPPORTED
    later = r["detail"][first_shape + 1:]
    assert later and all(d["status"] != MAPPED for d in later)
    assert any(d["status"] == AFTER_CPU for d in later)
    assert r["ops_on_tpu"] == first_shape
    assert r["dynamic_tensors"] > 0 and "fixed batch of 1" in r["warnings"][0]


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
    assert "CONV_2D v6 (compiler 16 parses up to v5)" in r["error"]["message"]
    assert r["ops_on_tpu"] == 0
