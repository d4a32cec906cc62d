"""Activation bits: put an int8 model's activations on a b-bit grid, weights unchanged.

Every calibrated int8 activation tensor (each op output except the fixed-range
SOFTMAX/LOGISTIC/TANH outputs and the model's own input/output tensors) gets a
scale ``f = 255 / (2^b - 1)`` times coarser, ``s' = f * s``, and the zero point
``zp' = round(-128 + (zp + 128) / f)``, so the calibrated range ``[s(-128 - zp),
s(127 - zp)]`` now spans the lowest ``2^b`` integers of the int8 grid. Values
stay stored as int8 and every kernel is a standard int8 kernel: the model
carries only b bits of activation resolution over the calibrated range. (Values
above the calibrated range are clipped at the int8 limit, ``f`` times further
out than a true b-bit tensor would clip them: the sweep isolates resolution.)

Tensors that had equal quantization (MAX_POOL_2D, RESHAPE in and out) keep
equal quantization, since each tensor's new parameters depend only on its old
ones. Each int32 bias is re-quantized to ``input_scale' * weight_scale``.
This is ``a<b>`` beside the weight sweep's ``w<b>``: the paper's w8 -> w4 at a8
next to a8 -> a4 at w8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.errors import DataError
from benchmark.quant.bitsweep import WEIGHT_OPS
from benchmark.tflite_graph import op_name, pack_model, unpack_model

#: Ops whose output range the op fixes (left as they are).
FIXED_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX"})


def coarser(scale: float, zero_point: int, bits: int) -> tuple[float, int]:
    """The b-bit grid's ``(scale, zero_point)`` for an int8 tensor's ``(scale, zero_point)``.

    Examples
    --------
    >>> s, z = coarser(0.01, -128, 8)  # 8 bits: the same grid (scale kept as float32)
    >>> round(s, 6), z
    (0.01, -128)
    >>> s, z = coarser(0.01, 0, 4)     # 17x coarser; the old -128 stays at -128
    >>> round(s, 6), z
    (0.17, -120)
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    f = 255 / (2 ** bits - 1)
    return float(np.float32(scale * f)), int(round(-128 + (zero_point + 128) / f))


def _activations(m, schema, g) -> tuple[set[int], set[int]]:
    """(int8 activation tensors to coarsen, the fixed-range ones) of subgraph ``g``."""
    int8 = schema.TensorType.INT8
    fixed, acts = set(), set()
    for op in g.operators:
        name = op_name(m, schema, op)
        outs = [int(t) for t in op.outputs]
        if name in FIXED_OPS or (name in ("QUANTIZE", "DEQUANTIZE")
                                 and int(op.inputs[0]) in fixed):
            fixed.update(outs)
            continue
        acts.update(t for t in outs if g.tensors[t].type == int8)
    acts -= set(int(t) for t in g.inputs) | set(int(t) for t in g.outputs) | fixed
    return acts, fixed


def _requantize_bias(m, g, op, old_in: float, new_in: float) -> None:
    """Re-quantize the int32 bias of a weight op whose input scale changed."""
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return
    b_t = g.tensors[op.inputs[2]]
    w_scale = np.asarray(g.tensors[op.inputs[1]].quantization.scale, np.float64)
    b_int = np.asarray(m.buffers[b_t.buffer].data, np.uint8).view(np.int32)
    b_real = b_int.astype(np.float64) * (old_in * w_scale)
    b_scale = (new_in * w_scale).astype(np.float32).astype(np.float64)
    b_new = np.clip(np.rint(b_real / b_scale), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
    m.buffers[b_t.buffer].data = b_new.view(np.uint8)
    b_t.quantization.scale = b_scale.astype(np.float32).tolist()


def requantize_activations(model: str | Path | bytes, bits: int) -> bytes:
    """The int8 ``model`` with its activations on a ``bits``-bit grid (see the module doc)."""
    m, schema = unpack_model(model)
    g = m.subgraphs[0]
    acts, _ = _activations(m, schema, g)
    if not acts:
        source = "the model" if isinstance(model, bytes) else str(model)
        raise DataError(f"{source}: no int8 activation tensors (is it a full-integer model?)")
    old = {t: float(g.tensors[t].quantization.scale[0]) for t in acts}
    for t in sorted(acts):
        q = g.tensors[t].quantization
        scale, zp = coarser(old[t], int(q.zeroPoint[0]), bits)
        q.scale, q.zeroPoint = [scale], [zp]
    done = set()
    for op in g.operators:
        x = int(op.inputs[0]) if len(op.inputs) else -1
        bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
        if op_name(m, schema, op) in WEIGHT_OPS and x in acts and bias not in done:
            done.add(bias)
            _requantize_bias(m, g, op, old[x], float(g.tensors[x].quantization.scale[0]))
    return pack_model(m)
