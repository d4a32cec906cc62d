"""Static Edge TPU analyzer: predict what ``edgetpu_compiler`` 16 maps, without the compiler.

Reads a ``.tflite`` flatbuffer (:mod:`benchmark.tflite_graph`) and follows the
compiler's steps (``../shared/edgetpu/FACTS.md``; the real pairs in
``../shared/edgetpu/pairs`` are the test, see ``docs/analyzer.md``):

1. **Parse.** Every builtin op version must be one the compiler's embedded
   TFLite registers (:mod:`benchmark.compile.opversions`); otherwise the whole
   model fails with "Didn't find op for builtin opcode 'OP' version 'N'" /
   "Op builtin_code out of range" and "Model could not be parsed".
2. **Quantized?** A model without 8-bit quantized tensors is "Model not quantized".
3. **Static shapes.** A tensor whose size is only known at run time (a
   RESHAPE/RESIZE/PAD/... whose shape argument is computed, as Keras' Flatten
   does on a batch-None model) makes the compiler's interpreter run fail:
   "Attempting to use a delegate that only supports static-sized tensors with
   a graph that has dynamic-sized tensors".
4. **Per-op checks** (:mod:`benchmark.compile.constraints`): Coral's op table
   and per-op limits.
5. **Partition by dataflow**, the way TFLite partitions a graph for a
   delegate: repeatedly take every op whose inputs are ready, TPU-capable ops
   into a TPU segment and the others into a CPU segment, alternating. CPU ops
   before the first segment (the QUANTIZE of a float-input model) do not cut
   it; an op fed, directly or not, by a CPU op that itself needs a TPU result
   cannot join it. Without ``-a`` the compiler keeps the first TPU segment and
   reports the supported ops of later ones as "More than one subgraph is not
   supported"; with ``-a`` (``enable_multiple_subgraphs``) every TPU segment maps.

The result has the shape of the compiler log parser's (``operators`` rows of
``{operator, count, status}``, ``ops_on_tpu``, ``ops_on_cpu``, ``subgraphs``,
``error``) plus a per-op ``detail`` list (status, reason, certainty) and
``uncertain`` (the decisions that rest on undocumented, size-dependent limits).
"""

from __future__ import annotations

from pathlib import Path

from benchmark.compile import opversions
from benchmark.compile.constraints import (AFTER_CPU, BAD_RANK, BAD_TYPE, BAD_VERSION,  # noqa
                                           MAPPED, NOT_SUPPORTED, OTHERWISE, STRIDES,
                                           SUPPORTED_OPS, op_check)
from benchmark.tflite_graph import GraphInfo, read_graph

#: Nominal on-chip parameter cache; compilers report 6.9-7.5 MiB usable in practice.
ON_CHIP_CACHE_BYTES = 8 * 1024 * 1024
ON_CHIP_USABLE_BYTES = int(7.0 * 1024 * 1024)

_EIGHT_BIT = ("INT8", "UINT8")
#: Inputs that give an op's output shape: a computed (non-constant) one makes it dynamic.
SHAPE_INPUTS = {"RESHAPE": (1,), "RESIZE_BILINEAR": (1,), "RESIZE_NEAREST_NEIGHBOR": (1,),
                "PAD": (1,), "PADV2": (1,), "MIRROR_PAD": (1,), "TILE": (1,), "FILL": (0,),
                "BROADCAST_TO": (1,), "EXPAND_DIMS": (1,), "SLICE": (1, 2),
                "STRIDED_SLICE": (1, 2, 3), "TRANSPOSE": (1,), "MEAN": (1,), "SUM": (1,),
                "REDUCE_MAX": (1,), "REDUCE_MIN": (1,), "REDUCE_PROD": (1,), "SPLIT": (0,),
                "SPLIT_V": (1, 2), "RANGE": (0, 1, 2)}
DYNAMIC_LINES = [
    "ERROR: Attempting to use a delegate that only supports static-sized tensors with a graph "
    "that has dynamic-sized tensors.",
    "Compilation failed: Model failed in Tflite interpreter. Please ensure model can be "
    "loaded/run in Tflite interpreter.",
    "Compilation failed!"]


def _op_code(name: str) -> int:
    from benchmark.tflite_graph import load_schema
    return getattr(load_schema().BuiltinOperator, name, 1 << 30)


def _parse_error(g: GraphInfo) -> tuple[dict | None, list[str]]:
    """The compiler's parse failure (op versions) and the accepted-but-uncertain versions."""
    failures, uncertain = [], []
    for op in g.operators:
        verdict, line = opversions.parse_verdict(op.name, op.version, _op_code(op.name))
        if verdict == "fail":
            failures.append((op, line))
        elif verdict == "uncertain":
            uncertain.append(f"{op.name} v{op.version} (op #{op.index}) needs TFLite "
                             f"{opversions.COMPILER_RUNTIME}; that the compiler parses it is "
                             "inferred, not confirmed")
    if not failures:
        return None, list(dict.fromkeys(uncertain))
    first = failures[0][1]
    lines = [first, "", "ERROR: Registration failed.", "", "Invalid model: <model>",
             "Model could not be parsed"]
    ops = ", ".join(dict.fromkeys(f"{op.name} v{op.version}" for op, _ in failures))
    return {"kind": "op_version", "message": first, "lines": lines,
            "detail": f"op versions edgetpu_compiler {opversions.COMPILER} cannot parse: "
                      f"{ops} (it parses up to TFLite {opversions.COMPILER_RUNTIME})"}, \
        list(dict.fromkeys(uncertain))


def dynamic_tensors(g: GraphInfo) -> list[str]:
    """Ops whose output size depends on a value computed at run time (see module docstring)."""
    out = []
    for op in g.operators:
        for k in SHAPE_INPUTS.get(op.name, ()):
            if k < len(op.inputs) and op.inputs[k] >= 0:
                t = g.tensors[op.inputs[k]]
                if not t.is_constant and op.inputs[k] not in g.inputs:
                    out.append(f"{op.name} #{op.index} takes its shape from {t.name!r}")
                    break
    return out


def _model_error(g: GraphInfo) -> tuple[dict | None, list[str]]:
    """The compiler's whole-model verdict (None: it compiles) and uncertain version notes."""
    error, uncertain = _parse_error(g)
    if error is not None:
        return error, uncertain
    if not any(t.dtype in _EIGHT_BIT and t.scale.size for t in g.tensors):
        return {"kind": "not_quantized", "message": "Model not quantized",
                "lines": ["Invalid model: <model>", "Model not quantized"]}, uncertain
    dyn = dynamic_tensors(g)
    if dyn:
        return {"kind": "dynamic_shapes", "message": DYNAMIC_LINES[0], "lines": DYNAMIC_LINES,
                "detail": "dynamic-sized tensors: " + "; ".join(dyn[:3])
                          + (f" (+{len(dyn) - 3} more)" if len(dyn) > 3 else "")}, uncertain
    return None, uncertain


def _ready(op, available: set[int]) -> bool:
    return all(i < 0 or i in available for i in op.inputs)


def partition(g: GraphInfo, capable: list[bool]) -> list[tuple[bool, list[int]]]:
    """Dataflow segments ``[(on_tpu, [op indices])]`` in execution order.

    Alternates between TPU and CPU segments, each taking every op of its kind
    whose inputs are ready (TFLite's delegate partitioning); starts with a TPU
    segment, which is empty when the first ready ops are CPU ops.
    """
    produced = {i for op in g.operators for i in op.outputs}
    available = {t.index for t in g.tensors if t.index not in produced}
    remaining = list(range(len(g.operators)))
    segments: list[tuple[bool, list[int]]] = []
    kind, idle = True, 0
    while remaining and idle < 2:
        group, grew = [], True
        while grew:
            grew = False
            for k in list(remaining):
                op = g.operators[k]
                if capable[k] == kind and _ready(op, available):
                    group.append(k)
                    remaining.remove(k)
                    available.update(op.outputs)
                    grew = True
        if group:
            segments.append((kind, group))
        idle = 0 if group else idle + 1
        kind = not kind
    if remaining:   # inputs never produced (a cycle): the rest stays on the CPU
        segments.append((False, remaining))
    return segments


def _op_detail(g: GraphInfo, multiple_subgraphs: bool) -> tuple[list[dict], int]:
    """Per-op status, reason and certainty, and the number of TPU subgraphs."""
    checks = [op_check(op, g) for op in g.operators]
    segments = partition(g, [c.ok for c in checks])
    tpu_segments = [ops for on_tpu, ops in segments if on_tpu]
    mapped = set(ops for seg in (tpu_segments if multiple_subgraphs else tpu_segments[:1])
                 for ops in seg)
    detail = []
    for op, c in zip(g.operators, checks):
        if op.index in mapped:
            status, reason = MAPPED, c.reason
        elif c.ok:
            status, reason = AFTER_CPU, "fed by an op that runs on the CPU after the " \
                "Edge TPU segment (compile with -a to map it as a further subgraph)"
        else:
            status, reason = c.status, c.reason
        detail.append({"index": op.index, "operator": op.name, "version": op.version,
                       "status": status, "reason": reason, "certainty": c.certainty,
                       "segment": _segment_of(op.index, tpu_segments) if c.ok else None})
    n = len(tpu_segments) if multiple_subgraphs else min(1, len(tpu_segments))
    return detail, n


def _segment_of(index: int, tpu_segments: list[list[int]]) -> int | None:
    return next((k for k, seg in enumerate(tpu_segments) if index in seg), None)


def _mapped_parameter_bytes(g: GraphInfo, detail: list[dict]) -> int:
    """Bytes of constant inputs of the ops that map to the Edge TPU."""
    mapped_idx = {d["index"] for d in detail if d["status"] == MAPPED}
    seen: set[int] = set()
    total = 0
    for op in g.operators:
        if op.index in mapped_idx:
            for i in op.inputs:
                if i >= 0 and g.tensors[i].is_constant and i not in seen:
                    seen.add(i)
                    total += g.tensors[i].buffer_size
    return total


def _first_cpu_op(detail: list[dict]) -> dict | None:
    """The first op that fails its own checks after the mapped segment's start (None if none)."""
    mapped_idx = [d["index"] for d in detail if d["status"] == MAPPED]
    first = next((d for d in detail if d["status"] not in (MAPPED, AFTER_CPU) and mapped_idx
                  and d["index"] > min(mapped_idx)), None)
    return None if first is None else {"index": first["index"], "operator": first["operator"],
                                       "reason": first["reason"]}


def _apply_error(detail: list[dict], error: dict | None) -> None:
    """A refused model maps nothing: mapped rows take the refusal's status."""
    if error is None:
        return
    status = {"not_quantized": BAD_TYPE, "op_version": BAD_VERSION}.get(
        error["kind"], f"Not compiled ({error['kind']})")
    for d in detail:
        if d["status"] in (MAPPED, AFTER_CPU):
            d["status"], d["reason"] = status, error["message"]


def _warnings(g: GraphInfo, params: int, error: dict | None) -> list[str]:
    out = []
    if any(op.custom_code == "edgetpu-custom-op" for op in g.operators):
        out.append("this model is already compiled (it has edgetpu-custom-op nodes): read it "
                   "with python -m benchmark.compile --inspect")
    dynamic = [t.name for t in g.tensors if t.is_dynamic]
    if dynamic and (error or {}).get("kind") != "dynamic_shapes":
        out.append(f"{len(dynamic)} tensors have a dynamic shape signature (e.g. "
                   f"{dynamic[0]!r}); no op computes a shape from it, but export with a "
                   "fixed batch of 1 to be safe")
    if params > ON_CHIP_USABLE_BYTES:
        out.append(f"{params} parameter bytes exceed the ~{ON_CHIP_USABLE_BYTES} usable "
                   "on-chip cache: the rest is streamed from host memory on every inference")
    return out


def analyze_graph(g: GraphInfo, *, multiple_subgraphs: bool = False) -> dict:
    """Predict the compiler's op table for a parsed graph (see module docstring)."""
    error, uncertain_versions = _model_error(g)
    detail, n_segments = _op_detail(g, multiple_subgraphs)
    _apply_error(detail, error)
    rows: dict[tuple[str, str], int] = {}
    for d in detail:
        rows[(d["operator"], d["status"])] = rows.get((d["operator"], d["status"]), 0) + 1
    on_tpu = sum(d["status"] == MAPPED for d in detail)
    params = _mapped_parameter_bytes(g, detail)
    uncertain = uncertain_versions + [f"{d['operator']} #{d['index']}: {d['reason']}"
                                      for d in detail if d["certainty"] == "uncertain"]
    return {
        "source": "analyzer",
        "compiler": opversions.COMPILER,
        "operators": [{"operator": k[0], "count": n, "status": k[1]} for k, n in rows.items()],
        "ops_on_tpu": on_tpu,
        "ops_on_cpu": len(detail) - on_tpu,
        "total_ops": len(detail),
        "subgraphs": n_segments if error is None else 0,
        "first_cpu_op": _first_cpu_op(detail),
        "parameter_bytes_on_tpu": params,
        "fits_on_chip_cache": params <= ON_CHIP_USABLE_BYTES,
        "dynamic_tensors": sum(t.is_dynamic for t in g.tensors),
        "warnings": _warnings(g, params, error),
        "uncertain": uncertain,
        "error": error,
        "detail": detail,
    }


def analyze(model: str | Path | bytes, *, multiple_subgraphs: bool = False) -> dict:
    """Analyze a ``.tflite`` file (path or bytes); see :func:`analyze_graph`."""
    return analyze_graph(read_graph(model), multiple_subgraphs=multiple_subgraphs)
