"""Calibration metrics (Guo et al. 2017; Xia et al.): reliability bins, ECE, MCE, Brier, NLL.

``probs`` is ``(n_samples, n_classes)``; confidence is the top-1 probability.
All functions are pure.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.metrics.classification import _as_float, _as_labels, _row_blocks


def _confidence_correct(probs, y_true) -> tuple[np.ndarray, np.ndarray]:
    p = _as_float(probs)
    t = _as_labels(y_true, "y_true")
    if p.shape[0] != t.size:
        raise ValueError(f"probs has {p.shape[0]} rows but y_true has {t.size} labels")
    # max and argmax are exact on float32 (float64 conversion is exact and keeps the order)
    return p.max(axis=1).astype(np.float64), (p.argmax(axis=1) == t)


def reliability_bins(probs, y_true, *, n_bins: int = 15, strategy: str = "uniform") -> dict:
    """Per-bin confidence, accuracy and count: the data of a reliability diagram.

    Parameters
    ----------
    probs : array-like, shape (n_samples, n_classes)
    y_true : array-like of int, shape (n_samples,)
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}
        ``uniform``: equal-width bins on [0, 1] (bin i is (i/n, (i+1)/n], the
        first also holds 0). ``quantile``: equal-mass bins (each holds
        ``n_samples / n_bins`` samples, up to rounding), sorted by confidence.

    Returns
    -------
    dict
        ``edges`` (n_bins + 1,), ``counts``, ``mean_confidence``, ``accuracy``
        (NaN for empty bins).

    Examples
    --------
    >>> r = reliability_bins([[0.9, 0.1], [0.6, 0.4]], [0, 1], n_bins=2)
    >>> r["counts"].tolist(), r["accuracy"].tolist()
    ([0, 2], [nan, 0.5])
    """
    conf, correct = _confidence_correct(probs, y_true)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        # right-closed bins (i/n, (i+1)/n] as in Guo et al.; 0 goes to the first bin
        idx = np.clip(np.ceil(np.round(conf * n_bins, 9)).astype(np.int64) - 1, 0, n_bins - 1)
    elif strategy == "quantile":
        order = np.argsort(conf, kind="stable")
        idx = np.empty(conf.size, np.int64)
        idx[order] = (np.arange(conf.size) * n_bins) // max(conf.size, 1)
        edges = np.array([0.0] + [float(conf[idx == b].max()) if np.any(idx == b) else np.nan
                                  for b in range(n_bins)])
        edges[-1] = 1.0
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
        acc = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins) / counts
    return {"edges": edges, "counts": counts.astype(np.int64),
            "mean_confidence": mean_conf, "accuracy": acc}


def _calibration_error(bins: dict, reduce: str) -> float:
    counts = bins["counts"]
    n = counts.sum()
    if n == 0:
        return float("nan")
    full = counts > 0
    gaps = np.abs(bins["accuracy"][full] - bins["mean_confidence"][full])
    if reduce == "max":
        return float(gaps.max())
    return float(np.sum(gaps * counts[full]) / n)


def expected_calibration_error(probs, y_true, *, n_bins: int = 15) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over equal-width bins.

    Examples
    --------
    Two samples at confidence 0.9 (one right) and 0.6 (wrong), 2 bins: both
    land in (0.5, 1], accuracy 0.5 vs mean confidence 0.75.

    >>> expected_calibration_error([[0.9, 0.1], [0.6, 0.4]], [0, 1], n_bins=2)
    0.25
    """
    return _calibration_error(reliability_bins(probs, y_true, n_bins=n_bins), "mean")


def maximum_calibration_error(probs, y_true, *, n_bins: int = 15) -> float:
    """MCE: the largest |accuracy - confidence| over non-empty equal-width bins."""
    return _calibration_error(reliability_bins(probs, y_true, n_bins=n_bins), "max")


def adaptive_calibration_error(probs, y_true, *, n_bins: int = 15) -> float:
    """Adaptive ECE: ECE over equal-mass (quantile) bins (Nixon et al. 2019)."""
    return _calibration_error(
        reliability_bins(probs, y_true, n_bins=n_bins, strategy="quantile"), "mean")


def brier_score(probs, y_true) -> float:
    """Multiclass Brier score: mean over samples of ``sum_k (p_k - onehot_k)^2``.

    Examples
    --------
    >>> brier_score([[1.0, 0.0], [0.5, 0.5]], [0, 1])
    0.25
    """
    p = _as_float(probs)
    t = _as_labels(y_true, "y_true")
    per_row = np.empty(t.size, np.float64)
    for s, b in _row_blocks(p):
        m = b.shape[0]
        onehot = np.zeros_like(b)
        onehot[np.arange(m), t[s:s + m]] = 1.0
        per_row[s:s + m] = np.sum((b - onehot) ** 2, axis=1)
    return float(np.mean(per_row)) if t.size else float("nan")


def negative_log_likelihood(probs, y_true, *, eps: float = 1e-12) -> float:
    """Mean ``-log p(true class)``, with p clipped to ``eps`` (int8 outputs can be 0).

    Examples
    --------
    >>> round(negative_log_likelihood([[0.5, 0.5], [0.25, 0.75]], [0, 1]), 6)
    0.490415
    """
    p = _as_float(probs)
    t = _as_labels(y_true, "y_true")
    pt = np.clip(p[np.arange(t.size), t].astype(np.float64), eps, None)
    return float(-np.mean(np.log(pt))) if t.size else float("nan")


def confidence_gap(probs, y_true) -> dict:
    """Mean confidence, accuracy and their difference (> 0: overconfident).

    Examples
    --------
    >>> confidence_gap([[0.9, 0.1], [0.6, 0.4]], [0, 1])
    {'mean_confidence': 0.75, 'accuracy': 0.5, 'gap': 0.25}
    """
    conf, correct = _confidence_correct(probs, y_true)
    if conf.size == 0:
        return {"mean_confidence": math.nan, "accuracy": math.nan, "gap": math.nan}
    mc, acc = float(conf.mean()), float(correct.mean())
    return {"mean_confidence": mc, "accuracy": acc, "gap": mc - acc}


def calibration_summary(probs, y_true, *, n_bins: int = 15) -> dict:
    """All calibration metrics of one variant, JSON-ready."""
    uni = reliability_bins(probs, y_true, n_bins=n_bins)

    def clean(a):
        return [None if not np.isfinite(v) else float(v) for v in a]

    return {
        "n_bins": n_bins,
        "ece": _calibration_error(uni, "mean"),
        "mce": _calibration_error(uni, "max"),
        "adaptive_ece": adaptive_calibration_error(probs, y_true, n_bins=n_bins),
        "brier": brier_score(probs, y_true),
        "nll": negative_log_likelihood(probs, y_true),
        **confidence_gap(probs, y_true),
        "reliability": {"edges": clean(uni["edges"]), "counts": uni["counts"].tolist(),
                        "mean_confidence": clean(uni["mean_confidence"]),
                        "accuracy": clean(uni["accuracy"])},
    }
