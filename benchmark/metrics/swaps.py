"""Swapped predictions of a quantized variant against its float reference (Xia et al.).

A prediction is *swapped* when the quantized model's top-1 class differs from
the float model's on the same sample. All functions are pure; the bootstrap
takes an explicit seed.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.metrics.classification import _as_float, _as_labels


def _check(ref_probs, q_probs, y_true):
    # only argmax, max and == of the outputs are used: exact on float32 as on float64
    a, b = _as_float(ref_probs), _as_float(q_probs)
    t = _as_labels(y_true, "y_true")
    if a.shape != b.shape or a.shape[0] != t.size:
        raise ValueError(f"shapes differ: reference {a.shape}, quantized {b.shape}, "
                         f"labels {t.shape}")
    return a, b, t


def swap_counts(ref_probs, q_probs, y_true) -> dict:
    """Counts of kept and swapped predictions, split by correctness.

    Returns
    -------
    dict
        ``n``, ``swapped``, ``right_to_wrong``, ``wrong_to_right``,
        ``wrong_to_wrong`` (swapped between two wrong classes),
        ``ref_errors``, ``q_errors``, ``q_ties`` (samples whose quantized top-1
        value occurs more than once: argmax then takes the lowest class index)
        and ``new_errors_lower`` (right→wrong swaps whose quantized class has a
        lower index than the reference's).

    Examples
    --------
    >>> ref = [[.9, .1, 0], [.2, .8, 0], [.6, .4, 0], [.5, .3, .2]]
    >>> q = [[.9, .1, 0], [.8, .2, 0], [.4, .6, 0], [.3, .3, .4]]
    >>> c = swap_counts(ref, q, [0, 1, 1, 1])
    >>> c["right_to_wrong"], c["new_errors_lower"], c["q_ties"]
    (1, 1, 0)
    """
    a, b, t = _check(ref_probs, q_probs, y_true)
    pa, pb = a.argmax(1), b.argmax(1)
    ra, rb = pa == t, pb == t
    sw = pa != pb
    ties = (b == b.max(axis=1, keepdims=True)).sum(axis=1) > 1 if b.size else np.zeros(0, bool)
    return {"n": int(t.size), "swapped": int(sw.sum()),
            "right_to_wrong": int(np.sum(ra & ~rb)), "wrong_to_right": int(np.sum(~ra & rb)),
            "wrong_to_wrong": int(np.sum(sw & ~ra & ~rb)),
            "ref_errors": int(np.sum(~ra)), "q_errors": int(np.sum(~rb)),
            "q_ties": int(ties.sum()), "new_errors_lower": int(np.sum(ra & ~rb & (pb < pa)))}


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs.

    ``b`` = right→wrong, ``c`` = wrong→right; under H0 both are equally
    likely, so ``min(b, c)`` is Binomial(b + c, 1/2).

    Examples
    --------
    >>> mcnemar_exact_p(0, 0)
    1.0
    >>> round(mcnemar_exact_p(8, 2), 6)   # 2 * P[X <= 2], X ~ Bin(10, .5) = 2 * 56/1024
    0.109375
    """
    if b < 0 or c < 0:
        raise ValueError("counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def bootstrap_accuracy_change(ref_probs, q_probs, y_true, *, n_boot: int = 2000,
                              confidence: float = 0.95, seed: int = 0) -> dict:
    """Percentile bootstrap interval of accuracy(quantized) - accuracy(reference).

    Samples are resampled jointly (paired), ``n_boot`` times with a seeded
    generator, so the result is deterministic.
    """
    a, b, t = _check(ref_probs, q_probs, y_true)
    d = (b.argmax(1) == t).astype(np.float64) - (a.argmax(1) == t)
    if t.size == 0:
        return {"delta": math.nan, "low": math.nan, "high": math.nan}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB007]))
    means = np.empty(n_boot)
    # Chunks of rows keep memory flat (about 2**21 draws, 32 MB, whatever n); the
    # draws and means are the same as in one go: the generator's stream is sequential.
    rows = max(1, min(256, (1 << 21) // t.size))
    for i in range(0, n_boot, rows):
        m = min(rows, n_boot - i)
        means[i:i + m] = d[rng.integers(0, t.size, (m, t.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return {"delta": float(d.mean()), "low": float(np.quantile(means, alpha)),
            "high": float(np.quantile(means, 1 - alpha)), "n_boot": n_boot,
            "confidence": confidence, "seed": seed}


def swapped_confidence_histogram(ref_probs, q_probs, *, bins: int = 10) -> dict:
    """Counts of swapped predictions over the *reference* model's confidence.

    Unnormalized counts, like the paper's Figure 2; ``all_counts`` gives the
    histogram of every sample for the swap rate per bin.
    """
    a, b = _as_float(ref_probs), _as_float(q_probs)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    conf = a.max(1).astype(np.float64)
    sw = a.argmax(1) != b.argmax(1)
    idx = np.minimum(np.floor(np.round(np.clip(conf, 0, 1) * bins, 9)).astype(np.int64),
                     bins - 1)
    return {"edges": np.linspace(0, 1, bins + 1).round(10).tolist(),
            "swapped_counts": np.bincount(idx[sw], minlength=bins).tolist(),
            "all_counts": np.bincount(idx, minlength=bins).tolist()}


def swap_summary(ref_probs, q_probs, y_true, *, bins: int = 10, n_boot: int = 2000,
                 seed: int = 0) -> dict:
    """Everything the paper reports for one quantized variant, JSON-ready.

    ``swapped_pct`` = 100 * swapped / n; ``delta_error_pct`` = 100 *
    (errors(quantized) - errors(reference)) / n; ``ratio`` = delta_error /
    swapped (NaN when nothing swapped): the share of swaps that turned into
    net new errors.

    Examples
    --------
    >>> ref = [[.9, .1], [.2, .8], [.6, .4], [.4, .6]]
    >>> q = [[.9, .1], [.8, .2], [.4, .6], [.4, .6]]
    >>> s = swap_summary(ref, q, [0, 1, 1, 0], n_boot=10)
    >>> s["swapped_pct"], s["delta_error_pct"], s["ratio"]
    (50.0, 0.0, 0.0)
    """
    c = swap_counts(ref_probs, q_probs, y_true)
    n = c["n"]
    swapped_pct = 100 * c["swapped"] / n if n else math.nan
    delta = 100 * (c["q_errors"] - c["ref_errors"]) / n if n else math.nan
    return {**c, "swapped_pct": swapped_pct, "delta_error_pct": delta,
            "ratio": delta / swapped_pct if c["swapped"] else math.nan,
            "mcnemar_p": mcnemar_exact_p(c["right_to_wrong"], c["wrong_to_right"]),
            "accuracy_change": bootstrap_accuracy_change(ref_probs, q_probs, y_true,
                                                         n_boot=n_boot, seed=seed),
            "swapped_by_confidence": swapped_confidence_histogram(ref_probs, q_probs,
                                                                  bins=bins)}
