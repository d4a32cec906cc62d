"""The fast mse range search picks exactly the ranges of the exhaustive one.

``_old_mse_bins`` below is a verbatim copy of the search as it was before the
prefix-sum error model (every candidate scored with ``quantization_error``);
:func:`mse_bins` must return the same (start, end) bins on every histogram.
Where two candidates' exact errors tie (equal within 1e-12 relative) the
pick may differ by one bin; on these histograms it does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.quant import observers
from benchmark.quant.observers import (_ErrorModel, add_to_histogram, mass_step_candidates,
                                       mse_bins, mse_range, quantization_error)


def _old_candidates(counts, step=1e-4):
    n = counts.size
    cdf = np.cumsum(counts) / counts.sum()
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
    return np.array(sorted(pairs))


def _old_mse_bins(counts, edges, *, bits=8, step=1e-4):
    """The exhaustive search (copy of the code before the fast path)."""
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    n = counts.size
    if counts.sum() <= 0:
        return 0, n - 1
    cand = _old_candidates(counts, step)
    err = np.concatenate([quantization_error(counts, edges, cand[i:i + 256, 0],
                                             cand[i:i + 256, 1], bits=bits)
                          for i in range(0, len(cand), 256)])
    best = int(np.argmin(err))
    s, e, best_err = int(cand[best, 0]), int(cand[best, 1]), float(err[best])
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


def _assert_same_pick(counts, edges, *, bits=8):
    new = mse_bins(counts, edges, bits=bits)
    old = _old_mse_bins(counts, edges, bits=bits)
    if new != old:
        # Allowed only for an exact tie one bin away.
        err = quantization_error(counts, edges, [old[0], new[0]], [old[1], new[1]], bits=bits)
        assert abs(new[0] - old[0]) <= 1 and abs(new[1] - old[1]) <= 1, (new, old)
        assert err[1] == pytest.approx(err[0], rel=1e-12), (new, old, err)
    return new


def _synthetic(name, rng, bins):
    """A histogram (integer counts, edges) of one of the shapes the observer meets."""
    size = int(rng.integers(20_000, 200_000))
    if name == "gaussian":
        v = rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 3), size)
    elif name == "laplace":
        v = rng.laplace(0, 1, size)
    elif name == "student_t":
        v = rng.standard_t(2, size)
    elif name == "relu":
        v = np.maximum(rng.normal(0.3, 1, size), 0)
    elif name == "outliers":
        v = np.concatenate([rng.normal(0, 1, size), rng.uniform(20, 60, 3), [-35.0]])
    elif name == "bimodal":
        v = np.concatenate([rng.normal(-4, 0.5, size // 3), rng.normal(3, 1, size)])
    elif name == "lognormal":
        v = rng.lognormal(0, 1.2, size)
    else:
        raise ValueError(name)
    counts, edges = np.histogram(v, bins=bins, range=(v.min(), v.max()))
    if name == "outliers":
        # all-zero stretches between the body and the outliers
        assert (counts == 0).sum() > bins // 4
    return counts, edges


SHAPES = ["gaussian", "laplace", "student_t", "relu", "outliers", "bimodal", "lognormal"]


@pytest.mark.parametrize("shape", SHAPES)
def test_same_ranges_as_the_exhaustive_search_on_random_shapes(shape):
    rng = np.random.default_rng(sum(map(ord, shape)))
    for bins in (64, 300, 512):
        counts, edges = _synthetic(shape, rng, bins)
        _assert_same_pick(counts, edges)
    # fewer bits: other cell widths relative to the bins
    counts, edges = _synthetic(shape, rng, 256)
    for bits in (2, 4, 7):
        _assert_same_pick(counts, edges, bits=bits)


def test_same_ranges_on_2048_bin_histograms():
    rng = np.random.default_rng(11)
    for shape in ("student_t", "outliers"):
        counts, edges = _synthetic(shape, rng, 2048)
        _assert_same_pick(counts, edges)


def test_same_ranges_on_degenerate_histograms():
    edges = np.linspace(-1.0, 3.0, 129)
    cases = []
    one = np.zeros(128, np.int64)
    one[40] = 1000
    cases.append(one)                                 # a single occupied bin
    two = np.zeros(128, np.int64)
    two[[3, 120]] = [5, 7]                            # two spikes, zeros between
    cases.append(two)
    cases.append(np.ones(128, np.int64))              # flat
    edge = np.zeros(128, np.int64)
    edge[0], edge[-1] = 10**6, 1                      # all at one end
    cases.append(edge)
    tail = np.zeros(128, np.int64)
    tail[:10] = 10**5
    tail[-1] = 3
    cases.append(tail)
    for counts in cases:
        _assert_same_pick(counts, edges)
    assert mse_bins(np.zeros(128), edges) == _old_mse_bins(np.zeros(128), edges) == (0, 127)
    # a one-bin and a two-bin histogram
    for counts in (np.array([4]), np.array([1, 2])):
        e = np.linspace(0.0, 1.0, counts.size + 1)
        _assert_same_pick(counts, e)


def test_non_integer_counts_take_the_exhaustive_search():
    rng = np.random.default_rng(5)
    counts, edges = _synthetic("laplace", rng, 128)
    weighted = counts * 0.37
    assert _ErrorModel.build(weighted, edges) is None
    assert mse_bins(weighted, edges) == _old_mse_bins(weighted, edges)


def test_candidates_are_the_exhaustive_search_candidates():
    rng = np.random.default_rng(2)
    for shape in SHAPES:
        counts, _ = _synthetic(shape, rng, 2048)
        np.testing.assert_array_equal(mass_step_candidates(counts), _old_candidates(counts))
        np.testing.assert_array_equal(mass_step_candidates(counts, step=3e-3),
                                      _old_candidates(counts, step=3e-3))


def _assert_errors_match(counts, edges, start, end, bits=8, rel=1e-9):
    fast = _ErrorModel.build(counts, edges, bits=bits)(start, end)
    ref = quantization_error(counts, edges, start, end, bits=bits)
    np.testing.assert_allclose(fast, ref, rtol=rel, atol=0)
    return np.max(np.abs(fast - ref) / ref)


def test_fast_error_equals_quantization_error():
    """Every kind of candidate: cells wider and narrower than a bin, tails cut or not."""
    rng = np.random.default_rng(8)
    worst = 0.0
    for shape in SHAPES:
        for bins in (40, 256, 2048):
            counts, edges = _synthetic(shape, rng, bins)
            pairs = 400 if bins < 2048 else 60
            s = rng.integers(0, bins, pairs)
            e = rng.integers(0, bins, pairs)
            s, e = np.minimum(s, e), np.maximum(s, e)
            for bits in (8, 5, 1):
                worst = max(worst, _assert_errors_match(counts, edges, s, e, bits))
            cand = mass_step_candidates(counts)[::1 if bins < 2048 else 10]
            worst = max(worst, _assert_errors_match(counts, edges, cand[:, 0], cand[:, 1]))
    # in fact the two agree to rounding
    assert worst < 1e-11


def test_fast_error_by_hand():
    # the doctest cases of quantization_error
    m = _ErrorModel.build(np.array([1, 1]), np.array([0., 1., 2.]), bits=1)
    assert m(0, 1)[0] == pytest.approx(1 / 12, rel=1e-14)
    m = _ErrorModel.build(np.array([1, 1, 1]), np.array([0., 1., 2., 3.]), bits=1)
    assert m(0, 1)[0] * 3 == pytest.approx(1.25, rel=1e-14)


def test_mse_range_docstring_case_is_fast_path():
    counts = np.zeros(2048)
    counts[:100] = 10**6
    counts[-1] = 1
    edges = np.linspace(0.0, 100.0, 2049)
    assert _ErrorModel.build(counts, edges) is not None
    lo, hi = mse_range(counts, edges)
    assert lo == 0.0 and hi < 10
    _assert_same_pick(counts, edges)


@pytest.mark.slow
def test_same_ranges_on_captured_activation_histograms(tf, monkeypatch):
    """Histograms of a small calibrated model's activations, as the converter sees them."""
    import keras

    from benchmark.convert import to_tflite

    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 12, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inp)
    y = keras.layers.Conv2D(8, 3, padding="same", name="c2")(x)
    x = keras.layers.Add(name="add")([x, y])
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(6, name="fc")(x)
    model = keras.Model(inp, out)
    rep = np.random.default_rng(1).standard_t(3, size=(16, 12, 12, 3)).astype(np.float32)

    captured = {}
    collect = observers.collect_histograms

    def capture(*args, **kwargs):
        hists = collect(*args, **kwargs)
        captured.update(hists)
        return hists

    monkeypatch.setattr(observers, "collect_histograms", capture)
    to_tflite(tf, model, rep, "uint8", observer="mse", observer_report={})
    assert len(captured) >= 4
    for counts, edges in captured.values():
        assert counts.size == 2048
        _assert_same_pick(counts, edges)
        cand = mass_step_candidates(counts)
        _assert_errors_match(counts, edges, cand[:, 0], cand[:, 1])


def test_add_to_histogram_equals_np_histogram_with_the_edges():
    """collect_histograms' binning: the counts np.histogram gives for the same edges."""
    rng = np.random.default_rng(4)
    for lo, hi, bins in [(-3.0, 5.0, 2048), (0.0, 1e-6, 2048), (1000.0, 1000.001, 512),
                         (-2.5e-3, 7.1, 7), (0.0, 6.0, 2048)]:
        edges = np.linspace(lo, hi, bins + 1)
        v = rng.uniform(lo - (hi - lo) * 0.1, hi + (hi - lo) * 0.1, 50_000).astype(np.float32)
        # values exactly on edges (as float32 and as float64), and the ends
        on = edges[rng.integers(0, bins + 1, 2000)]
        v = np.concatenate([v, on.astype(np.float32), [lo, hi, np.inf, -np.inf]])
        for values in (v, np.concatenate([on, v.astype(np.float64)])):
            counts = np.zeros(bins, np.int64)
            add_to_histogram(counts, values, edges)
            expect, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
            np.testing.assert_array_equal(counts, expect)
    counts = np.zeros(4, np.int64)
    add_to_histogram(counts, np.array([np.nan, 0.5, np.nan]), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(counts, [0, 0, 1, 0])


def test_more_cells_than_bins():
    """bits=12 on 300 bins: every candidate is narrower than its cells."""
    rng = np.random.default_rng(9)
    counts, edges = _synthetic("student_t", rng, 300)
    s = rng.integers(0, 300, 200)
    e = rng.integers(0, 300, 200)
    _assert_errors_match(counts, edges, np.minimum(s, e), np.maximum(s, e), bits=12)
    _assert_same_pick(counts, edges, bits=12)


def test_quantization_error_of_a_pair_does_not_depend_on_its_batch():
    """The fast search re-scores near-ties in batches of their own; the exhaustive one
    scored them among 256 others. The values must be the same bits for the same picks."""
    rng = np.random.default_rng(12)
    counts, edges = _synthetic("laplace", rng, 2048)
    cand = mass_step_candidates(counts)[:256]
    batch = quantization_error(counts, edges, cand[:, 0], cand[:, 1])
    for k in rng.choice(len(cand), 12, replace=False):
        alone = quantization_error(counts, edges, cand[k, 0], cand[k, 1])
        pair = quantization_error(counts, edges, cand[[k, 0], 0], cand[[k, 0], 1])
        assert alone[0] == batch[k] == pair[0]
