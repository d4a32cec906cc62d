"""Activation range estimation ("observers") for full-integer post-training quantization.

The TFLite converter calibrates every activation tensor with min-max over the
representative set. The paper quantizes activations with a histogram
observer that picks the range minimising the L2 quantization error. This
module adds that choice without leaving the standard converter:

1. the converter's own calibration pass runs and records each activation
   tensor's min/max in the (still float) calibrated model;
2. :func:`collect_histograms` runs that float model over the same
   representative images and bins every calibrated tensor's values
   (2048 bins over its min-max range);
3. :func:`choose_range` turns each histogram into a range: ``minmax``
   (unchanged), ``percentile`` (0.01 % / 99.99 % quantiles) or ``mse`` (the
   clipping range with the least expected squared error after 8-bit
   rounding);
4. the ranges are written back as the tensors' min/max, and the converter's
   quantizer continues as usual, so biases, requantization multipliers and
   op constraints (max-pool, softmax, concatenation share ranges) are handled
   by TFLite itself and the result is a standard full-int8 ``.tflite``.

The model input keeps its min-max range: it is the image itself, whose
values come from a fixed, finite set.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

OBSERVERS = ("minmax", "percentile", "mse")
HIST_BINS = 2048
PERCENTILE = 99.99


def _with_zero(lo: float, hi: float) -> tuple[float, float]:
    """Quantized ranges must represent 0 exactly (padding, ReLU)."""
    return min(lo, 0.0), max(hi, 0.0)


def percentile_range(counts: np.ndarray, edges: np.ndarray, *,
                     percentile: float = PERCENTILE) -> tuple[float, float]:
    """The (100 - p) % and p % quantiles of a histogram (linear within a bin), widened to 0.

    Examples
    --------
    >>> counts = np.ones(100); edges = np.linspace(0.0, 1.0, 101)
    >>> [round(v, 6) for v in percentile_range(counts, edges, percentile=90)]
    [0.0, 0.9]
    """
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    if total <= 0:
        return _with_zero(float(edges[0]), float(edges[-1]))
    cdf = np.concatenate([[0.0], np.cumsum(counts)]) / total
    lo = float(np.interp((100 - percentile) / 100, cdf, edges))
    hi = float(np.interp(percentile / 100, cdf, edges))
    return _with_zero(lo, hi)


def quantization_error(counts: np.ndarray, centers: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       *, bits: int = 8) -> np.ndarray:
    """Expected squared error of uniform ``bits``-bit quantization with ranges ``[lo, hi]``.

    The histogram's mass sits at the bin centres; values outside a range are
    clipped to it. ``lo``/``hi`` may be arrays (one candidate per element).

    Examples
    --------
    Values already on the 1-bit grid {0, 1} quantize without error; the range
    [0, 0.5] clips the 1 to 0.5:

    >>> err = quantization_error(np.array([1.0, 1.0]), np.array([0.0, 1.0]),
    ...                          np.array([0.0, 0.0]), np.array([1.0, 0.5]), bits=1)
    >>> err.tolist()
    [0.0, 0.125]
    """
    lo = np.atleast_1d(np.asarray(lo, np.float64))[:, None]
    hi = np.atleast_1d(np.asarray(hi, np.float64))[:, None]
    levels = 2 ** bits - 1
    step = np.maximum(hi - lo, 1e-12) / levels
    x = np.asarray(centers, np.float64)[None, :]
    q = np.clip(np.round((x - lo) / step), 0, levels) * step + lo
    w = np.asarray(counts, np.float64)
    return ((x - q) ** 2 * w).sum(axis=1) / max(w.sum(), 1e-300)


def mse_range(counts: np.ndarray, edges: np.ndarray, *, bits: int = 8,
              stride: int = 4) -> tuple[float, float]:
    """The clipping range with the least expected 8-bit quantization error.

    Candidates are the ranges met while trimming the histogram bin by bin
    from whichever end holds less mass (the search of PyTorch's histogram
    observer); every ``stride``-th candidate is scored with
    :func:`quantization_error` and the best one, widened to contain 0, is
    returned.

    Examples
    --------
    A single far outlier among many small values is clipped away:

    >>> counts = np.zeros(2048); counts[:100] = 1000; counts[-1] = 1
    >>> lo, hi = mse_range(counts, np.linspace(0.0, 100.0, 2049))
    >>> lo, hi < 10
    (0.0, True)
    """
    counts = np.asarray(counts, np.float64)
    n = counts.size
    centers = (edges[:-1] + edges[1:]) / 2
    starts, ends = [0], [n - 1]
    s, e = 0, n - 1
    while e - s > 8:
        if counts[s] <= counts[e]:
            s += 1
        else:
            e -= 1
        starts.append(s)
        ends.append(e)
    starts = np.asarray(starts[::stride] + [starts[-1]])
    ends = np.asarray(ends[::stride] + [ends[-1]])
    lo = np.minimum(edges[starts], 0.0)
    hi = np.maximum(edges[ends + 1], 0.0)
    err = quantization_error(counts, centers, lo, hi, bits=bits)
    best = int(np.argmin(err))
    return float(lo[best]), float(hi[best])


def choose_range(observer: str, counts: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """The activation range an ``observer`` picks from a tensor's histogram."""
    if observer == "minmax":
        return _with_zero(float(edges[0]), float(edges[-1]))
    if observer == "percentile":
        return percentile_range(counts, edges)
    if observer == "mse":
        return mse_range(counts, edges)
    raise ValueError(f"unknown activation observer {observer!r}; choose one of "
                     f"{', '.join(OBSERVERS)}")


def collect_histograms(calibrated: bytes, inputs: np.ndarray, tensors: dict[int, tuple],
                       *, bins: int = HIST_BINS) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Histogram of each tensor's values over ``inputs``, within its recorded (min, max).

    Parameters
    ----------
    calibrated : bytes
        The float model with calibration statistics.
    inputs : ndarray, shape (N, ...)
        Representative model inputs, fed one at a time (batch 1).
    tensors : dict
        Tensor index -> (min, max) recorded by the calibrator.
    """
    from benchmark.backends.runtime import find_runtime

    with warnings.catch_warnings():
        # Keeping every intermediate tensor is the point here, not a debugging leftover.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interp = find_runtime().Interpreter(model_content=calibrated,
                                            experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    in_index = interp.get_input_details()[0]["index"]
    hists = {}
    for i, (lo, hi) in tensors.items():
        hi = hi if hi > lo else lo + 1e-6
        hists[i] = (np.zeros(bins, np.int64), np.linspace(lo, hi, bins + 1))
    for k in range(inputs.shape[0]):
        interp.set_tensor(in_index, inputs[k:k + 1].astype(np.float32))
        interp.invoke()
        for i, (counts, edges) in hists.items():
            v = interp.get_tensor(i).ravel()
            c, _ = np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)
            counts += c
    return hists


def apply_observer(calibrated: bytes, inputs: np.ndarray, observer: str) -> tuple[bytes, dict]:
    """Rewrite the activation ranges of a calibrated model; returns (model, per-tensor report)."""
    from benchmark.tflite_graph import pack_model, unpack_model

    model, _ = unpack_model(calibrated)
    sg = model.subgraphs[0]
    skip = set(sg.inputs)
    ranges = {}
    for i, t in enumerate(sg.tensors):
        q = t.quantization
        if i in skip or q is None or q.min is None or q.max is None or len(q.min) != 1:
            continue
        ranges[i] = (float(q.min[0]), float(q.max[0]))
    hists = collect_histograms(calibrated, inputs, ranges)
    report = {}
    for i, (counts, edges) in hists.items():
        lo, hi = choose_range(observer, counts, edges)
        t = sg.tensors[i]
        t.quantization.min, t.quantization.max = [lo], [hi]
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        report[name] = {"minmax": list(_with_zero(*ranges[i])), observer: [lo, hi]}
    return pack_model(model), report


@contextlib.contextmanager
def converter_observer(observer: str, inputs: np.ndarray, report: dict):
    """Within the block, the TFLite converter's calibration uses ``observer``.

    Wraps ``Calibrator.calibrate`` so its result (the calibrated float model)
    passes through :func:`apply_observer` before the converter quantizes it.
    ``report`` receives the chosen ranges per tensor.
    """
    if observer == "minmax":
        yield
        return
    if observer not in OBSERVERS:
        raise ValueError(f"unknown activation observer {observer!r}; choose one of "
                         f"{', '.join(OBSERVERS)}")
    from tensorflow.lite.python.optimize import calibrator

    original = calibrator.Calibrator.calibrate
    calls = []

    def calibrate(self, dataset_gen):
        blob, ranges = apply_observer(original(self, dataset_gen), inputs, observer)
        report.update(ranges)
        calls.append(len(ranges))
        return blob

    calibrator.Calibrator.calibrate = calibrate
    try:
        yield
    finally:
        calibrator.Calibrator.calibrate = original
    if not calls:
        # The converter took a path that does not calibrate first (an older
        # quantizer): the observer would silently not apply.
        raise RuntimeError(f"the TFLite converter did not run its calibration step; "
                           f"--act-observer {observer} cannot be applied with this TensorFlow")
