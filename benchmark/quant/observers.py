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
   rounding; each candidate range is scored in O(256) from prefix sums of
   the histogram, with the exhaustive search's exact picks);
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
    candidate is scored by the objective of :func:`quantization_error`
    (computed from prefix sums, see :func:`mse_bins`); the best one is then
    refined by descending over neighbouring (start, end) bin pairs (within
    8 bins) and returned, widened to contain 0.

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
    """First and last histogram bin of the range :func:`mse_range` picks.

    Same candidates, objective and refinement as the exhaustive search
    (:func:`_mse_bins_exhaustive`, every candidate scored with
    :func:`quantization_error`), but each candidate is scored in O(2**bits)
    by :class:`_ErrorModel` (prefix sums of the counts and their first and
    second moments), agreeing with it to ~1e-13 relative. When more than
    one distinct candidate is within ``_TIE_REL`` of the best fast error,
    those are re-scored with :func:`quantization_error` and the pick is made
    on its values, so ties resolve exactly as in the exhaustive search.
    Histograms whose counts are not non-negative integers (or too large for
    exact int64 moments) take the exhaustive search.
    """
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    n = counts.size
    if counts.sum() <= 0:
        return 0, n - 1
    model = _ErrorModel.build(counts, edges, bits=bits)
    if model is None:
        return _mse_bins_exhaustive(counts, edges, bits=bits, step=step)
    cand = mass_step_candidates(counts, step=step)
    best, _ = _first_min(counts, edges, cand, model(cand[:, 0], cand[:, 1]), bits)
    s, e = int(cand[best, 0]), int(cand[best, 1])
    # The mass steps can jump over a sparse tail; refine by descending over
    # nearby (start, end) pairs until no neighbour is better.
    scored = _Scored(model, n)
    for _ in range(_REFINE_STEPS):
        pairs = _neighbours(s, e, n)
        i, exact = _first_min(counts, edges, pairs, scored(pairs), bits)
        nxt = int(pairs[i, 0]), int(pairs[i, 1])
        # (s, e) is among the pairs: if it is not within the tie margin, nxt is better.
        if nxt == (s, e) or ((s, e) in exact and exact[nxt] >= exact[(s, e)]):
            break
        s, e = nxt
    return s, e


class _Scored:
    """Fast errors of (start, end) pairs, each pair scored once (neighbourhoods overlap)."""

    def __init__(self, model, n: int):
        self.model, self.n, self.known = model, n, {}

    def __call__(self, pairs: np.ndarray) -> np.ndarray:
        keys = (pairs[:, 0] * self.n + pairs[:, 1]).tolist()
        new = sorted(set(keys).difference(self.known))
        if new:
            new_keys = np.array(new, np.int64)
            err = self.model(new_keys // self.n, new_keys % self.n)
            self.known.update(zip(new, err.tolist()))
        return np.array([self.known[key] for key in keys])


#: Fast errors within this relative distance of the fast minimum are re-scored
#: exactly (the fast and exact errors agree to ~1e-13 relative).
_TIE_REL = 1e-9
_REFINE_STEPS = 256
_REFINE_RADIUS = 8


def _first_min(counts, edges, cand, fast, bits) -> tuple[int, dict]:
    """Index of the first candidate with the least :func:`quantization_error`.

    Every candidate whose fast error is more than ``_TIE_REL`` above the
    fast minimum has a larger exact error (the two agree far closer than
    that); if only one distinct pair is left it is the minimum. Otherwise the
    pairs left are scored exactly and returned as ``{pair: error}`` (else
    ``{}``), and the first of the least is picked, as ``np.argmin`` over the
    exact errors of all candidates would.
    """
    near = np.flatnonzero(fast <= fast.min() * (1 + _TIE_REL))
    # Clipped neighbourhoods repeat pairs: score each distinct pair once.
    pairs, inverse = np.unique(cand[near], axis=0, return_inverse=True)
    if len(pairs) == 1:
        return int(near[0]), {}
    ref = quantization_error(counts, edges, pairs[:, 0], pairs[:, 1], bits=bits)
    k = int(np.argmin(ref[inverse.ravel()]))
    return int(near[k]), {(int(p[0]), int(p[1])): float(r) for p, r in zip(pairs, ref)}


def _neighbours(s: int, e: int, n: int) -> np.ndarray:
    """The refinement's (start, end) pairs around (s, e), in the exhaustive search's order."""
    offsets = np.arange(-_REFINE_RADIUS, _REFINE_RADIUS + 1)
    ss, ee = np.meshgrid(np.clip(s + offsets, 0, n - 1), np.clip(e + offsets, 0, n - 1),
                         indexing="ij")
    ok = ss <= ee
    return np.stack([ss[ok], ee[ok]], axis=1)


def mass_step_candidates(counts: np.ndarray, *, step: float = 1e-4) -> np.ndarray:
    """The (start, end) bin pairs the mass-step search visits, sorted, shape (C, 2).

    Each step cuts ``step`` of the probability mass from the end where it
    spans more bins (PyTorch's ``HistogramObserver`` order). The bins each
    mass level reaches are looked up for all levels at once; the levels are
    accumulated by repeated addition, exactly as a step-by-step loop would.
    """
    counts = np.asarray(counts, np.float64)
    n = counts.size
    cdf = np.cumsum(counts) / counts.sum()
    # The loop stops once alpha >= beta: neither end takes more than 1/step steps.
    levels = int(min(1.0 / step, 1e6)) + 3 if step > 0 else 16
    alpha, l_bins = _mass_levels(0.0, step, levels, cdf, "left")
    beta, r_bins = _mass_levels(1.0, -step, levels, cdf, "right")
    r_bins = [r - 1 for r in r_bins]
    ka = kb = 0
    s, e = 0, n - 1
    pairs = {(s, e)}
    add = pairs.add
    try:
        while alpha[ka] < beta[kb] and e - s > 1:
            l_bin, r_bin = l_bins[ka], r_bins[kb]
            if l_bin > e:
                l_bin = e
            if r_bin < s:
                r_bin = s
            if l_bin - s > e - r_bin:
                s = l_bin
                ka += 1
            else:
                e = r_bin
                kb += 1
            add((s, e))
    except IndexError:
        # Past the precomputed levels (only for step < 1e-6): the plain loop, same pairs.
        return _mass_step_candidates_loop(counts, step=step)
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def _mass_levels(x0: float, d: float, count: int, cdf: np.ndarray, side: str):
    """Levels ``x0, x0 + d, (x0 + d) + d, ...`` and ``searchsorted(cdf, level + d, side)``.

    ``np.cumsum`` adds sequentially, so the levels are bit-identical to
    repeated ``x = x + d``.
    """
    levels = np.cumsum(np.concatenate([[x0], np.full(count - 1, d)]))
    return levels.tolist(), np.searchsorted(cdf, levels + d, side=side).tolist()


def _mass_step_candidates_loop(counts: np.ndarray, *, step: float) -> np.ndarray:
    """The exhaustive search's candidate loop, step by step."""
    cdf = np.cumsum(counts) / counts.sum()
    alpha, beta, s, e = 0.0, 1.0, 0, counts.size - 1
    pairs = {(s, e)}
    while alpha < beta and e - s > 1:
        l_bin = min(int(np.searchsorted(cdf, alpha + step, side="left")), e)
        r_bin = max(int(np.searchsorted(cdf, beta - step, side="right")) - 1, s)
        if l_bin - s > e - r_bin:
            s, alpha = l_bin, alpha + step
        else:
            e, beta = r_bin, beta - step
        pairs.add((s, e))
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


class _ErrorModel:
    """:func:`quantization_error` of many candidates from prefix sums, O(2**bits) each.

    In units of one histogram bin, positions relative to the left edge of bin
    ``start``: the range holds K = end - start + 1 bins and N = 2**bits cells
    of width d = K / N; a bin's mean squared error is

    * outside the range, ``u >= 1`` bins beyond an end: its values go to the
      end cell's centre, ``(u + (K - N) / 2N)**2 + 1/12``, a quadratic in
      ``u``: the counts' moments about the range ends;
    * inside one cell q: ``(m - (q + 1/2) d)**2 + 1/12`` for the bin centre
      ``m``: the counts' moments about the cell's first bin;
    * across a cell boundary (one bin per boundary when K >= N; every bin
      when K < N): ``F(i + 1) - F(i)`` with ``F(x)``, the integral of the
      squared rounding error from 0 to x, ``x d**2 / 12 + r (2r - K) (r - K)
      / 6N**3`` at an integer x = i, where ``r = i N mod K``.

    The moments are int64 prefix sums of ``c``, ``c j``, ``c j**2`` (exact);
    :meth:`build` declines (returns None) counts that are not non-negative
    integers or whose moments could overflow.
    """

    _CHUNK_VALUES = 2 ** 17  # (candidates x cells) per block

    def __init__(self, counts: np.ndarray, width: float, bits: int):
        n = counts.size
        j = np.arange(n, dtype=np.int64)
        self.c = np.concatenate([counts, [0]])
        moments = [np.concatenate([[0], np.cumsum(counts * j ** k)]) for k in range(3)]
        # Below 2**53 every product and sum taken is an exactly represented
        # integer in float64 too, which numpy computes faster than int64.
        exact_float = float(counts.sum()) * 4.0 * n * n < 2.0 ** 53
        self.P = [m.astype(np.float64) if exact_float else m for m in moments]
        self.c = self.c.astype(np.float64)
        self.c_before = np.concatenate([[0.0], self.c[:-1]])
        self.n, self.N, self.bits = n, 2 ** bits, bits
        self.scale = width ** 2 / float(counts.sum())

    @classmethod
    def build(cls, counts: np.ndarray, edges: np.ndarray, *, bits: int = 8):
        counts = np.asarray(counts, np.float64)
        if not (np.all(np.isfinite(counts)) and np.all(counts >= 0)
                and np.array_equal(counts, np.rint(counts))):
            return None
        n = counts.size
        if counts.sum() <= 0 or counts.sum() * 4.0 * n * n >= 2.0 ** 62:
            return None
        width = (float(edges[-1]) - float(edges[0])) / n
        return cls(counts.astype(np.int64), width, bits)

    def __call__(self, start, end) -> np.ndarray:
        """The mean error of each candidate range, as :func:`quantization_error` returns it."""
        start = np.atleast_1d(np.asarray(start, np.int64))
        end = np.atleast_1d(np.asarray(end, np.int64))
        err = np.empty(start.size)
        chunk = max(1, self._CHUNK_VALUES // min(self.N, self.n))
        for i in range(0, start.size, chunk):
            s, e = start[i:i + chunk], end[i:i + chunk]
            k = e - s + 1
            part = self._outside(s, e, k)
            wide = k >= self.N
            part[wide] += self._inside_wide(s[wide], k[wide])
            part[~wide] += self._inside_narrow(s[~wide], k[~wide])
            err[i:i + chunk] = part
        return err * self.scale

    def _outside(self, s, e, k) -> np.ndarray:
        P0, P1, P2 = self.P
        n, N = self.n, self.N
        m0 = P0[s]
        m1 = s * m0 - P1[s]
        m2 = s * s * m0 - 2 * s * P1[s] + P2[s]
        r0, t1, t2 = P0[n] - P0[e + 1], P1[n] - P1[e + 1], P2[n] - P2[e + 1]
        m0 = m0 + r0
        m1 = m1 + t1 - e * r0
        m2 = m2 + t2 - 2 * e * t1 + e * e * r0
        x = (k - N) / (2 * N)
        return m2 + 2 * x * m1 + (x * x + 1 / 12) * m0

    def _boundary_term(self, i, k) -> np.ndarray:
        """``F(i + 1) - F(i)``: the error of the values of bin i, one value per bin."""
        N = self.N

        def p(x):
            r = (x * N) % k
            return r * (2 * r - k) * (r - k)

        return k * k / (12.0 * N * N) + (p(i + 1) - p(i)) / (6.0 * N ** 3)

    def _inside_wide(self, s, k) -> np.ndarray:
        """Bins within the range when the cells are at least one bin wide (K >= N).

        Cell q takes the bins whose left edge it holds, ``B_q <= i < B_(q+1)``
        with ``B_q = ceil(q K / N)``, all scored as if inside the cell; the
        last one, when it crosses boundary q + 1 by a fraction f of a bin,
        then has ``d f**2`` too much (the part beyond the boundary is nearer
        to the next centre by ``d``, ``2 d (x - boundary)`` in squares).
        """
        if s.size == 0:
            return np.zeros(0)
        N, (P0, P1, P2) = self.N, self.P
        # u = q K / N, exact in float64 (N is a power of 2); B_q = ceil(u).
        u = np.arange(N + 1, dtype=np.float64)[None, :] * (k[:, None] / N)
        lo = np.ceil(u)
        start = s[:, None] + lo
        idx = start.astype(np.intp)
        a = (start if P0.dtype == np.float64 else idx)[:, :-1]
        g = P0[idx]
        s0 = g[:, 1:] - g[:, :-1]
        mass = g[:, -1] - g[:, 0]
        g = P1[idx]
        t1 = g[:, 1:] - g[:, :-1]
        s1 = t1 - a * s0
        g = P2[idx]
        s2 = (g[:, 1:] - g[:, :-1]) - a * (t1 + s1)
        # bin centre minus cell centre, for the cell's first bin
        frac = lo - u
        x = frac[:, :-1] + (0.5 - 0.5 * (k / N))[:, None]
        full = (s2 + x * (s1 + s1 + x * s0)).sum(axis=1) + mass / 12
        beyond = frac[:, 1:-1]
        cut = (self.c_before[idx[:, 1:-1]] * (beyond * beyond)).sum(axis=1)
        return full - cut * (k / N)

    def _inside_narrow(self, s, k) -> np.ndarray:
        """Bins within the range when every bin holds a cell boundary (K < N)."""
        if s.size == 0:
            return np.zeros(0)
        i = np.arange(min(self.N, self.n), dtype=np.int64)[None, :]
        s, k = s[:, None], k[:, None]
        inside = i < k
        c = np.where(inside, self.c[np.minimum(s + i, self.n)], 0)
        return (c * self._boundary_term(i, k)).sum(axis=1)


def _mse_bins_exhaustive(counts: np.ndarray, edges: np.ndarray, *, bits: int = 8,
                         step: float = 1e-4) -> tuple[int, int]:
    """The exhaustive search: every candidate scored with :func:`quantization_error`.

    The search :func:`mse_bins` reproduces (it was :func:`mse_bins` before
    the fast error model); still used for counts that are not integers.
    """
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    n = counts.size
    if counts.sum() <= 0:
        return 0, n - 1
    cand = _mass_step_candidates_loop(counts, step=step)
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
    # Values are binned a few images at a time (fewer, larger numpy calls).
    pending: dict[int, list[np.ndarray]] = {i: [] for i in hists}
    held = 0
    for k in range(inputs.shape[0]):
        interp.set_tensor(in_index, inputs[k:k + 1].astype(np.float32))
        interp.invoke()
        for i, values in pending.items():
            values.append(interp.get_tensor(i).ravel())
            held += values[-1].size
        if held >= _HIST_BATCH_VALUES or k == inputs.shape[0] - 1:
            for i, values in pending.items():
                add_to_histogram(hists[i][0], np.concatenate(values), hists[i][1])
                values.clear()
            held = 0
    return hists


#: Activation values held before binning (float32: 4 bytes each).
_HIST_BATCH_VALUES = 2_000_000


def add_to_histogram(counts: np.ndarray, values: np.ndarray, edges: np.ndarray) -> None:
    """Add ``np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)`` to ``counts``.

    Same counts (values in ``[edges[i], edges[i+1])``, the last bin closed,
    NaN in none), found by arithmetic on equal-width ``edges`` and corrected
    against the edges themselves rather than by sorting.

    >>> counts = np.zeros(4, np.int64)
    >>> values = np.array([-1.0, 0.0, 0.25, 0.5, 0.99, 1.0, 7.0])
    >>> add_to_histogram(counts, values, np.linspace(0, 1, 5))
    >>> counts
    array([2, 1, 1, 3])
    """
    n = counts.size
    x = np.clip(np.asarray(values, np.float64).ravel(), edges[0], edges[-1])
    if np.isnan(x).any():
        x = x[~np.isnan(x)]
    i = ((x - edges[0]) * (n / (edges[-1] - edges[0]))).astype(np.intp)
    np.clip(i, 0, n - 1, out=i)
    wrong = np.flatnonzero((x < edges[i]) | ((x >= edges[i + 1]) & (i < n - 1)))
    while wrong.size:
        # Rounding put these a bin off (or more, for ranges tiny next to their values).
        xw, iw = x[wrong], i[wrong]
        iw = iw - (xw < edges[iw]) + ((xw >= edges[iw + 1]) & (iw < n - 1))
        i[wrong] = iw
        bad = (xw < edges[iw]) | ((xw >= edges[iw + 1]) & (iw < n - 1))
        wrong = wrong[bad]
    counts += np.bincount(i, minlength=n)


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
    from benchmark.progress import bar
    show = bar(f"{observer} activation ranges", unit="tensor")
    for done, (i, (counts, edges)) in enumerate(hists.items(), 1):
        lo, hi = choose_range(observer, counts, edges)
        if show:
            show(done, len(hists))
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
