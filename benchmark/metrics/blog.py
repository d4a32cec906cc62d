"""The blog's own metric definitions, beside the harness's (pure numpy).

The blog this harness follows computed its entropy and certainty figures
slightly differently from :mod:`benchmark.metrics.classification`:

- **entropy** on the *raw* outputs: for each sample
  ``H_raw = sum_k -p_k log2 p_k`` over the K dequantized outputs *without*
  renormalizing them to sum to 1 (``0 log 0 = 0``), divided by ``log2 K``
  (:func:`raw_normalized_entropy`). The harness's
  :func:`~benchmark.metrics.classification.normalized_entropy` renormalizes
  each row first; on float outputs the two agree, on uint8 outputs (which sum
  to 1 only approximately, and can be all-zero or saturated) they differ.
- **certainty histogram** of the *correctly classified* samples' maximum
  probability, normalized by the number of correct samples
  (:func:`correct_certainty_histogram`); the harness's
  :func:`~benchmark.metrics.classification.certainty_histogram` is p(true
  class) over all samples.

``python -m benchmark.metrics.blog RUN_DIR...`` prints both entropies of
every ``predictions_<variant>.npz`` in the run directories (and their splits).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def _probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be (n_samples, n_classes >= 2), got shape {p.shape}")
    return p


def raw_normalized_entropy(probs) -> np.ndarray:
    """Per-sample ``sum_k -p_k log2 p_k / log2 K`` on the outputs as they are (no renormalizing).

    Negative outputs are taken as 0. Values can exceed 1 for rows summing to
    more than 1, and rows of all zeros have entropy 0.

    Parameters
    ----------
    probs : array-like, shape (n_samples, n_classes), n_classes >= 2

    Returns
    -------
    ndarray of float64, shape (n_samples,)

    Examples
    --------
    >>> raw_normalized_entropy([[1.0, 0.0], [0.5, 0.5], [0.25, 0.25]]).tolist()
    [0.0, 1.0, 1.0]
    >>> round(float(raw_normalized_entropy([[0.5, 0.0, 0.0, 0.0]])[0]), 6)   # 0.5 / 2
    0.25
    """
    p = np.clip(_probs(probs), 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=1) / np.log2(p.shape[1])


def mean_raw_normalized_entropy(probs) -> float:
    """Mean of :func:`raw_normalized_entropy` (the blog's "mean H / log K"); nan when empty.

    Examples
    --------
    >>> mean_raw_normalized_entropy([[1.0, 0.0], [0.5, 0.5]])
    0.5
    """
    h = raw_normalized_entropy(probs)
    return float(h.mean()) if h.size else float("nan")


def correct_certainty_histogram(probs, y_true, *, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of the max probability of the correctly classified samples (the blog's).

    Normalized by the number of correct samples (the bars sum to 1; all
    zeros when no sample is correct). Bins are equal-width on [0, 1], the
    last one closed.

    Returns
    -------
    (fractions, edges) : ndarray (bins,), ndarray (bins + 1,)

    Examples
    --------
    >>> f, e = correct_certainty_histogram([[.9, .1], [.4, .6], [.7, .3]], [0, 0, 1], bins=2)
    >>> f.tolist()   # only sample 0 is correct, its max probability is 0.9
    [0.0, 1.0]
    """
    p = _probs(probs)
    y = np.asarray(y_true, dtype=np.int64)
    if y.shape != (p.shape[0],):
        raise ValueError(f"y_true must have shape ({p.shape[0]},), got {y.shape}")
    correct = p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts, _ = np.histogram(np.clip(p[correct].max(axis=1), 0.0, 1.0), bins=edges)
    n = int(correct.sum())
    return (counts / n if n else counts.astype(np.float64)), edges


def run_entropies(run_dir: str | Path) -> list[dict]:
    """Both mean entropies of every ``predictions_<variant>.npz`` under ``run_dir``."""
    from benchmark.metrics.classification import mean_normalized_entropy

    rows = []
    for f in sorted(Path(run_dir).rglob("predictions_*.npz")):
        with np.load(f) as z:
            probs = z["probs"]
        split = f.parent.name if f.parent != Path(run_dir) else ""
        rows.append({"split": split, "variant": f.stem[len("predictions_"):], "n": len(probs),
                     "mean_raw_normalized_entropy": mean_raw_normalized_entropy(probs),
                     "mean_normalized_entropy": mean_normalized_entropy(probs)})
    return rows


def run_certainty(run_dir: str | Path, bins: int = 10) -> list[dict]:
    """The blog's certainty histogram of every ``predictions_<variant>.npz`` under ``run_dir``."""
    rows = []
    for f in sorted(Path(run_dir).rglob("predictions_*.npz")):
        with np.load(f) as z:
            frac, edges = correct_certainty_histogram(z["probs"], z["labels"], bins=bins)
        split = f.parent.name if f.parent != Path(run_dir) else ""
        rows.append({"split": split, "variant": f.stem[len("predictions_"):],
                     "fractions": frac.tolist(), "edges": edges.tolist()})
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m benchmark.metrics.blog [--certainty] RUN_DIR...  (both mean "
              "entropies of every predictions_*.npz: the blog's raw one and the renormalized "
              "one; --certainty: the blog's certainty histogram instead, 10 bins)")
        return 0 if argv else 2
    if argv[0] == "--certainty":
        print("split,variant," + ",".join(f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)))
        for d in argv[1:]:
            for r in run_certainty(d):
                cells = ",".join(f"{v:.4f}" for v in r["fractions"])
                print(f"{r['split']},{r['variant']},{cells}")
        return 0
    print("split,variant,n,mean_raw_normalized_entropy,mean_normalized_entropy")
    for d in argv:
        for r in run_entropies(d):
            print(f"{r['split']},{r['variant']},{r['n']},{r['mean_raw_normalized_entropy']:.6g},"
                  f"{r['mean_normalized_entropy']:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
