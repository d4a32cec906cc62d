"""Static Edge TPU analyzer: predict what ``edgetpu_compiler`` maps, without the compiler.

Reads a ``.tflite`` flatbuffer (:mod:`benchmark.tflite_graph`) and checks every
operator against the documented Edge TPU model requirements (see
``../shared/edgetpu/FACTS.md`` section 2): 8-bit quantized tensors, static
shapes, at most 3 innermost non-unit dimensions, the supported-op list with its
per-op constraints, and builtin op versions the last released compiler (16.0)
can parse. Like the compiler, it maps one contiguous segment: from the first
mappable op up to the first op that cannot map; everything after that runs on
the CPU ("More than one subgraph is not supported").

The result has the same shape as the compiler log parser's
(``operators`` rows of ``{operator, count, status}``, ``ops_on_tpu``,
``ops_on_cpu``, ``subgraphs``, ``error``) plus a per-op ``detail`` list with
the reason for each decision.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.tflite_graph import GraphInfo, TensorInfo, read_graph

MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
BAD_TYPE = "Operation is working on an unsupported data type"
OTHERWISE = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
AFTER_CPU = "More than one subgraph is not supported"
BAD_RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
BAD_VERSION = "Operation version not supported"

#: Highest builtin version of each Edge TPU-supported op that compiler 16.0 can parse.
#: Derived from TFLite's op-version -> minimum-runtime table (versioning/runtime_version.cc)
#: assuming the compiler embeds a TFLite runtime of about 2.6; consistent with the
#: failures reported against 16.0: CONV_2D v6 (runtime 2.9), QUANTIZE v3 (2.7),
#: TRANSPOSE_CONV v4 and EXP v2 are rejected ("Didn't find op for builtin opcode").
MAX_OP_VERSION = {
    "ADD": 4, "AVERAGE_POOL_2D": 3, "CONCATENATION": 3, "CONV_2D": 5,
    "DEPTHWISE_CONV_2D": 6, "DEQUANTIZE": 4, "EXPAND_DIMS": 1, "FULLY_CONNECTED": 9,
    "L2_NORMALIZATION": 2, "LOGISTIC": 3, "LSTM": 4, "MAXIMUM": 4, "MAX_POOL_2D": 3,
    "MEAN": 3, "MINIMUM": 4, "MUL": 5, "PACK": 3, "PAD": 4, "PRELU": 1, "QUANTIZE": 2,
    "REDUCE_MAX": 3, "REDUCE_MIN": 3, "RELU": 3, "RELU6": 3, "RELU_N1_TO_1": 1,
    "RESHAPE": 1, "RESIZE_BILINEAR": 4, "RESIZE_NEAREST_NEIGHBOR": 4, "SLICE": 5,
    "SOFTMAX": 3, "SPACE_TO_DEPTH": 2, "SPLIT": 4, "SQUEEZE": 2, "STRIDED_SLICE": 6,
    "SUB": 5, "SUM": 2, "TANH": 3, "TRANSPOSE": 5, "TRANSPOSE_CONV": 3,
}

#: Ops the Edge TPU runs (runtime-14 era table in FACTS.md, section 2).
SUPPORTED_OPS = frozenset(MAX_OP_VERSION) - {"DEQUANTIZE"}

#: Nominal on-chip parameter cache; compilers report 6.9-7.5 MiB usable in practice.
ON_CHIP_CACHE_BYTES = 8 * 1024 * 1024
ON_CHIP_USABLE_BYTES = int(7.0 * 1024 * 1024)

_EIGHT_BIT = ("INT8", "UINT8")


def _rank_ok(t: TensorInfo) -> bool:
    """Only the 3 innermost dimensions may exceed 1."""
    return all(d == 1 for d in t.shape[:-3])


def _op_problem(op, g: GraphInfo) -> tuple[str, str] | None:
    """(status, reason) why ``op`` cannot map, or None when it can."""
    if op.name not in SUPPORTED_OPS:
        if op.name == "DEQUANTIZE":
            return BAD_TYPE, "DEQUANTIZE produces float output"
        return NOT_SUPPORTED, f"{op.name} is not in the Edge TPU op list"
    ins = [g.tensors[i] for i in op.inputs if i >= 0]
    outs = [g.tensors[i] for i in op.outputs]
    for t in ins + outs:
        allowed = _EIGHT_BIT + (("INT32",) if t.is_constant else ())
        if t.dtype not in allowed:
            if op.name == "QUANTIZE" and t in ins:
                return OTHERWISE, f"QUANTIZE from {t.dtype} input (float I/O model)"
            return BAD_TYPE, f"tensor {t.name!r} is {t.dtype}"
        if t.dtype in _EIGHT_BIT and not t.scale.size:
            return BAD_TYPE, f"tensor {t.name!r} is {t.dtype} without quantization parameters"
    for t in ins + outs:
        if not t.is_constant and not _rank_ok(t):
            return BAD_RANK, f"tensor {t.name!r} has shape {list(t.shape)}"
    if op.name in ("MAX_POOL_2D", "AVERAGE_POOL_2D") and op.fused_activation:
        return OTHERWISE, f"{op.name} with fused {op.fused_activation} (pooling must have none)"
    if op.name == "CONCATENATION" and op.fused_activation:
        return OTHERWISE, "CONCATENATION with a fused activation"
    return None


def _model_error(g: GraphInfo) -> dict | None:
    """The model-level refusal the compiler prints (too-new op versions, not quantized)."""
    too_new = [f"{op.name} v{op.version} (compiler 16 parses up to v{MAX_OP_VERSION[op.name]})"
               for op in g.operators
               if op.name in MAX_OP_VERSION and op.version > MAX_OP_VERSION[op.name]]
    quantized = any(t.dtype in _EIGHT_BIT and t.scale.size for t in g.tensors)
    if too_new:
        return {"kind": "op_version",
                "message": "builtin op versions newer than edgetpu_compiler 16.0 accepts: "
                           + ", ".join(dict.fromkeys(too_new))}
    if not quantized:
        return {"kind": "not_quantized", "message": "Model not quantized"}
    return None


def _op_detail(g: GraphInfo, error: dict | None) -> list[dict]:
    """Per-op status and reason: one mapped segment, everything after its first CPU op on CPU."""
    detail, started, cut = [], False, None
    for op in g.operators:
        problem = _op_problem(op, g)
        if cut is not None:
            status, reason = (AFTER_CPU, f"after the first CPU op #{cut}") if problem is None \
                else problem
        elif problem is None:
            status, reason, started = MAPPED, "", True
        else:
            status, reason = problem
            if started:
                cut = op.index
        detail.append({"index": op.index, "operator": op.name, "version": op.version,
                       "status": status, "reason": reason})
    if error is not None:  # the compiler refuses the whole model
        for d in detail:
            if d["status"] == MAPPED:
                d["status"], d["reason"] = BAD_TYPE if error["kind"] == "not_quantized" \
                    else BAD_VERSION, error["message"]
    return detail


def _mapped_parameter_bytes(g: GraphInfo, detail: list[dict]) -> int:
    """Bytes of constant inputs of the ops that map to the Edge TPU."""
    mapped_idx = {d["index"] for d in detail if d["status"] == MAPPED}
    return sum(g.tensors[i].buffer_size for op in g.operators if op.index in mapped_idx
               for i in op.inputs if i >= 0 and g.tensors[i].is_constant)


def _first_cpu_op(detail: list[dict]) -> dict | None:
    """The first op after the mapped segment's start that does not map (None if none)."""
    mapped_idx = {d["index"] for d in detail if d["status"] == MAPPED}
    first = next((d for d in detail if d["status"] != MAPPED and mapped_idx and
                  d["index"] > min(mapped_idx)), None)
    return None if first is None else {"index": first["index"], "operator": first["operator"],
                                       "reason": first["reason"]}


def analyze_graph(g: GraphInfo) -> dict:
    """Predict the compiler's op table for a parsed graph (see module docstring)."""
    error = _model_error(g)
    # A -1 in a shape signature (a dynamic batch) is not an op problem by itself: the
    # tensors have a static shape of 1. What breaks is the SHAPE/STRIDED_SLICE/PACK
    # chain computing the batch at run time, which the op checks catch.
    dynamic = [t.name for t in g.tensors if t.is_dynamic]
    warnings = []
    if dynamic:
        warnings.append(f"{len(dynamic)} tensors have a dynamic shape signature (e.g. "
                        f"{dynamic[0]!r}); the compiler may refuse the model with "
                        "'dynamic-sized tensors': export with a fixed batch of 1")
    detail = _op_detail(g, error)
    rows: dict[tuple[str, str], int] = {}
    for d in detail:
        rows[(d["operator"], d["status"])] = rows.get((d["operator"], d["status"]), 0) + 1
    on_tpu = sum(d["status"] == MAPPED for d in detail)
    params = _mapped_parameter_bytes(g, detail)
    if params > ON_CHIP_USABLE_BYTES:
        warnings.append(f"{params} parameter bytes exceed the ~{ON_CHIP_USABLE_BYTES} usable "
                        "on-chip cache: the rest is streamed from host memory on every "
                        "inference")
    return {
        "source": "analyzer",
        "operators": [{"operator": k[0], "count": n, "status": k[1]} for k, n in rows.items()],
        "ops_on_tpu": on_tpu,
        "ops_on_cpu": len(detail) - on_tpu,
        "total_ops": len(detail),
        "subgraphs": 1 if on_tpu else 0,
        "first_cpu_op": _first_cpu_op(detail),
        "parameter_bytes_on_tpu": params,
        "fits_on_chip_cache": params <= ON_CHIP_USABLE_BYTES,
        "dynamic_tensors": len(dynamic),
        "warnings": warnings,
        "error": error,
        "detail": detail,
    }


def analyze(model: str | Path | bytes) -> dict:
    """Analyze a ``.tflite`` file (path or bytes); see :func:`analyze_graph`."""
    return analyze_graph(read_graph(model))
