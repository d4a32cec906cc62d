"""Calibration and swap metrics: hand-computed values and properties."""

import math

import numpy as np
import pytest

from benchmark.metrics.calibration import (adaptive_calibration_error, brier_score,
                                           calibration_summary, confidence_gap,
                                           expected_calibration_error,
                                           maximum_calibration_error, negative_log_likelihood,
                                           reliability_bins)
from benchmark.metrics.swaps import (bootstrap_accuracy_change, mcnemar_exact_p, swap_counts,
                                     swap_summary, swapped_confidence_histogram)


def _calibrated(n=200_000, k=10, seed=0):
    """Samples whose top-1 is right with probability equal to its confidence."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(1 / k + 0.01, 1.0, n)
    pred = rng.integers(0, k, n)
    probs = np.empty((n, k))
    probs[:] = ((1 - conf) / (k - 1))[:, None]
    probs[np.arange(n), pred] = conf
    right = rng.random(n) < conf
    other = (pred + rng.integers(1, k, n)) % k
    y = np.where(right, pred, other)
    return probs, y


def test_hand_computed_ece_mce():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.55, 0.45]])
    y = np.array([0, 1, 0, 0])
    # 2 bins: all four confidences are in (0.5, 1]: mean conf .7125, accuracy .75
    assert expected_calibration_error(probs, y, n_bins=2) == pytest.approx(0.0375)
    # 10 bins: .55 -> bin 5 (acc 1), .6 -> bin 5 ((.5,.6]: right-closed), .8 -> bin 7, .9 -> bin 8
    r = reliability_bins(probs, y, n_bins=10)
    assert r["counts"].tolist() == [0, 0, 0, 0, 0, 2, 0, 1, 1, 0]
    assert r["accuracy"][5] == 0.5 and r["mean_confidence"][5] == pytest.approx(0.575)
    # gaps: bin5 |.5-.575|=.075 (x2), bin7 |1-.8|=.2, bin8 |1-.9|=.1 -> ECE (.15+.2+.1)/4
    assert expected_calibration_error(probs, y, n_bins=10) == pytest.approx(0.1125)
    assert maximum_calibration_error(probs, y, n_bins=10) == pytest.approx(0.2)


def test_perfectly_calibrated_set_has_ece_near_zero():
    probs, y = _calibrated()
    assert expected_calibration_error(probs, y) < 0.005
    assert adaptive_calibration_error(probs, y) < 0.005
    assert abs(confidence_gap(probs, y)["gap"]) < 0.005


def test_overconfident_set_has_positive_gap():
    probs, y = _calibrated()
    sharp = probs ** 3
    sharp /= sharp.sum(1, keepdims=True)
    assert confidence_gap(sharp, y)["gap"] > 0.05
    assert expected_calibration_error(sharp, y) > 0.05


def test_quantile_bins_hold_equal_mass():
    probs, y = _calibrated(n=1500)
    r = reliability_bins(probs, y, n_bins=15, strategy="quantile")
    assert r["counts"].tolist() == [100] * 15
    assert np.all(np.diff(r["mean_confidence"]) > 0)


def test_brier_and_nll_by_hand():
    assert brier_score([[1.0, 0.0], [0.5, 0.5]], [0, 1]) == 0.25
    assert negative_log_likelihood([[0.5, 0.5], [0.25, 0.75]], [0, 1]) == pytest.approx(
        (math.log(2) + math.log(4 / 3)) / 2)
    assert math.isfinite(negative_log_likelihood([[1.0, 0.0]], [1]))   # clipped, not inf


def test_calibration_summary_is_json_ready():
    import json
    s = calibration_summary(*_calibrated(n=500), n_bins=15)
    json.dumps(s, allow_nan=False)
    assert len(s["reliability"]["counts"]) == 15


REF = np.array([[.9, .1, 0], [.2, .8, 0], [.6, .4, 0], [.5, .3, .2], [.1, .2, .7]])
Q = np.array([[.9, .1, 0], [.8, .2, 0], [.4, .6, 0], [.3, .3, .4], [.1, .2, .7]])
Y = np.array([0, 1, 1, 1, 2])


def test_swap_counts_by_hand():
    # ref preds 0,1,0,0,2 ; q preds 0,0,1,2,2 ; truth 0,1,1,1,2
    c = swap_counts(REF, Q, Y)
    assert c == {"n": 5, "swapped": 3, "right_to_wrong": 1, "wrong_to_right": 1,
                 "wrong_to_wrong": 1, "ref_errors": 2, "q_errors": 2,
                 "q_ties": 0,               # Q's .3/.3 are not its row's max
                 "new_errors_lower": 1}     # row 1: right 1 -> wrong 0
    s = swap_summary(REF, Q, Y, n_boot=50)
    assert s["swapped_pct"] == 60.0 and s["delta_error_pct"] == 0.0 and s["ratio"] == 0.0
    assert s["mcnemar_p"] == 1.0


def test_ties_in_the_quantized_top1_and_new_errors_to_a_lower_index():
    ref = np.array([[.1, .8, .1], [.1, .1, .8], [.8, .1, .1], [.1, .8, .1]])
    q = np.array([[.5, .5, 0], [0, .5, .5], [.2, .2, .6], [.2, .2, .6]])   # two ties
    c = swap_counts(ref, q, [1, 2, 0, 1])
    # ties break to the lowest index: rows 0, 1 become 0 and 1 (lower); rows 2, 3 go to 2
    assert c["q_ties"] == 2 and c["right_to_wrong"] == 4 and c["new_errors_lower"] == 2


def test_swapped_histogram_uses_reference_confidence():
    h = swapped_confidence_histogram(REF, Q, bins=10)
    # swapped samples have reference confidences .8, .6, .5 -> bins 8, 6, 5
    assert h["swapped_counts"] == [0, 0, 0, 0, 0, 1, 1, 0, 1, 0]
    assert sum(h["all_counts"]) == 5


def test_mcnemar_exact():
    assert mcnemar_exact_p(8, 2) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_exact_p(5, 5) == 1.0
    assert mcnemar_exact_p(10, 0) == pytest.approx(2 / 1024)


def test_bootstrap_is_seeded_and_brackets_the_change():
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(5), 400)
    q = ref + rng.normal(0, 0.05, ref.shape)
    y = rng.integers(0, 5, 400)
    a = bootstrap_accuracy_change(ref, q, y, n_boot=500, seed=3)
    b = bootstrap_accuracy_change(ref, q, y, n_boot=500, seed=3)
    assert a == b
    assert a["low"] <= a["delta"] <= a["high"]


def test_chunked_counts_equal_whole():
    rng = np.random.default_rng(1)
    ref = rng.dirichlet(np.ones(7), 1000)
    q = ref + rng.normal(0, 0.1, ref.shape)
    y = rng.integers(0, 7, 1000)
    whole = swap_counts(ref, q, y)
    parts = [swap_counts(ref[i:i + 130], q[i:i + 130], y[i:i + 130]) for i in range(0, 1000, 130)]
    assert whole == {k: sum(p[k] for p in parts) for k in whole}
    wb = reliability_bins(ref, y)["counts"]
    pb = sum(reliability_bins(ref[i:i + 130], y[i:i + 130])["counts"] for i in range(0, 1000, 130))
    np.testing.assert_array_equal(wb, pb)
