"""The analyzer against the real compiler: every (model, compiled model) pair in
../shared/edgetpu/pairs, plus hand-built graphs for the dataflow partition and Coral's
per-op limits."""

from collections import Counter

import numpy as np
import pytest

from benchmark.compile.analyzer import analyze, analyze_graph, partition
from benchmark.compile.constraints import (AFTER_CPU, MAPPED, NOT_SUPPORTED, OTHERWISE, STRIDES,
                                           op_check)
from benchmark.compile.opversions import max_version, parse_verdict
from benchmark.tflite_graph import GraphInfo, OperatorInfo, TensorInfo, read_graph
from conftest import SHARED

PAIRS = SHARED / "edgetpu" / "pairs"
needs_pairs = pytest.mark.skipif(not PAIRS.is_dir(), reason="../shared/edgetpu/pairs not present")
CUSTOM_OP = "edgetpu-custom-op"


def _key(g, op):
    return op.custom_code or op.name, tuple(g.tensors[i].name for i in op.outputs)


def _pair_names():
    return sorted(p.name[:-len("_edgetpu.tflite")] for p in PAIRS.glob("*_edgetpu.tflite")) \
        if PAIRS.is_dir() else []


@needs_pairs
def test_the_seven_pairs_are_there():
    assert len(_pair_names()) == 7


@needs_pairs
@pytest.mark.parametrize("name", _pair_names())
def test_exact_tpu_cpu_split_on_every_pair(name):
    """The ops the analyzer leaves on the CPU are exactly the builtins left in the compiled
    file (matched by op type and output tensor names), and the rest maps in one subgraph."""
    src, compiled = read_graph(PAIRS / f"{name}.tflite"), read_graph(
        PAIRS / f"{name}_edgetpu.tflite")
    real_cpu = Counter(_key(compiled, op) for op in compiled.operators
                       if op.custom_code != CUSTOM_OP)
    segments = sum(op.custom_code == CUSTOM_OP for op in compiled.operators)
    r = analyze_graph(src)
    predicted_cpu = Counter(_key(src, src.operators[d["index"]]) for d in r["detail"]
                            if d["status"] != MAPPED)
    assert r["error"] is None
    assert predicted_cpu == real_cpu
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["subgraphs"]) == (
        len(src.operators) - sum(real_cpu.values()), sum(real_cpu.values()), segments)


@needs_pairs
def test_deeplab_cut_is_the_1x1_resize_and_what_depends_on_it():
    r = analyze(PAIRS / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    first = r["first_cpu_op"]
    assert (first["operator"], first["index"]) == ("RESIZE_BILINEAR", 64)
    by_index = {d["index"]: d for d in r["detail"]}
    # ops 62 and 63 come after the pooling op in the file but do not depend on the resize
    assert by_index[62]["status"] == by_index[63]["status"] == MAPPED
    assert by_index[64]["certainty"] == "observed"
    assert by_index[65]["status"] == AFTER_CPU and by_index[71]["status"] == NOT_SUPPORTED
    assert analyze(PAIRS / "deeplabv3_mnv2_dm05_pascal_quant.tflite",
                   multiple_subgraphs=True)["subgraphs"] == 2


# ------------------------------------------------------------------ hand-built graphs

def _t(i, shape, dtype="INT8", const=None, name=None):
    data = None if const is None else memoryview(np.asarray(const).astype(
        {"INT8": np.int8, "INT32": np.int32, "UINT8": np.uint8}[dtype]).tobytes())
    return TensorInfo(index=i, name=name or f"t{i}", dtype=dtype, shape=tuple(shape),
                      shape_signature=None, scale=np.array([0.1]), zero_point=np.array([0]),
                      buffer_size=len(data) if data is not None else 0, data=data)


def _graph(tensors, ops, inputs=(0,), outputs=None):
    operators = [OperatorInfo(index=k, name=name, version=1, inputs=tuple(i), outputs=tuple(o),
                              options=dict(opts or {}),
                              fused_activation=(opts or {}).get("fused_activation"))
                 for k, (name, i, o, opts) in enumerate(ops)]
    return GraphInfo(operators=operators, tensors=tensors, inputs=tuple(inputs),
                     outputs=tuple(outputs or (len(tensors) - 1,)), num_subgraphs=1)


def test_a_cpu_side_branch_does_not_cut_ops_that_do_not_depend_on_it():
    """A(conv) -> B(unsupported, a side output) ; A -> C(conv) after B in file order."""
    ts = [_t(0, (1, 4, 4, 8)), _t(1, (8, 1, 1, 8), const=np.ones((8, 1, 1, 8))),
          _t(2, (1, 4, 4, 8)), _t(3, (1, 4, 4, 8)), _t(4, (1, 4, 4, 8))]
    g = _graph(ts, [("CONV_2D", (0, 1), (2,), None), ("HARD_SWISH", (2,), (3,), None),
                    ("CONV_2D", (2, 1), (4,), None)], outputs=(3, 4))
    r = analyze_graph(g)
    assert [d["status"] for d in r["detail"]] == [MAPPED, NOT_SUPPORTED, MAPPED]
    assert (r["ops_on_tpu"], r["subgraphs"]) == (2, 1)
    assert partition(g, [True, False, True]) == [(True, [0, 2]), (False, [1])]


def test_ops_fed_by_a_cpu_op_in_the_middle_are_a_second_subgraph():
    ts = [_t(0, (1, 4, 4, 8)), _t(1, (8, 1, 1, 8), const=np.ones((8, 1, 1, 8))),
          _t(2, (1, 4, 4, 8)), _t(3, (1, 4, 4, 8)), _t(4, (1, 4, 4, 8))]
    g = _graph(ts, [("CONV_2D", (0, 1), (2,), None), ("HARD_SWISH", (2,), (3,), None),
                    ("CONV_2D", (3, 1), (4,), None)])
    r = analyze_graph(g)
    assert [d["status"] for d in r["detail"]] == [MAPPED, NOT_SUPPORTED, AFTER_CPU]
    r2 = analyze_graph(g, multiple_subgraphs=True)
    assert [d["status"] for d in r2["detail"]] == [MAPPED, NOT_SUPPORTED, MAPPED]
    assert (r["subgraphs"], r2["subgraphs"]) == (1, 2)


def test_a_cpu_op_at_the_start_does_not_cut():
    ts = [_t(0, (1, 4, 4, 8), "FLOAT32"), _t(1, (1, 4, 4, 8)), _t(2, (1, 4, 4, 8))]
    ts[0].scale = np.zeros(0)
    g = _graph(ts, [("QUANTIZE", (0,), (1,), None), ("RELU", (1,), (2,), None)])
    r = analyze_graph(g)
    assert [d["status"] for d in r["detail"]] == [OTHERWISE, MAPPED]


def _one(name, in_shape, out_shape, extra=(), opts=None):
    """A graph with one op: input tensor 0, constant inputs ``extra`` (shape, values), output."""
    ts = [_t(0, in_shape)]
    inputs = [0]
    for shape, values, dtype in extra:
        ts.append(_t(len(ts), shape, dtype, const=values))
        inputs.append(len(ts) - 1)
    ts.append(_t(len(ts), out_shape))
    g = _graph(ts, [(name, inputs, (len(ts) - 1,), opts)])
    return op_check(g.operators[0], g)


W = ((4, 3, 3, 4), np.ones((4, 3, 3, 4)), "INT8")


@pytest.mark.parametrize("case, ok, status", [
    (("CONV_2D", (1, 8, 8, 4), (1, 8, 8, 4), (W,), {"dilation_w": 2, "dilation_h": 2}),
     True, MAPPED),
    (("CONV_2D", (1, 8, 8, 4), (1, 8, 8, 4), (W,), {"dilation_w": 2, "dilation_h": 1}),
     False, OTHERWISE),
    (("MEAN", (1, 4, 4, 8), (1, 4, 4, 1), (((1,), [3], "INT32"),)), True, MAPPED),
    (("MEAN", (1, 4, 4, 6), (1, 4, 4, 1), (((1,), [-1], "INT32"),)), False, OTHERWISE),
    (("MEAN", (1, 4, 4, 6), (1, 1, 1, 6), (((2,), [1, 2], "INT32"),)), True, MAPPED),
    (("PRELU", (1, 4, 4, 8), (1, 4, 4, 8), (((1, 1, 8), np.ones((1, 1, 8)), "INT8"),)),
     True, MAPPED),
    (("PRELU", (1, 4, 4, 8), (1, 4, 4, 8), (((4, 4, 8), np.ones((4, 4, 8)), "INT8"),)),
     False, OTHERWISE),
    (("FULLY_CONNECTED", (1, 16), (1, 4), (((4, 16), np.ones((4, 16)), "INT8"),)),
     True, MAPPED),
    (("FULLY_CONNECTED", (1, 3, 16), (1, 3, 4), (((4, 16), np.ones((4, 16)), "INT8"),)),
     False, OTHERWISE),
    (("STRIDED_SLICE", (1, 8, 8, 4), (1, 4, 4, 4), (((4,), [0] * 4, "INT32"),
                                                    ((4,), [1, 8, 8, 4], "INT32"),
                                                    ((4,), [1, 2, 2, 1], "INT32"))),
     False, STRIDES),
    (("STRIDED_SLICE", (1, 8, 8, 4), (1, 4, 8, 4), (((4,), [0] * 4, "INT32"),
                                                    ((4,), [1, 4, 8, 4], "INT32"),
                                                    ((4,), [1, 1, 1, 1], "INT32"))),
     True, MAPPED),
    (("SOFTMAX", (1, 16001), (1, 16001)), False, OTHERWISE),
    (("SOFTMAX", (1, 1000), (1, 1000)), True, MAPPED),
    (("SOFTMAX", (1, 8, 10), (1, 8, 10)), False, OTHERWISE),
    (("CONCATENATION", (1, 4, 4, 2), (1, 4, 4, 4), (((1, 4, 4, 2), np.zeros((1, 4, 4, 2)),
                                                     "INT8"),)), True, MAPPED),
    (("CONCATENATION", (1, 4, 4, 2), (1, 4, 4, 4), (((1, 4, 4, 2), np.ones((1, 4, 4, 2)),
                                                     "INT8"),)), False, OTHERWISE),
    (("RESIZE_BILINEAR", (1, 1, 1, 8), (1, 33, 33, 8), (((2,), [33, 33], "INT32"),)),
     False, OTHERWISE),
    (("RESIZE_BILINEAR", (1, 16, 16, 8), (1, 32, 32, 8), (((2,), [32, 32], "INT32"),)),
     True, MAPPED),
    (("RESIZE_NEAREST_NEIGHBOR", (1, 256, 256, 32), (1, 512, 512, 32),
      (((2,), [512, 512], "INT32"),)), False, OTHERWISE),
    (("MAX_POOL_2D", (1, 4, 4, 8), (1, 2, 2, 8), (), {"fused_activation": "RELU"}),
     False, OTHERWISE),
    (("UNIDIRECTIONAL_SEQUENCE_LSTM", (1, 28, 28), (1, 28, 20)), True, MAPPED),
    (("BIDIRECTIONAL_SEQUENCE_LSTM", (1, 28, 28), (1, 28, 20)), False, NOT_SUPPORTED),
    (("GELU", (1, 8), (1, 8)), False, NOT_SUPPORTED),
])
def test_coral_per_op_limits(case, ok, status):
    c = _one(*case)
    assert (c.ok, c.status) == (ok, status), c.reason


def test_size_dependent_limits_say_uncertain():
    c = _one("RESIZE_BILINEAR", (1, 10, 10, 8), (1, 30, 30, 8), (((2,), [30, 30], "INT32"),))
    assert c.ok and c.certainty == "uncertain" and "undocumented" in c.reason
    c = _one("RESIZE_BILINEAR", (1, 128, 128, 64), (1, 256, 256, 64),
             (((2,), [256, 256], "INT32"),))
    assert not c.ok and c.certainty == "uncertain"


def test_op_versions_for_every_builtin():
    import ai_edge_litert.schema_py_generated as schema
    codes = {k: v for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    for name, code in codes.items():
        verdict, line = parse_verdict(name, max(1, max_version(name)), code)
        if name == "CUSTOM":
            continue
        if code > 145:
            assert verdict == "fail" and "out of range" in line, name
        elif max_version(name) == 0:   # not registered (CALL, DELEGATE, ...)
            assert verdict == "fail" and f"'{name}' version '1'" in line, name
        else:
            assert verdict in ("ok", "uncertain"), name
            v2, line2 = parse_verdict(name, max_version(name) + 1, code)
            assert v2 == "fail" and "Didn't find op" in line2, name
    # the reported failures (edgetpu#631, #845, #879, libedgetpu#71, #434 for compiler 16)
    assert [parse_verdict(n, v, codes[n])[0] for n, v in
            [("CONV_2D", 6), ("QUANTIZE", 3), ("TRANSPOSE_CONV", 4), ("EXP", 2), ("FILL", 3),
             ("CONV_2D", 5), ("RESIZE_BILINEAR", 4)]] == \
        ["fail", "fail", "fail", "fail", "ok", "ok", "ok"]
    assert parse_verdict("STRIDED_SLICE", 6, codes["STRIDED_SLICE"])[0] == "uncertain"
