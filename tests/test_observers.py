"""Activation observers: range choice from histograms, and converted models using them."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import config
from benchmark.errors import UsageError
from benchmark.quant import observers
from benchmark.quant.observers import (choose_range, mse_bins, percentile_range,
                                       quantization_error)


def _hist(values, bins=2048):
    counts, edges = np.histogram(values, bins=bins, range=(values.min(), values.max()))
    return counts, edges


def test_observer_names_come_from_the_registry():
    assert config.observer_names() == observers.OBSERVER_REGISTRY.names() \
        == ["minmax", "mse", "percentile"]
    with pytest.raises(UsageError, match="unknown activation observer 'median'"):
        choose_range("median", np.ones(2), np.array([0.0, 1.0, 2.0]))


def test_minmax_keeps_the_range_and_adds_zero():
    counts, edges = np.ones(4), np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert choose_range("minmax", counts, edges) == (0.0, 5.0)
    assert choose_range("minmax", counts, -edges[::-1]) == (-5.0, 0.0)
    with pytest.raises(UsageError, match="unknown activation observer 'kl'"):
        choose_range("kl", counts, edges)


def test_percentile_by_hand():
    # 1000 equal bins on [0, 10]: the 99.99 % quantile is 9.999, the 0.01 % one 0.001
    lo, hi = percentile_range(np.ones(1000), np.linspace(0, 10, 1001), percentile=99.99)
    assert lo == 0.0 and hi == pytest.approx(9.999)
    lo, hi = percentile_range(np.ones(1000), np.linspace(-5, 5, 1001), percentile=99.0)
    assert (lo, hi) == (pytest.approx(-4.9), pytest.approx(4.9))


def test_quantization_error_by_hand():
    edges = np.linspace(0.0, 4.0, 5)  # 4 bins of width 1
    counts = np.array([1.0, 0.0, 0.0, 1.0])
    # whole range, 2 bits = 4 cells of width 1: each value uniform in its cell, 1/12
    assert quantization_error(counts, edges, 0, 3, bits=2)[0] == pytest.approx(1 / 12)
    # range [0, 2] with 2 bits = cells of 0.5: bin 0 -> (1/48) each half... = 0.5**2/12;
    # bin 3 ([3, 4]) goes to the last cell centre 1.75: integral of (x-1.75)^2 over [3, 4]
    clipped = (0.5 ** 2 / 12 + ((4 - 1.75) ** 3 - (3 - 1.75) ** 3) / 3) / 2
    assert quantization_error(counts, edges, 0, 1, bits=2)[0] == pytest.approx(clipped)
    # vectorized over candidates
    np.testing.assert_allclose(quantization_error(counts, edges, [0, 0], [3, 1], bits=2),
                               [1 / 12, clipped])


def test_mse_matches_a_brute_force_search():
    """The search path finds (nearly) the best of all (start, end) bin pairs."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.laplace(size=50_000), [25.0]])
    counts, edges = np.histogram(values, bins=256)
    s, e = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    ok = s <= e
    err = np.concatenate([quantization_error(counts, edges, a, b) for a, b in
                          zip(np.array_split(s[ok], 64), np.array_split(e[ok], 64))])
    found = quantization_error(counts, edges, *mse_bins(counts, edges))[0]
    assert found <= err.min() * 1.01


@pytest.mark.slow
def test_converted_model_uses_the_observer(tf):
    """mse/percentile ranges reach the int8 model; it stays a clean full-int8 graph."""
    import keras

    from benchmark.convert import check_int8_graph, to_tflite
    from benchmark.tflite_graph import read_graph

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(5, name="fc")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    # Heavy-tailed inputs: a few large values stretch every min-max range.
    rep = rng.standard_t(2, size=(64, 8, 8, 3)).astype(np.float32)

    scales = {}
    for obs in ("minmax", "percentile", "mse"):
        report = {}
        blob = to_tflite(tf, model, rep, "uint8", observer=obs, observer_report=report)
        g = read_graph(blob)
        assert check_int8_graph(g) == []
        relu = next(t for t in g.tensors if "Relu" in t.name)
        scales[obs] = float(relu.scale[0])
        if obs == "minmax":
            assert report == {}
            continue
        name = next(k for k in report if "Relu" in k)
        lo, hi = report[name][obs]
        mm_lo, mm_hi = report[name]["minmax"]
        # Independently: the Keras model's ReLU outputs, binned the same way.
        acts = keras.Model(inp, model.get_layer("c1").output).predict(rep, verbose=0).ravel()
        assert mm_hi == pytest.approx(acts.max(), rel=1e-4)
        counts, edges = np.histogram(acts, bins=2048, range=(acts.min(), acts.max()))
        expect = choose_range(obs, counts, edges)
        assert (lo, hi) == (pytest.approx(expect[0], abs=1e-6), pytest.approx(expect[1], rel=1e-2))
        assert lo == 0.0 and hi < mm_hi
        # The quantizer took the chosen range: scale = (hi - lo) / 255 (up to nudging).
        assert scales[obs] == pytest.approx((hi - lo) / 255, rel=0.02)
    assert max(scales["mse"], scales["percentile"]) < scales["minmax"]
