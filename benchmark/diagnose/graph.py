"""Pair an int8 graph with its float twin, and cut one-op float models out of the float graph.

The converter keeps the op order of the Keras model: the int8 graph is the
float graph with QUANTIZE (and DEQUANTIZE) ops added at its ends (and before
ops that need one input scale). :func:`pair_graphs` matches the two op
sequences with those ops left out and maps every int8 activation tensor to
the float tensor holding the same real values. :func:`op_model` writes a
float model running one op alone, so the op can be fed the *dequantized
int8* inputs (TFLite's ``QuantizationDebugger`` "layer" error).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import DataError
from benchmark.tflite_graph import GraphInfo, TensorInfo, pack_model, read_graph, unpack_model

#: Ops that only change the integer representation (skipped when pairing).
REQUANT_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})


@dataclass(frozen=True)
class Layer:
    """One activation tensor of the int8 model and where it comes from.

    ``float_tensor`` is the float model's tensor with the same real values
    (None without a float model); ``float_op`` the float op computing it
    (None for QUANTIZE/DEQUANTIZE outputs, whose real values pass through).
    """

    tensor: TensorInfo
    op: str
    op_index: int
    inputs: tuple[int, ...]
    float_tensor: int | None = None
    float_op: int | None = None

    @property
    def name(self) -> str:
        return self.tensor.name

    def limits(self) -> tuple[float, float]:
        """Real values of the smallest and largest integer of the tensor."""
        info = np.iinfo(np.int8 if self.tensor.dtype == "INT8" else np.uint8)
        s, z = float(self.tensor.scale[0]), int(self.tensor.zero_point[0])
        return s * (info.min - z), s * (info.max - z)


def _main_ops(g: GraphInfo) -> list:
    return [op for op in g.operators if op.name not in REQUANT_OPS]


def pair_graphs(q: GraphInfo, f: GraphInfo | None) -> list[Layer]:
    """Every quantized activation tensor of ``q`` (in execution order) with its float twin.

    Raises
    ------
    DataError
        When ``f`` is given but its ops (QUANTIZE/DEQUANTIZE aside) differ
        from ``q``'s: the models are not two conversions of one network.
    """
    fops = None
    if f is not None:
        qn, fn = [o.name for o in _main_ops(q)], [o.name for o in _main_ops(f)]
        if qn != fn:
            raise DataError(f"the float model's ops ({len(fn)}) do not match the int8 model's "
                            f"({len(qn)}): not conversions of the same network")
        fops = iter(_main_ops(f))
    twin: dict[int, int] = {}
    if f is not None:
        twin.update(zip(q.inputs, f.inputs))
    layers = []
    for op in q.operators:
        fop = None
        if op.name not in REQUANT_OPS and fops is not None:
            fop = next(fops)
            twin.update(zip(op.outputs, fop.outputs))
        elif f is not None and op.inputs and op.inputs[0] in twin:
            twin[op.outputs[0]] = twin[op.inputs[0]]
        for out in op.outputs:
            t = q.tensors[out]
            if t.dtype in ("INT8", "UINT8") and t.scale.size == 1:
                layers.append(Layer(t, op.name, op.index, op.inputs, twin.get(out),
                                    None if fop is None else fop.index))
    if f is not None and q.outputs and f.outputs:
        last = q.outputs[0]
        layers = [lay if lay.tensor.index != last else Layer(
            lay.tensor, lay.op, lay.op_index, lay.inputs, f.outputs[0], lay.float_op)
            for lay in layers]
    return layers


def input_layer(layers: list[Layer], q: GraphInfo) -> Layer | None:
    """The tensor the model input is quantized into (the first op's int8 activation input)."""
    for lay in layers:
        if q.inputs and lay.inputs and lay.inputs[0] == q.inputs[0] and lay.op == "QUANTIZE":
            return lay
    for lay in layers:
        if lay.tensor.index == (q.inputs[0] if q.inputs else -1):
            return lay
    return None


#: Ops whose output range is fixed by the op, not calibrated.
FIXED_RANGE_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX"})


def fixed_range_tensors(q: GraphInfo) -> set[int]:
    """Tensors whose range the op fixes (and requantized copies of them)."""
    fixed: set[int] = set()
    for op in q.operators:
        if op.name in FIXED_RANGE_OPS or (op.name in REQUANT_OPS and op.inputs
                                          and op.inputs[0] in fixed):
            fixed.update(op.outputs)
    return fixed


def logits_layer(layers: list[Layer], q: GraphInfo) -> Layer | None:
    """The input of the SOFTMAX op (the logits), or None when the graph has no SOFTMAX."""
    by_index = {lay.tensor.index: lay for lay in layers}
    for op in q.operators:
        if op.name == "SOFTMAX" and op.inputs[0] in by_index:
            return by_index[op.inputs[0]]
    return None


class OpModels:
    """One-op float models cut from a float ``.tflite`` (built on first use, kept)."""

    def __init__(self, float_path: Path, graph: GraphInfo):
        self.path = Path(float_path)
        self.graph = graph
        self._model = None
        self._built: dict[int, bytes] = {}

    def feeds(self, op_index: int) -> list[tuple[int, int]]:
        """``(position, float tensor)`` of the op's non-constant inputs, in input order."""
        op = self.graph.operators[op_index]
        return [(k, t) for k, t in enumerate(op.inputs)
                if t >= 0 and not self.graph.tensors[t].is_constant]

    def model(self, op_index: int) -> bytes:
        """``.tflite`` bytes of a model running float op ``op_index`` alone."""
        if op_index not in self._built:
            if self._model is None:
                self._model = unpack_model(self.path)[0]
            m = self._model
            sub = m.subgraphs[0]
            saved = (sub.operators, sub.inputs, sub.outputs, m.signatureDefs)
            op = sub.operators[op_index]
            sub.operators = [op]
            sub.inputs = [t for _, t in self.feeds(op_index)]
            sub.outputs = list(op.outputs)
            m.signatureDefs = []
            try:
                self._built[op_index] = pack_model(m)
            finally:
                sub.operators, sub.inputs, sub.outputs, m.signatureDefs = saved
        return self._built[op_index]


def read_pair(int8_path: Path, float_path: Path | None):
    """``(int8 graph, float graph or None, layers)`` of two model files."""
    q = read_graph(int8_path)
    f = read_graph(float_path) if float_path is not None else None
    return q, f, pair_graphs(q, f)
