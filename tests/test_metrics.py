"""Metric functions against values computed by hand."""

import math

import numpy as np
import pytest

from benchmark.metrics import (accuracy, agreement, certainty_histogram, classification_summary,
                               confusion_matrix, mean_normalized_entropy, normalized_entropy,
                               output_histogram, wilson_interval)

PROBS = np.array([
    [0.70, 0.20, 0.10],   # true 0, predicted 0, p_true 0.70
    [0.10, 0.80, 0.10],   # true 1, predicted 1, p_true 0.80
    [0.30, 0.30, 0.40],   # true 0, predicted 2, p_true 0.30
    [1.00, 0.00, 0.00],   # true 2, predicted 0, p_true 0.00
])
Y = np.array([0, 1, 0, 2])


def test_accuracy_and_agreement():
    assert accuracy(Y, PROBS.argmax(1)) == 0.5
    assert agreement([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError, match="differ in length"):
        accuracy([0, 1], [0])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y, PROBS.argmax(1), num_classes=3)
    expected = np.array([[1, 0, 1],
                         [0, 1, 0],
                         [1, 0, 0]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 4
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 0], num_classes=3)


def test_certainty_histogram_by_hand():
    counts, edges = certainty_histogram(PROBS, Y, bins=20)
    assert edges.shape == (21,)
    np.testing.assert_allclose(np.diff(edges), 0.05)
    expected = np.zeros(20, int)
    expected[[14, 16, 6, 0]] += 1    # 0.70 -> [0.70,0.75), 0.80 -> [0.80,0.85), 0.30, 0.00
    np.testing.assert_array_equal(counts, expected)


def test_output_histogram_counts_every_value_and_closes_last_bin():
    counts, _ = output_histogram(PROBS, bins=20)
    assert counts.sum() == PROBS.size
    assert counts[19] == 1            # the single 1.00 lands in the last, closed bin
    assert counts[0] == 2             # two exact zeros
    # 0.1 x3 (bin 2), 0.2 (bin 4), 0.3 x2 (bin 6), 0.4 (8), 0.7 (14), 0.8 (16)
    for b, n in {2: 3, 4: 1, 6: 2, 8: 1, 14: 1, 16: 1}.items():
        assert counts[b] == n, b


def test_normalized_entropy_by_hand():
    h = normalized_entropy(PROBS)
    row0 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    assert h[0] == pytest.approx(row0)
    # (0.24967 + 0.32189 + 0.23026) / 1.09861 = 0.72985
    assert h[0] == pytest.approx(0.72985, abs=1e-4)
    assert h[3] == 0.0                          # one-hot: 0 log 0 = 0
    assert normalized_entropy(np.full((1, 30), 1 / 30))[0] == pytest.approx(1.0)
    assert mean_normalized_entropy([[1.0, 0.0], [0.5, 0.5]]) == 0.5


def test_entropy_renormalizes_dequantized_rows():
    # int8 softmax outputs sum to ~1 only; [0.5, 0.5] scaled by 1.02 has entropy 1 still
    assert normalized_entropy([[0.51, 0.51]])[0] == pytest.approx(1.0)


def test_wilson_interval_by_hand():
    lo, hi = wilson_interval(8, 10)
    # p = .8, z = 1.959964: centre = (.8 + .19208)/1.38415 = .71674, half = .22653
    assert lo == pytest.approx(0.49016, abs=1e-4)
    assert hi == pytest.approx(0.94331, abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_summary_is_consistent_and_pure():
    before = PROBS.copy()
    s = classification_summary(PROBS, Y, bins=20)
    np.testing.assert_array_equal(PROBS, before)
    assert s["accuracy"] == 0.5 and s["n"] == 4 and s["n_correct"] == 2
    assert sum(s["certainty_histogram"]["counts"]) == 4
    assert sum(s["output_histogram"]["fractions"]) == pytest.approx(1.0)
    assert s["accuracy_interval"]["low"] < 0.5 < s["accuracy_interval"]["high"]


def test_decimal_edges_land_in_the_bin_they_open():
    counts, _ = output_histogram([[0.3, 0.35, 0.7, 0.05, 0.95, 1.0]], bins=20)
    assert [i for i, c in enumerate(counts) for _ in range(c)] == [1, 6, 7, 14, 19, 19]
    # dequantized uint8 softmax: k/256 never crosses into the wrong bin
    v = np.arange(256) / 256.0
    counts, _ = output_histogram(v[None, :], bins=20)
    np.testing.assert_array_equal(counts, np.bincount(np.floor(v * 20).astype(int),
                                                      minlength=20))


def test_chunked_equals_whole():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(30) * 0.3, size=1000)
    y = rng.integers(0, 30, 1000)
    whole = certainty_histogram(p, y)[0]
    parts = sum(certainty_histogram(p[i:i + 97], y[i:i + 97])[0] for i in range(0, 1000, 97))
    np.testing.assert_array_equal(whole, parts)
    h = normalized_entropy(p)
    np.testing.assert_allclose(h, np.concatenate([normalized_entropy(p[i:i + 97])
                                                  for i in range(0, 1000, 97)]))
