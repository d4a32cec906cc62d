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


# ---------------------------------------------------------------- per-class, top-k (issue #12)

from benchmark.metrics import (per_class_report, precision_recall_fscore_support,  # noqa: E402
                               recall_change, top_k_accuracy)

# true 0 0 0 1 1 2 3, predicted 0 1 0 1 1 1 0 (class 3 never predicted, class 2 never right)
YT = np.array([0, 0, 0, 1, 1, 2, 3])
YP = np.array([0, 1, 0, 1, 1, 1, 0])


def test_precision_recall_f1_support_by_hand():
    p, r, f, s = precision_recall_fscore_support(YT, YP)
    # class 0: tp 2, predicted 3, true 3; class 1: tp 2, predicted 4, true 2
    # class 2: tp 0, predicted 0, true 1; class 3: tp 0, predicted 0, true 1
    np.testing.assert_allclose(p, [2 / 3, 1 / 2, 0, 0])
    np.testing.assert_allclose(r, [2 / 3, 1, 0, 0])
    np.testing.assert_allclose(f, [4 / 6, 4 / 6, 0, 0])
    assert s.tolist() == [3, 2, 1, 1]
    mp, mr, mf, ms = precision_recall_fscore_support(YT, YP, average="macro")
    assert ms is None
    assert (mp, mr, mf) == pytest.approx((7 / 24, 5 / 12, 1 / 3))
    wp, wr, wf, _ = precision_recall_fscore_support(YT, YP, average="weighted")
    assert wp == pytest.approx((3 * 2 / 3 + 2 * 1 / 2) / 7)
    assert wr == pytest.approx((3 * 2 / 3 + 2 * 1) / 7)     # = accuracy
    assert wf == pytest.approx((3 * 4 / 6 + 2 * 4 / 6) / 7)
    up, ur, uf, _ = precision_recall_fscore_support(YT, YP, average="micro")
    assert up == ur == uf == pytest.approx(4 / 7)


def test_zero_division_as_scikit_learn():
    """precision of never-predicted classes 2 and 3 is 0/0; recall of class 9 (labels=) too."""
    p1, *_ = precision_recall_fscore_support(YT, YP, zero_division=1)
    assert p1.tolist()[2:] == [1.0, 1.0]
    pn, rn, fn, _ = precision_recall_fscore_support(YT, YP, labels=[0, 2, 9], zero_division=np.nan)
    assert np.isnan(pn[1]) and rn[1] == 0 and np.isnan(rn[2]) and np.isnan(fn[2])
    # nan is left out of the averages; 0 is not
    mp, *_ = precision_recall_fscore_support(YT, YP, average="macro", zero_division=np.nan)
    assert mp == pytest.approx((2 / 3 + 1 / 2) / 2)
    with pytest.raises(ValueError, match="zero_division"):
        precision_recall_fscore_support(YT, YP, zero_division=0.5)
    assert precision_recall_fscore_support([], [], average="weighted")[:3] == (0.0, 0.0, 0.0)


def test_per_class_report_covers_every_class_and_averages_present_ones():
    r = per_class_report(YT, YP, num_classes=6)
    assert r["support"] == [3, 2, 1, 1, 0, 0]
    assert r["recall"][4:] == [0.0, 0.0] and r["precision"][:2] == pytest.approx([2 / 3, 1 / 2])
    # the averages run over classes 0..3 (those in y_true or y_pred), not 4 and 5
    assert r["macro_avg"]["recall"] == pytest.approx(5 / 3 / 4)
    assert r["weighted_avg"]["recall"] == pytest.approx(4 / 7)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_matches_scikit_learn_when_installed():
    """Checked with scikit-learn 1.9.1 (not a dependency: skipped without it)."""
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed")
    rng = np.random.default_rng(3)
    t, p = rng.integers(0, 7, 200), rng.integers(0, 6, 200)
    for avg in (None, "macro", "weighted", "micro"):
        for zd in ("warn", 0.0, 1.0, np.nan):
            ours = precision_recall_fscore_support(t, p, average=avg, zero_division=zd)
            theirs = metrics.precision_recall_fscore_support(t, p, average=avg, zero_division=zd)
            for a, b in zip(ours, theirs):
                if a is None:
                    assert b is None
                else:
                    np.testing.assert_allclose(a, b)
    rep = per_class_report(t, p, num_classes=9)     # classes 7, 8 absent
    theirs = metrics.precision_recall_fscore_support(t, p, labels=range(9), zero_division=0.0)
    for key, ref in zip(("precision", "recall", "f1", "support"), theirs):
        np.testing.assert_allclose(rep[key], ref)
    assert rep["macro_avg"]["f1"] == pytest.approx(
        metrics.f1_score(t, p, average="macro", zero_division=0.0))
    probs = rng.random((200, 12))
    y = rng.integers(0, 12, 200)
    assert top_k_accuracy(y, probs, k=5) == pytest.approx(
        metrics.top_k_accuracy_score(y, probs, k=5, labels=range(12)))


def test_top_k_accuracy_by_hand_and_ties():
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25] * 4])
    assert top_k_accuracy([0, 0, 0], probs, k=1) == pytest.approx(1 / 3)
    assert top_k_accuracy([0, 1, 3], probs, k=2) == pytest.approx(2 / 3)
    # ties: the higher class id ranks first (scikit-learn's reversed stable sort)
    assert top_k_accuracy([3, 3, 0], probs[[2, 2, 2]], k=1) == pytest.approx(2 / 3)
    assert top_k_accuracy([0], probs[:1], k=4) == 1.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_accuracy([0], probs[:1], k=0)


def test_recall_change_by_hand():
    rc = recall_change(YT, YP, [0, 0, 0, 1, 0, 2, 3], num_classes=5)
    assert rc["n"] == [3, 2, 1, 1, 0]
    assert rc["reference"][:4] == pytest.approx([2 / 3, 1, 0, 0]) and rc["reference"][4] is None
    assert rc["quantized"][:4] == [1.0, 0.5, 1.0, 1.0] and rc["quantized"][4] is None
    assert rc["change"][:4] == pytest.approx([1 / 3, -0.5, 1, 1]) and rc["change"][4] is None
