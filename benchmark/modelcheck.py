"""What a ``.tflite`` file is, read from its tensors (never from its file name).

- :func:`check_slot`: the float slot holds a float model, the int8 slot a
  model whose weights are 8-bit integers, the Edge TPU slot a compiled
  model (an ``edgetpu-custom-op``);
- :func:`detect_outputs`: ``probabilities`` when the graph's output comes
  from a SOFTMAX (through QUANTIZE / DEQUANTIZE / RESHAPE), else ``logits``;
- :func:`check_distribution`: outputs claimed to be probabilities must be
  ``>= -tol`` and sum to 1 within ``tol = 1e-3 + K * step / 2`` per row, where
  ``step`` is the output tensor's quantization step (0 for a float output):
  rounding each of K outputs to the step moves the sum by at most K * step / 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.errors import DataError

#: Ops whose input 1 is the weight tensor.
WEIGHT_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})
#: Ops that pass an output through without changing what it is.
PASS_THROUGH = frozenset({"QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE", "IDENTITY"})
EDGETPU_OP = "edgetpu-custom-op"
SLOTS = ("float", "int8", "compiled")
#: Float rounding allowed in a row sum of probabilities, before the quantization term.
SUM_TOLERANCE = 1e-3


def weight_types(g) -> list[str]:
    """The dtypes of the constant weight tensors of the convolutions and dense layers."""
    out = []
    for op in g.operators:
        if op.name in WEIGHT_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0:
            t = g.tensors[op.inputs[1]]
            if t.is_constant:
                out.append(t.dtype)
    return out


def is_compiled(g) -> bool:
    return any(op.custom_code == EDGETPU_OP for op in g.operators)


def describe_types(g) -> str:
    """``input UINT8, weights INT8`` (for messages)."""
    inp = g.input_tensors()[0].dtype if g.inputs else "none"
    w = sorted(set(weight_types(g))) or ["none"]
    return f"input {inp}, weights {'/'.join(w)}"


def slot_problem(g, slot: str) -> str | None:
    """Why graph ``g`` does not belong in ``slot`` (None: it does)."""
    w = weight_types(g)
    eight = {"INT8", "UINT8"}
    inp = g.input_tensors()[0].dtype if g.inputs else None
    if slot == "compiled":
        return None if is_compiled(g) else "not compiled for the Edge TPU (no edgetpu-custom-op)"
    if is_compiled(g):
        return "compiled for the Edge TPU (edgetpu-custom-op); give it as the compiled model"
    if slot == "int8":
        if (w and all(t in eight for t in w)) or (not w and inp in eight):
            return None
        return f"not an 8-bit model ({describe_types(g)})"
    if any(t in eight for t in w) or inp in eight:
        return f"not a float model ({describe_types(g)})"
    return None


def check_slot(path: str | Path, slot: str, *, flag: str | None = None) -> None:
    """DataError (one line) when the model at ``path`` is not what ``slot`` holds."""
    from benchmark.tflite_graph import read_graph
    problem = slot_problem(read_graph(path), slot)
    if problem:
        where = f" ({flag})" if flag else ""
        raise DataError(f"{path}{where} is in the {slot} slot but is {problem}")


def detect_outputs(g) -> str | None:
    """``probabilities`` (output made by SOFTMAX), ``logits``, or None (compiled: unknown)."""
    if is_compiled(g):
        return None
    producer = {o: op for op in g.operators for o in op.outputs}
    t = g.outputs[0]
    for _ in range(len(g.operators) + 1):
        op = producer.get(t)
        if op is None:
            return "logits"
        if op.name == "SOFTMAX":
            return "probabilities"
        if op.name not in PASS_THROUGH or not op.inputs:
            return "logits"
        t = op.inputs[0]
    return "logits"


def output_step(g) -> float:
    """The output tensor's quantization step (0.0 for a float output)."""
    t = g.output_tensors()[0]
    return float(t.scale[0]) if t.scale.size and t.dtype in ("INT8", "UINT8") else 0.0


def distribution_tolerance(num_classes: int, step: float) -> float:
    """Allowed ``|row sum - 1|`` (and negative excursion) of probabilities."""
    return SUM_TOLERANCE + num_classes * step / 2


def check_distribution(probs: np.ndarray, *, step: float, what: str) -> None:
    """DataError when ``probs`` (dequantized outputs) are not probability rows.

    >>> check_distribution(np.array([[0.25, 0.75]]), step=0.0, what="m")
    >>> check_distribution(np.array([[2.0, -1.0]]), step=0.0, what="m")
    Traceback (most recent call last):
    ...
    benchmark.errors.DataError: m: outputs are not probabilities (1 of 1 rows have negative \
values, min -1; row sums 1..1): they look like logits, pass --outputs logits
    """
    p = np.asarray(probs, np.float64)
    if not p.size:
        return
    tol = distribution_tolerance(p.shape[1], step)
    sums = p.sum(axis=1)
    neg = (p < -tol).any(axis=1)
    off = np.abs(sums - 1) > tol
    if not (neg.any() or off.any()):
        return
    why = (f"{int(neg.sum())} of {len(p)} rows have negative values, min {p.min():.4g}"
           if neg.any() else
           f"{int(off.sum())} of {len(p)} rows do not sum to 1 within {tol:.3g}")
    raise DataError(f"{what}: outputs are not probabilities ({why}; row sums "
                    f"{sums.min():.4g}..{sums.max():.4g}): they look like logits, pass "
                    "--outputs logits")
