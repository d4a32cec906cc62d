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

from benchmark.errors import UsageError
from benchmark.registry import Registry

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


def quantization_error(counts: np.ndarray, edges: np.ndarray, start, end, *,
                       bits: int = 8) -> np.ndarray:
    """Expected squared error of quantizing a histogram's values to the range of bins start..end.

    The error model of PyTorch's ``HistogramObserver``: values are spread
    uniformly within each histogram bin; the candidate range (from the left
    edge of bin ``start`` to the right edge of bin ``end``) is cut into
    ``2**bits`` equal cells and every value goes to the centre of its cell,
    values outside the range to the nearest end cell. ``start``/``end`` may
    be arrays (one candidate each); the result is the mean error per value.

    Examples
    --------
    Two bins on [0, 2], one value each, 1 bit (two cells of width 1): uniform
    rounding noise, 1/12. Three bins on [0, 3] cut to [0, 2]: the values in
    [2, 3] all go to 1.5, costing (1.5**3 - 0.5**3) / 3 = 13/12 on top of
    2/12 for the other two bins.

    >>> quantization_error(np.array([1, 1]), np.array([0., 1., 2.]), 0, 1, bits=1)
    array([0.08333333])
    >>> quantization_error(np.array([1, 1, 1]), np.array([0., 1., 2., 3.]), 0, 1, bits=1) * 3
    array([1.25])
    """
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    start = np.atleast_1d(np.asarray(start))[:, None]
    end = np.atleast_1d(np.asarray(end))[:, None]
    n_dst = 2 ** bits
    width = (edges[-1] - edges[0]) / counts.size
    dst = width * (end - start + 1) / n_dst
    src = np.arange(counts.size)[None, :]
    begin = (src - start) * width
    stop = begin + width
    density = counts[None, :] / width

    def norm(a, b):
        return density * (b ** 3 - a ** 3) / 3

    first = np.clip(np.floor(begin / dst), 0, n_dst - 1)
    last = np.clip(np.floor(stop / dst), 0, n_dst - 1)
    err = norm(begin - (first + 0.5) * dst, dst / 2)
    err = err + (last - first - 1) * norm(-dst / 2, dst / 2)
    err = err + norm(-dst / 2, stop - (last + 0.5) * dst)
    return err.sum(axis=1) / max(counts.sum(), 1e-300)


def mse_range(counts: np.ndarray, edges: np.ndarray, *, bits: int = 8,
              step: float = 1e-4) -> tuple[float, float]:
    """The clipping range with the least expected ``bits``-bit quantization error.

    Candidates follow the search of PyTorch's ``HistogramObserver``: the
    range shrinks in steps of ``step`` probability mass, each time from the
    end where that mass spans more bins (the sparser tail). Every distinct
    candidate is scored with :func:`quantization_error`; the best one is
    then refined by descending over neighbouring (start, end) bin pairs
    (within 8 bins) and returned, widened to contain 0.

    Examples
    --------
    A single far outlier among 10**8 small values is clipped away (with more
    than about 1e-6 of the mass it would cost more to clip than to keep):

    >>> counts = np.zeros(2048); counts[:100] = 10**6; counts[-1] = 1
    >>> lo, hi = mse_range(counts, np.linspace(0.0, 100.0, 2049))
    >>> lo, hi < 10
    (0.0, True)
    """
    s, e = mse_bins(counts, edges, bits=bits, step=step)
    return _with_zero(float(edges[s]), float(edges[e + 1]))


def mse_bins(counts: np.ndarray, edges: np.ndarray, *, bits: int = 8,
             step: float = 1e-4) -> tuple[int, int]:
    """First and last histogram bin of the range :func:`mse_range` picks."""
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    n = counts.size
    total = counts.sum()
    if total <= 0:
        return 0, n - 1
    cdf = np.cumsum(counts) / total
    alpha, beta, s, e = 0.0, 1.0, 0, n - 1
    pairs = {(s, e)}
    while alpha < beta and e - s > 1:
        l_bin = min(int(np.searchsorted(cdf, alpha + step, side="left")), e)
        r_bin = max(int(np.searchsorted(cdf, beta - step, side="right")) - 1, s)
        if l_bin - s > e - r_bin:
            s, alpha = l_bin, alpha + step
        else:
            e, beta = r_bin, beta - step
        pairs.add((s, e))
    cand = np.array(sorted(pairs))
    err = np.concatenate([quantization_error(counts, edges, cand[i:i + 256, 0],
                                             cand[i:i + 256, 1], bits=bits)
                          for i in range(0, len(cand), 256)])
    best = int(np.argmin(err))
    s, e, best_err = int(cand[best, 0]), int(cand[best, 1]), float(err[best])
    # The mass steps can jump over a sparse tail; refine by descending over
    # nearby (start, end) pairs until no neighbour is better.
    offsets = np.arange(-8, 9)
    for _ in range(256):
        ss, ee = np.meshgrid(np.clip(s + offsets, 0, n - 1), np.clip(e + offsets, 0, n - 1),
                             indexing="ij")
        ok = ss <= ee
        local = quantization_error(counts, edges, ss[ok], ee[ok], bits=bits)
        i = int(np.argmin(local))
        if local[i] >= best_err:
            break
        s, e, best_err = int(ss[ok][i]), int(ee[ok][i]), float(local[i])
    return s, e


def minmax_range(counts: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """The histogram's own range (the converter's min-max), widened to 0."""
    return _with_zero(float(edges[0]), float(edges[-1]))


#: Activation observers by name: ``fn(counts, edges) -> (low, high)``.
OBSERVER_REGISTRY: Registry = Registry("activation observer", option="--act-observer")
OBSERVER_REGISTRY.register("minmax", minmax_range)
OBSERVER_REGISTRY.register("percentile", percentile_range)
OBSERVER_REGISTRY.register("mse", mse_range)
OBSERVERS = tuple(OBSERVER_REGISTRY.names())


def choose_range(observer: str, counts: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """The activation range an ``observer`` picks from a tensor's histogram."""
    return OBSERVER_REGISTRY.get(observer)(counts, edges)


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
    if observer not in OBSERVER_REGISTRY:
        raise UsageError(f"unknown activation observer {observer!r}; choose one of "
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
