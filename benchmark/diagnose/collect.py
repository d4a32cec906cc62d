"""Streaming per-tensor statistics of an int8 model (and its float twin) over a set of images.

One pass per image set: each image is run through the int8 interpreter and
the float interpreter (both keeping their intermediate tensors), and every
quantized activation tensor adds to its :class:`TensorStats`. With the float
model, each int8 op's float twin is also run alone on the dequantized int8
inputs (the *layer* error, as TFLite's ``QuantizationDebugger`` computes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.diagnose.graph import Layer, OpModels

#: Bins of the float-value histograms (over the tensor's int8 range, plus one each side).
FLOAT_BINS = 64


@dataclass
class TensorStats:
    """Counts and sums of one tensor over one image set.

    ``at_low``/``at_high`` count int8 values at the grid's limits (a limit
    whose real value is 0, such as the floor of a ReLU output, is not a
    saturation and is not counted); ``clipped`` counts float values outside
    the int8 range (by more than half a step); ``hist`` the int8 values.
    """

    lo: float
    hi: float
    scale: float
    count_low: bool
    n: int = 0
    at_low: int = 0
    at_high: int = 0
    clipped: int = 0
    float_n: int = 0
    fmin: float = np.inf
    fmax: float = -np.inf
    qmin: float = np.inf
    qmax: float = -np.inf
    err_sq: float = 0.0
    sig_sq: float = 0.0
    layer_mse: list = field(default_factory=list)
    layer_sig: list = field(default_factory=list)
    hist: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    fhist: np.ndarray = field(default_factory=lambda: np.zeros(FLOAT_BINS + 2, np.int64))

    @classmethod
    def of(cls, layer: Layer) -> "TensorStats":
        lo, hi = layer.limits()
        return cls(lo=lo, hi=hi, scale=float(layer.tensor.scale[0]), count_low=abs(lo) > 1e-12)

    def add_int(self, q: np.ndarray, offset: int) -> np.ndarray:
        """Add the int8 values ``q`` (``offset`` maps them to 0..255); their real values."""
        u = q.astype(np.int32).ravel() + offset
        self.hist += np.bincount(u, minlength=256)
        self.n += u.size
        self.at_high += int(np.count_nonzero(u == 255))
        if self.count_low:
            self.at_low += int(np.count_nonzero(u == 0))
        real = (self.lo + self.scale * u).astype(np.float64)
        self.qmin, self.qmax = min(self.qmin, real.min()), max(self.qmax, real.max())
        return real

    def add_float(self, f: np.ndarray, real: np.ndarray) -> None:
        """Add the float model's values ``f`` of the same tensor (``real``: the int8 ones)."""
        f = f.astype(np.float64).ravel()
        half = self.scale / 2
        self.clipped += int(np.count_nonzero((f > self.hi + half) |
                                             ((f < self.lo - half) & self.count_low)))
        self.float_n += f.size
        self.fmin, self.fmax = min(self.fmin, f.min()), max(self.fmax, f.max())
        self.err_sq += float(np.sum((real - f) ** 2))
        self.sig_sq += float(np.sum(f ** 2))
        edges = np.linspace(self.lo, self.hi, FLOAT_BINS + 1)
        self.fhist += np.bincount(np.searchsorted(edges, f, side="right"),
                                  minlength=FLOAT_BINS + 2)[:FLOAT_BINS + 2]

    def add_layer(self, real: np.ndarray, ref: np.ndarray) -> None:
        """One example's layer error: int8 output vs the float op on the int8 inputs."""
        d = real - ref.astype(np.float64).ravel()
        self.layer_mse.append(float(np.mean(d ** 2)))
        self.layer_sig.append(float(np.mean(ref.astype(np.float64) ** 2)))


def _offset(layer: Layer) -> int:
    return 128 if layer.tensor.dtype == "INT8" else 0


class Collector:
    """Runs images through the int8 (and float) interpreters and fills per-tensor stats.

    ``graph`` is the int8 model's :class:`~benchmark.tflite_graph.GraphInfo`;
    ``q_interp``/``f_interp`` are allocated interpreters opened with
    ``preserve_all_tensors``; ``op_models`` (:class:`OpModels`) and ``open_model``
    (bytes -> allocated interpreter) enable the layer error.
    """

    def __init__(self, graph, layers: list[Layer], q_interp, f_interp=None, op_models=None,
                 open_model=None):
        self.graph = graph
        self.layers = layers
        self.q, self.f = q_interp, f_interp
        self.op_models: OpModels | None = op_models
        self._open = open_model
        self._op_interps: dict[int, object] = {}
        twins = {lay.tensor.index: lay.float_tensor for lay in layers}
        # The quantized model input reaches the float ops as the float input itself (as in
        # QuantizationDebugger): the first layer's error includes the input quantization.
        self._float_feed = {op.outputs[0]: twins.get(op.outputs[0]) for op in graph.operators
                            if op.name == "QUANTIZE" and op.inputs[0] in graph.inputs}
        self.q_in = q_interp.get_input_details()[0]
        self.q_out = q_interp.get_output_details()[0]
        self.f_in = f_interp.get_input_details()[0] if f_interp is not None else None
        self.f_out = f_interp.get_output_details()[0] if f_interp is not None else None

    def run(self, x: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray | None]:
        """Statistics of the preprocessed images ``x``; (stats by tensor, int8 raw outputs,
        float outputs or None)."""
        from benchmark.backends.base import TensorSpec, quantize

        stats = {lay.tensor.index: TensorStats.of(lay) for lay in self.layers}
        spec = TensorSpec.from_details(self.q_in)
        raw = np.empty((len(x),) + tuple(self.q_out["shape"][1:]), self.q_out["dtype"])
        fout = None if self.f is None else np.empty(raw.shape, np.float32)
        for i in range(len(x)):
            self.q.set_tensor(self.q_in["index"], quantize(x[i:i + 1], spec))
            self.q.invoke()
            raw[i] = self.q.get_tensor(self.q_out["index"])[0]
            if self.f is not None:
                self.f.set_tensor(self.f_in["index"], x[i:i + 1].astype(np.float32))
                self.f.invoke()
                fout[i] = self.f.get_tensor(self.f_out["index"])[0]
            self._add_image(stats)
        return stats, raw, fout

    def _real(self, index: int) -> np.ndarray:
        """Dequantized value of int8 tensor ``index`` (as the op saw it)."""
        info = self.graph.tensors[index]
        t = self.q.get_tensor(index)
        if not info.scale.size or not np.issubdtype(t.dtype, np.integer):
            return t.astype(np.float32)
        s, z = np.float32(info.scale[0]), int(info.zero_point[0])
        return (s * (t.astype(np.int32) - z)).astype(np.float32)

    def _add_image(self, stats: dict) -> None:
        for lay in self.layers:
            st = stats[lay.tensor.index]
            real = st.add_int(self.q.get_tensor(lay.tensor.index), _offset(lay))
            if self.f is None or lay.float_tensor is None:
                continue
            st.add_float(self.f.get_tensor(lay.float_tensor), real)
            if lay.float_op is not None and self.op_models is not None:
                st.add_layer(real, self._layer_ref(lay))

    def _layer_ref(self, lay: Layer) -> np.ndarray:
        """The float op of ``lay`` run alone on the dequantized int8 inputs."""
        interp = self._op_interps.get(lay.float_op)
        if interp is None:
            interp = self._open(self.op_models.model(lay.float_op))
            self._op_interps[lay.float_op] = interp
        details = interp.get_input_details()
        for (pos, _), d in zip(self.op_models.feeds(lay.float_op), details):
            src = lay.inputs[pos]
            twin = self._float_feed.get(src)
            value = self.f.get_tensor(twin) if twin is not None else self._real(src)
            interp.set_tensor(d["index"], value.astype(np.float32).reshape(d["shape"]))
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])
