"""Coral's per-op limits: does one op, on its own, map to the Edge TPU?

:func:`op_check` answers for one operator of a :class:`~benchmark.tflite_graph.GraphInfo`
with a :class:`Check`: the compiler's status string, the reason, and whether
the decision is ``"documented"`` (Coral's supported-ops table, coral.ai/docs/
edgetpu/models-intro, "Supported operations"), ``"observed"`` (seen in real
compiler output: ../shared/edgetpu/pairs, the logs of FACTS.md) or
``"uncertain"`` (a size-dependent limit Coral does not document; the reason
says what is known). Where the table and the pairs disagree the pairs win:
the table lists LSTM, and the pairs show ``UNIDIRECTIONAL_SEQUENCE_LSTM``
mapped (``keras_lstm_mnist_ptq``, 6/0), with its int16 cell state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.tflite_graph import GraphInfo, OperatorInfo, TensorInfo

MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
BAD_TYPE = "Operation is working on an unsupported data type"
OTHERWISE = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
AFTER_CPU = "More than one subgraph is not supported"
BAD_RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
BAD_VERSION = "Operation version not supported"
STRIDES = "Only Strided-Slice with unitary strides supported"

#: Coral's supported-ops table (runtime 14, the compiler 16 default), TFLite names.
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE",
    "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT",
    "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE",
    "TRANSPOSE_CONV",
})
#: Largest RESIZE_* output seen mapped (edgetpu#31: 64x64x32 -> 128x128x32 maps;
#: 256x256x32 -> 512x512x32 does not).
RESIZE_MAPPED_MAX_ELEMENTS = 128 * 128 * 32
#: SOFTMAX: "1-D input tensor with a max of 16,000 elements" (Coral table).
SOFTMAX_MAX_ELEMENTS = 16000
#: Above this many elements RESHAPE/TRANSPOSE "might not be mapped for large tensor sizes".
LARGE_TENSOR_ELEMENTS = 1 << 16

_EIGHT_BIT = ("INT8", "UINT8")


@dataclass(frozen=True)
class Check:
    """One op's verdict on its own (before the graph is partitioned)."""

    ok: bool
    status: str
    reason: str = ""
    certainty: str = "documented"   # "documented", "observed" or "uncertain"


OK = Check(True, MAPPED)


def _no(status: str, reason: str, certainty: str = "documented") -> Check:
    return Check(False, status, reason, certainty)


def _rank_ok(t: TensorInfo) -> bool:
    """Only the 3 innermost dimensions may exceed 1."""
    return all(d == 1 for d in t.shape[:-3])


def _non_unit(shape) -> int:
    return sum(d > 1 for d in shape)


def _tensor(g: GraphInfo, i: int) -> TensorInfo | None:
    return g.tensors[i] if i >= 0 else None


def _const(g: GraphInfo, op: OperatorInfo, k: int) -> np.ndarray | None:
    """The values of the op's ``k``-th input when it is a constant."""
    t = _tensor(g, op.inputs[k]) if len(op.inputs) > k else None
    return None if t is None or not t.is_constant else t.values()


def _axes(g: GraphInfo, op: OperatorInfo, k: int, rank: int) -> list[int] | None:
    v = _const(g, op, k)
    return None if v is None else sorted({int(a) % rank for a in np.ravel(v)}) if rank else []


def _type_check(op: OperatorInfo, g: GraphInfo) -> Check | None:
    """8-bit activations (int32 constants, the LSTM's int16 state), quantized, ranks <= 3."""
    ins = [t for t in (_tensor(g, i) for i in op.inputs) if t is not None]
    outs = [t for t in (_tensor(g, i) for i in op.outputs) if t is not None]
    for t in ins + outs:
        allowed = _EIGHT_BIT + (("INT32",) if t.is_constant else ())
        if op.name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM"):
            allowed += ("INT16", "INT32")
        if t.dtype not in allowed:
            if op.name == "QUANTIZE" and t in ins:
                return _no(OTHERWISE, f"QUANTIZE from {t.dtype} input (float I/O model)",
                           "observed")
            return _no(BAD_TYPE, f"tensor {t.name!r} is {t.dtype}")
        if t.dtype in _EIGHT_BIT and not t.scale.size:
            return _no(BAD_TYPE, f"tensor {t.name!r} is {t.dtype} without quantization")
    for t in ins + outs:
        if not t.is_constant and not _rank_ok(t):
            return _no(BAD_RANK, f"tensor {t.name!r} has shape {list(t.shape)}")
    return None


def _pool_concat(op, g) -> Check | None:
    if op.name in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "CONCATENATION") and op.fused_activation:
        return _no(OTHERWISE, f"{op.name} with fused {op.fused_activation} (must have none)")
    if op.name == "CONCATENATION":
        consts = [k for k, i in enumerate(op.inputs) if i >= 0 and g.tensors[i].is_constant]
        if consts and (len(op.inputs) != 2 or np.any(_const(g, op, consts[0]))):
            return _no(OTHERWISE, "CONCATENATION with a constant input needs exactly 2 inputs "
                                  "and an all-zero constant")
    return None


def _conv(op, g) -> Check | None:
    o = op.options
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and \
            o.get("dilation_w", 1) != o.get("dilation_h", 1):
        return _no(OTHERWISE, f"dilation {o['dilation_h']}x{o['dilation_w']}: x and y must be "
                              "the same")
    if op.name == "FULLY_CONNECTED":
        out = _tensor(g, op.outputs[0])
        if o.get("weights_format", 0) != 0:
            return _no(OTHERWISE, "FULLY_CONNECTED weights not in the default format")
        if out is not None and _non_unit(out.shape) > 1:
            return _no(OTHERWISE, f"FULLY_CONNECTED output {list(out.shape)} is not 1-D")
    return None


def _reduce(op, g) -> Check | None:
    """MEAN/SUM/REDUCE_*: not over the batch; MEAN over z needs z % 4 == 0."""
    x = _tensor(g, op.inputs[0])
    if x is None or len(op.inputs) < 2:
        return None
    rank = len(x.shape)
    axes = _axes(g, op, 1, rank)
    if axes is None:
        return _no(OTHERWISE, f"{op.name} axes are not a constant", "uncertain")
    if rank == 4 and 0 in axes:
        return _no(OTHERWISE, f"{op.name} reduces the batch dimension")
    if op.name == "MEAN" and rank and rank - 1 in axes and x.shape[-1] % 4:
        return _no(OTHERWISE, f"MEAN over z = {x.shape[-1]}, not a multiple of 4")
    return None


def _batch_axis(op, g) -> Check | None:
    """PACK, PAD, SPLIT, TRANSPOSE: nothing along the batch dimension."""
    x = _tensor(g, op.inputs[1 if op.name == "SPLIT" else 0])
    rank = len(x.shape) if x is not None else 0
    if op.name == "PACK" and op.options.get("axis", 0) == 0:
        return _no(OTHERWISE, "PACK along the batch dimension")
    if op.name == "PAD":
        pads = _const(g, op, 1)
        if pads is not None and rank == 4 and np.any(np.ravel(pads)[:2]):
            return _no(OTHERWISE, "PAD in the batch dimension")
    if op.name == "SPLIT":
        axes = _axes(g, op, 0, rank)
        if axes is not None and rank == 4 and axes == [0]:
            return _no(OTHERWISE, "SPLIT along the batch dimension")
    if op.name == "TRANSPOSE":
        perm = _const(g, op, 1)
        if perm is not None and rank == 4 and int(np.ravel(perm)[0]) != 0:
            return _no(OTHERWISE, "TRANSPOSE moves the batch dimension")
    return None


def _misc(op, g) -> Check | None:
    """PReLU alpha, SOFTMAX size, STRIDED_SLICE strides and masks."""
    if op.name == "PRELU":
        alpha = _tensor(g, op.inputs[1])
        if alpha is not None and any(d > 1 for d in alpha.shape[:-1]):
            return _no(OTHERWISE, f"PRELU alpha {list(alpha.shape)} is not 1-D (Keras: "
                                  "shared_axes=[1, 2])")
    if op.name == "SOFTMAX":
        x = _tensor(g, op.inputs[0])
        if x is not None and (_non_unit(x.shape) > 1 or x.num_elements > SOFTMAX_MAX_ELEMENTS):
            return _no(OTHERWISE, f"SOFTMAX input {list(x.shape)}: 1-D with at most "
                                  f"{SOFTMAX_MAX_ELEMENTS} elements")
    if op.name == "STRIDED_SLICE":
        strides = _const(g, op, 3)
        if strides is None or np.any(np.ravel(strides) != 1):
            return _no(STRIDES, "strides are not all 1")
        if op.options.get("ellipsis_mask") or op.options.get("new_axis_mask"):
            return _no(OTHERWISE, "STRIDED_SLICE with an ellipsis or new-axis mask")
    return None


def _resize(op, g) -> Check | None:
    """RESIZE_*: mapped "depending on input/output size" (undocumented; see the constants)."""
    x, y = _tensor(g, op.inputs[0]), _tensor(g, op.outputs[0])
    if x is None or y is None or len(x.shape) != 4:
        return None
    (h, w), (oh, ow) = x.shape[1:3], y.shape[1:3]
    if h == w == 1 and oh * ow > 1:
        return _no(OTHERWISE, f"{op.name} from 1x1 to {oh}x{ow} (DeepLab's image-pooling "
                              "branch; not mapped in the DeepLab pair)", "observed")
    if y.num_elements > RESIZE_MAPPED_MAX_ELEMENTS:
        return _no(OTHERWISE, f"{op.name} output of {y.num_elements} elements: larger than "
                              f"any seen mapped ({RESIZE_MAPPED_MAX_ELEMENTS}); the limit is "
                              "undocumented", "uncertain")
    if (oh, ow) not in ((h, w), (2 * h, 2 * w)):
        return Check(True, MAPPED, f"{op.name} {h}x{w} -> {oh}x{ow}: only 2x upsampling is "
                                   "known to map; other factors are undocumented", "uncertain")
    return None


def _large(op, g) -> Check | None:
    if op.name in ("RESHAPE", "TRANSPOSE"):
        x = _tensor(g, op.inputs[0])
        if x is not None and x.num_elements > LARGE_TENSOR_ELEMENTS:
            return Check(True, MAPPED, f"{op.name} of {x.num_elements} elements: Coral says "
                                       "large ones might not map (no size given)", "uncertain")
    return None


_CHECKS = (_type_check, _pool_concat, _conv, _reduce, _batch_axis, _misc, _resize, _large)
_REDUCERS = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN")


def op_check(op: OperatorInfo, g: GraphInfo) -> Check:
    """Whether ``op`` maps on its own (see the module docstring)."""
    if op.name == "DEQUANTIZE":
        return _no(BAD_TYPE, "DEQUANTIZE produces float output", "observed")
    if op.name == "CUSTOM":
        return _no(BAD_TYPE, f"custom op {op.custom_code!r} runs on the CPU", "observed")
    if op.name not in SUPPORTED_OPS:
        return _no(NOT_SUPPORTED, f"{op.name} is not in Coral's supported-ops table")
    for check in _CHECKS:
        if check in (_reduce,) and op.name not in _REDUCERS:
            continue
        if check is _batch_axis and op.name not in ("PACK", "PAD", "SPLIT", "TRANSPOSE"):
            continue
        if check is _resize and not op.name.startswith("RESIZE_"):
            continue
        result = check(op, g)
        if result is not None:
            return result
    return OK
