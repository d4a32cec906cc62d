"""Classification metrics of the blog benchmark.

All functions take numpy arrays and return numbers or arrays; they never read
or write files and never modify their inputs. ``probs`` is an ``(n_samples,
n_classes)`` array of class probabilities (rows sum to ~1), ``y_true`` and
``y_pred`` are integer class ids.
"""

from __future__ import annotations

import math

import numpy as np


def _as_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (n_samples, n_classes), got shape {p.shape}")
    return p


def _as_float(probs) -> np.ndarray:
    """``probs`` as a 2-D floating array without a copy (float32 stays float32).

    For what is exact on either dtype (max, argmax, comparisons: float32 ->
    float64 is exact and order-preserving), and for :func:`_row_blocks`.
    """
    p = np.asarray(probs)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (n_samples, n_classes), got shape {p.shape}")
    return p


#: Elements per block of :func:`_row_blocks` (float64: 1 MB).
BLOCK_ELEMENTS = 1 << 17


def _row_blocks(p: np.ndarray):
    """``(start, rows as float64)`` blocks of ``p``: row-wise work without an (n, K) copy.

    A row's result does not depend on the other rows in the block, so it is
    the same as on the whole float64 array.
    """
    step = max(1, BLOCK_ELEMENTS // max(p.shape[1], 1))
    for s in range(0, p.shape[0], step):
        yield s, np.asarray(p[s:s + step], np.float64)


def _as_labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def accuracy(y_true, y_pred) -> float:
    """Fraction of predictions equal to the true label.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_samples,)

    Returns
    -------
    float
        ``mean(y_true == y_pred)``; NaN for zero samples.

    Examples
    --------
    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size == 0:
        return float("nan")
    return float(np.mean(t == p))


def wilson_interval(n_correct: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Parameters
    ----------
    n_correct : int
        Number of successes.
    n : int
        Number of trials.
    confidence : float, default 0.95
        Two-sided coverage; 0.95 uses z = 1.959964.

    Returns
    -------
    (low, high) : tuple of float
        NaNs when ``n == 0``.

    Examples
    --------
    Eight of ten: p = 0.8, z = 1.96 gives (0.4902, 0.9433).

    >>> [round(x, 4) for x in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if n < 0 or n_correct < 0 or n_correct > n:
        raise ValueError(f"need 0 <= n_correct <= n, got n_correct={n_correct}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return (float("nan"), float("nan"))
    z = _normal_quantile(0.5 + confidence / 2)
    p = n_correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _normal_quantile(q: float) -> float:
    """Inverse standard normal CDF by bisection on erf (exact to ~1e-12)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def confusion_matrix(y_true, y_pred, *, num_classes: int) -> np.ndarray:
    """Count matrix ``C[i, j]`` = samples of true class i predicted as j.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_samples,)
    num_classes : int
        Size K of the square matrix; labels must lie in ``[0, K)``.

    Returns
    -------
    ndarray of int64, shape (K, K)

    Examples
    --------
    >>> confusion_matrix([0, 1, 1], [0, 0, 1], num_classes=2)
    array([[1, 0],
           [1, 1]])
    """
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    for name, y in (("y_true", t), ("y_pred", p)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes})")
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def _unit_edges(bins: int) -> np.ndarray:
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    return np.linspace(0.0, 1.0, bins + 1)


def _histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-width histogram on [0, 1]; bin i is [i/bins, (i+1)/bins), the last closed.

    Bin membership is decided on ``values * bins`` rounded to 9 decimals, so a
    value that is a bin edge in decimal (0.3, 0.7) lands in the bin it opens,
    even though ``np.linspace`` edges such as 0.30000000000000004 would put it
    one bin lower. Values are clipped to [0, 1] first (dequantized int8
    outputs can exceed 1 by one quantization step).
    """
    edges = _unit_edges(bins)
    v = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    idx = np.minimum(np.floor(np.round(v * bins, 9)).astype(np.int64), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    return counts.astype(np.int64), edges


def certainty_histogram(probs, y_true, *, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of the probability each sample gives its true class.

    Parameters
    ----------
    probs : array-like, shape (n_samples, n_classes)
    y_true : array-like of int, shape (n_samples,)
    bins : int, default 20
        Equal-width bins on [0, 1] (20 gives the blog's width 0.05); the last
        bin includes 1.0.

    Returns
    -------
    counts : ndarray of int64, shape (bins,)
    edges : ndarray of float64, shape (bins + 1,)

    Examples
    --------
    >>> c, e = certainty_histogram([[0.9, 0.1], [0.3, 0.7]], [0, 0], bins=2)
    >>> c.tolist(), e.tolist()
    ([1, 1], [0.0, 0.5, 1.0])
    """
    p = _as_float(probs)
    t = _as_labels(y_true, "y_true")
    if p.shape[0] != t.size:
        raise ValueError(f"probs has {p.shape[0]} rows but y_true has {t.size} labels")
    return _histogram(p[np.arange(t.size), t], bins)


def output_histogram(probs, *, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of every output value (all samples, all classes).

    Parameters
    ----------
    probs : array-like, shape (n_samples, n_classes)
    bins : int, default 20

    Returns
    -------
    counts : ndarray of int64, shape (bins,)
        Sums to ``n_samples * n_classes``.
    edges : ndarray of float64, shape (bins + 1,)

    Examples
    --------
    >>> output_histogram([[1.0, 0.0], [0.5, 0.5]], bins=4)[0].tolist()
    [1, 0, 2, 1]
    """
    p = _as_float(probs).ravel()
    edges = _unit_edges(bins)
    counts = np.zeros(bins, np.int64)
    for s in range(0, p.size, BLOCK_ELEMENTS):   # integer counts: exact in any blocks
        counts += _histogram(p[s:s + BLOCK_ELEMENTS], bins)[0]
    return counts, edges


def normalized_entropy(probs) -> np.ndarray:
    """Shannon entropy of each row divided by ``log K``, in [0, 1].

    ``0 * log 0`` is taken as 0, so a one-hot row has entropy 0 and the
    uniform row has entropy 1. Rows are renormalized to sum to 1 first
    (dequantized int8 outputs sum to 1 only approximately).

    Parameters
    ----------
    probs : array-like, shape (n_samples, n_classes), n_classes >= 2

    Returns
    -------
    ndarray of float64, shape (n_samples,)

    Examples
    --------
    >>> normalized_entropy([[1.0, 0.0], [0.5, 0.5]]).tolist()
    [0.0, 1.0]
    """
    p = _as_float(probs)
    k = p.shape[1]
    if k < 2:
        raise ValueError("normalized entropy needs at least 2 classes")
    h = np.empty(p.shape[0], np.float64)
    for start, b in _row_blocks(p):
        b = np.clip(b, 0.0, None)
        s = b.sum(axis=1, keepdims=True)
        if np.any(s <= 0):
            raise ValueError("a row of probs sums to 0")
        b = b / s
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(b > 0, -b * np.log(b), 0.0)
        h[start:start + b.shape[0]] = terms.sum(axis=1)
    return h / math.log(k)


def mean_normalized_entropy(probs) -> float:
    """Mean of :func:`normalized_entropy` over samples (the blog's H / log K).

    Examples
    --------
    >>> mean_normalized_entropy([[1.0, 0.0], [0.5, 0.5]])
    0.5
    """
    h = normalized_entropy(probs)
    return float(h.mean()) if h.size else float("nan")


def agreement(pred_a, pred_b) -> float:
    """Fraction of samples on which two models predict the same class.

    Examples
    --------
    >>> agreement([0, 1, 2, 3], [0, 1, 2, 0])
    0.75
    """
    return accuracy(pred_a, pred_b)


def _hist_dict(counts: np.ndarray, edges: np.ndarray) -> dict:
    total = int(counts.sum())
    return {"edges": [round(float(e), 10) for e in edges],
            "counts": [int(c) for c in counts],
            "fractions": [float(c) / total if total else float("nan") for c in counts]}


def classification_summary(probs, y_true, *, bins: int = 20, confidence: float = 0.95) -> dict:
    """All scalar and histogram metrics of one variant, JSON-ready.

    Parameters
    ----------
    probs : array-like, shape (n_samples, n_classes)
    y_true : array-like of int, shape (n_samples,)
    bins : int, default 20
    confidence : float, default 0.95
        Coverage of the Wilson interval on accuracy.

    Returns
    -------
    dict
        ``accuracy``, ``n``, ``n_correct``, ``accuracy_interval`` (Wilson),
        ``mean_normalized_entropy``, ``certainty_histogram`` and
        ``output_histogram`` (each ``{edges, counts, fractions}``).
    """
    p = _as_float(probs)
    t = _as_labels(y_true, "y_true")
    pred = p.argmax(axis=1)
    n_correct = int(np.sum(pred == t))
    lo, hi = wilson_interval(n_correct, int(t.size), confidence=confidence)
    return {
        "accuracy": accuracy(t, pred),
        "n": int(t.size),
        "n_correct": n_correct,
        "accuracy_interval": {"low": lo, "high": hi, "confidence": confidence,
                              "method": "wilson"},
        "mean_normalized_entropy": mean_normalized_entropy(p),
        "certainty_histogram": _hist_dict(*certainty_histogram(p, t, bins=bins)),
        "output_histogram": _hist_dict(*output_histogram(p, bins=bins)),
    }


def _zero_division_value(zero_division) -> float:
    """The value of an undefined ratio: ``"warn"`` and 0 give 0.0 (scikit-learn's rule)."""
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise ValueError(f"zero_division must be 'warn', 0, 1 or nan, got {zero_division!r}")
        return 0.0
    z = float(zero_division)
    if not (z in (0.0, 1.0) or math.isnan(z)):
        raise ValueError(f"zero_division must be 'warn', 0, 1 or nan, got {zero_division!r}")
    return z


def _divide(num: np.ndarray, den: np.ndarray, zero: float) -> np.ndarray:
    out = np.full(num.shape, zero, np.float64)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _nanaverage(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted mean ignoring NaNs (scikit-learn's ``_nanaverage``); NaN when nothing is left."""
    ok = ~np.isnan(values)
    if not ok.any():
        return float("nan")
    w = None if weights is None else weights[ok]
    if w is not None and w.sum() == 0:
        return float("nan")
    return float(np.average(values[ok], weights=w))


def _label_list(t: np.ndarray, p: np.ndarray, labels) -> np.ndarray:
    if labels is None:
        return np.unique(np.concatenate([t, p]))
    return np.asarray(labels, np.int64).reshape(-1)


def _class_counts(t: np.ndarray, p: np.ndarray, lab: np.ndarray):
    """Per label: true positives, true count, predicted count (int64 arrays)."""
    lab = np.asarray(lab, np.int64)
    if not all(a.size == 0 or a.min() >= 0 for a in (t, p, lab)):
        hit = t == p
        return tuple(np.array([np.sum(m) for m in masks], np.int64)
                     for masks in ([hit & (t == c) for c in lab], [t == c for c in lab],
                                   [p == c for c in lab]))
    k = 1 + max([int(a.max()) for a in (t, p, lab) if a.size] or [0])
    counts = (np.bincount(t[t == p], minlength=k), np.bincount(t, minlength=k),
              np.bincount(p, minlength=k))
    return tuple(c[lab].astype(np.int64) for c in counts)


def precision_recall_fscore_support(y_true, y_pred, *, labels=None, average=None,
                                    zero_division="warn"):
    """Precision, recall, F1 and support per class or averaged, as scikit-learn defines them.

    The same numbers as ``sklearn.metrics.precision_recall_fscore_support(y_true,
    y_pred, labels=labels, average=average, zero_division=zero_division)``
    (beta = 1) for integer class ids, without a scikit-learn dependency.
    For class c: ``tp`` predictions of c that are right, ``precision = tp /
    predicted c``, ``recall = tp / true c``, ``F1 = 2 tp / (true c +
    predicted c)``; a ratio whose denominator is 0 is ``zero_division``.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_samples,)
    labels : array-like of int, optional
        The classes to report, in this order; default the sorted classes
        that occur in ``y_true`` or ``y_pred``. The averages run over them.
    average : {None, "macro", "weighted", "micro"}, default None
        None: per-class arrays. ``macro``: unweighted mean over ``labels``;
        ``weighted``: mean weighted by support; ``micro``: from the summed
        counts. With ``zero_division=nan`` undefined values are left out of
        the averages.
    zero_division : {"warn", 0, 1, nan}, default "warn"
        Value of an undefined ratio; ``"warn"`` acts as 0 (no warning is
        printed here).

    Returns
    -------
    precision, recall, f1 : ndarray of float64 (average None) or float
    support : ndarray of int64 (average None) or None

    Examples
    --------
    >>> p, r, f, s = precision_recall_fscore_support([0, 0, 1, 2], [0, 1, 1, 1])
    >>> p.tolist(), r.tolist(), f.round(4).tolist(), s.tolist()
    ([1.0, 0.3333333333333333, 0.0], [0.5, 1.0, 0.0], [0.6667, 0.5, 0.0], [2, 1, 1])
    >>> [round(x, 4) for x in precision_recall_fscore_support(
    ...     [0, 0, 1, 2], [0, 1, 1, 1], average="macro")[:3]]
    [0.4444, 0.5, 0.3889]
    """
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if average not in (None, "macro", "weighted", "micro"):
        raise ValueError(f"average must be None, 'macro', 'weighted' or 'micro', got {average!r}")
    zero = _zero_division_value(zero_division)
    tp, true_sum, pred_sum = _class_counts(t, p, _label_list(t, p, labels))
    if average == "micro":
        tp, true_sum, pred_sum = (np.array([a.sum()]) for a in (tp, true_sum, pred_sum))
    if average == "weighted" and true_sum.sum() == 0:
        z = 1.0 if zero == 1.0 or math.isnan(zero) else 0.0
        return (z, z, z, None) if pred_sum.sum() == 0 else (0.0, z, 0.0, None)
    precision = _divide(tp.astype(np.float64), pred_sum, zero)
    recall = _divide(tp.astype(np.float64), true_sum, zero)
    f1 = _divide(2.0 * tp, true_sum + pred_sum, zero)
    if average is None:
        return precision, recall, f1, true_sum
    w = true_sum.astype(np.float64) if average == "weighted" else None
    return (_nanaverage(precision, w), _nanaverage(recall, w), _nanaverage(f1, w), None)


def top_k_accuracy(y_true, probs, *, k: int = 5) -> float:
    """Fraction of samples whose true class is among the ``k`` highest outputs.

    As ``sklearn.metrics.top_k_accuracy_score(y_true, probs, k=k,
    labels=range(n_classes))``: classes are ranked by a stable sort of the
    outputs, reversed, so among equal outputs (frequent in int8 models) the
    higher class id ranks first. ``k >= n_classes`` gives 1.

    Examples
    --------
    >>> top_k_accuracy([0, 1, 2], [[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.6, 0.3, 0.1]], k=2)
    0.6666666666666666
    """
    p = _as_float(probs)
    t = _as_labels(y_true, "y_true")
    if p.shape[0] != t.size:
        raise ValueError(f"probs has {p.shape[0]} rows but y_true has {t.size} labels")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if t.size == 0:
        return float("nan")
    if k >= p.shape[1]:
        return 1.0
    hit = np.empty(t.size, bool)
    for s, b in _row_blocks(p):
        top = np.argsort(b, axis=1, kind="mergesort")[:, ::-1][:, :k]
        hit[s:s + b.shape[0]] = np.any(top == t[s:s + b.shape[0], None], axis=1)
    return float(np.mean(hit))


def per_class_report(y_true, y_pred, *, num_classes: int, zero_division=0.0) -> dict:
    """Per-class precision, recall, F1 and support, and their macro and weighted averages.

    Per class (all ``num_classes``, in class order): scikit-learn's
    ``precision_recall_fscore_support(y_true, y_pred,
    labels=range(num_classes), zero_division=zero_division)``; a class with
    no images and no predictions gets ``zero_division`` and support 0. The
    averages are scikit-learn's ``average="macro"`` / ``"weighted"`` over the
    classes that occur in ``y_true`` or ``y_pred`` (its default ``labels``),
    so a class absent from the evaluated images does not pull them down.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (lists of float), ``support``
        (list of int), ``macro_avg`` and ``weighted_avg`` (each
        ``{precision, recall, f1}``), ``zero_division``.

    Examples
    --------
    >>> r = per_class_report([0, 0, 1], [0, 1, 1], num_classes=3)
    >>> r["recall"], r["support"], r["macro_avg"]["recall"]
    ([0.5, 1.0, 0.0], [2, 1, 0], 0.75)
    """
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=range(num_classes), zero_division=zero_division)
    out = {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(),
           "support": [int(x) for x in s]}
    for avg in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, average=avg,
                                                        zero_division=zero_division)
        out[f"{avg}_avg"] = {"precision": ap, "recall": ar, "f1": af}
    out["zero_division"] = float(zero_division)
    return out


def recall_change(y_true, pred_ref, pred_q, *, num_classes: int) -> dict:
    """Per-class recall of a reference and a quantized model and its change, with n.

    Parameters
    ----------
    y_true, pred_ref, pred_q : array-like of int, shape (n_samples,)
    num_classes : int

    Returns
    -------
    dict
        ``n`` (images per class), ``reference``, ``quantized`` and ``change``
        (quantized - reference; None for a class with no images), lists in
        class order.

    Examples
    --------
    >>> recall_change([0, 0, 1], [0, 0, 1], [0, 1, 1], num_classes=3)["change"]
    [-0.5, 0.0, None]
    """
    t = _as_labels(y_true, "y_true")
    n = np.bincount(t, minlength=num_classes)[:num_classes]
    out = {"n": [int(x) for x in n]}
    for key, pred in (("reference", pred_ref), ("quantized", pred_q)):
        p = _as_labels(pred, key)
        if p.shape != t.shape:
            raise ValueError(f"{key} predictions and y_true differ in length: {p.size} vs {t.size}")
        hits = np.bincount(t[p == t], minlength=num_classes)[:num_classes]
        out[key] = [float(h / c) if c else None for h, c in zip(hits, n)]
    pairs = zip(out["reference"], out["quantized"])
    out["change"] = [None if a is None else b - a for a, b in pairs]
    return out
