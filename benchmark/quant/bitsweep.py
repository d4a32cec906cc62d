"""Weight-bit sweep: re-quantize an int8 model's weights to b bits, activations stay 8-bit.

Every per-channel (or per-tensor) weight tensor of CONV_2D, DEPTHWISE_CONV_2D
and FULLY_CONNECTED is dequantized with its own scales and re-quantized
symmetrically with min-max to the b-bit grid ``[-(2^(b-1) - 1), 2^(b-1) - 1]``
(scale = max|w| / (2^(b-1) - 1) per channel). Values stay stored as int8 with
the new scales, and each int32 bias is re-quantized to its new scale
``input_scale * weight_scale``, so the result is a standard full-int8
``.tflite`` that runs in the stock int8 kernels (and would compile for the
Edge TPU) while carrying only b bits of weight information — the paper's
"weights 8 -> 4 bits at 8-bit activations".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.errors import DataError
from benchmark.tflite_graph import op_name, pack_model, unpack_model

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def fake_quantize(w: np.ndarray, bits: int, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric min-max fake quantization of real weights (numpy reference).

    Returns ``(q, scale)``: integers on the b-bit grid and the per-channel
    (``axis``) or per-tensor (``axis=None``) scales; ``q * scale`` is the
    fake-quantized weight. All-zero channels get scale 1 (and q = 0).

    Examples
    --------
    >>> q, s = fake_quantize(np.array([[1.0, -0.6, 0.2]]), 2, axis=0)
    >>> q.tolist(), s.tolist()
    ([[1, -1, 0]], [1.0])
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    w = np.asarray(w, np.float64)
    if axis is None:
        amax = np.array([np.abs(w).max()])
        shape = (1,) * w.ndim
    else:
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
        shape = [1] * w.ndim
        shape[axis] = -1
    scale = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.rint(w / scale.reshape(shape)), -qmax, qmax).astype(np.int64)
    return q, scale


def requantize_weights(model: str | Path | bytes, bits: int) -> bytes:
    """The int8 ``model`` with every weight tensor re-quantized to ``bits`` bits."""
    m, schema = unpack_model(model)
    g = m.subgraphs[0]
    int8 = schema.TensorType.INT8
    done = set()
    for op in g.operators:
        if op_name(m, schema, op) not in WEIGHT_OPS:
            continue
        x_t, w_t = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        if w_t.type != int8 or op.inputs[1] in done:
            continue
        done.add(op.inputs[1])
        wq = w_t.quantization
        shape = tuple(int(d) for d in w_t.shape)
        w_int = np.asarray(m.buffers[w_t.buffer].data, np.uint8).view(np.int8).reshape(shape)
        old = np.asarray(wq.scale, np.float64)
        axis = wq.quantizedDimension if old.size > 1 else None
        bshape = [1] * len(shape)
        if axis is not None:
            bshape[axis] = -1
        real = w_int.astype(np.float64) * old.reshape(bshape)
        q, new = fake_quantize(real, bits, axis)
        m.buffers[w_t.buffer].data = q.astype(np.int8).view(np.uint8).ravel()
        wq.scale = new.astype(np.float32).tolist()
        wq.zeroPoint = [0] * new.size
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b_t = g.tensors[op.inputs[2]]
            in_scale = float(x_t.quantization.scale[0])
            b_int = np.asarray(m.buffers[b_t.buffer].data, np.uint8).view(np.int32)
            b_real = b_int.astype(np.float64) * (in_scale * old)
            b_scale = in_scale * new.astype(np.float32).astype(np.float64)
            b_new = np.clip(np.rint(b_real / b_scale), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
            m.buffers[b_t.buffer].data = b_new.view(np.uint8)
            b_t.quantization.scale = b_scale.astype(np.float32).tolist()
            b_t.quantization.zeroPoint = [0] * new.size
    if not done:
        source = "the model" if isinstance(model, bytes) else str(model)
        raise DataError(f"{source}: no int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED "
                        "weights to re-quantize (is it a full-integer model?)")
    return pack_model(m)
