"""The compare stage: float vs quantized (agreement, swaps) and CPU vs Edge TPU (attribution).

Takes the evaluate stage's :class:`~benchmark.evaluate.VariantResult` objects
of one split and returns the comparison records stored in results.json
(``agreement``, ``swaps``, ``attribution``); writes nothing.

CPU int8 vs Edge TPU int8 is not expected to be identical: the Edge TPU's
integer kernels round differently (Coral's MoveNet Lightning reference
outputs, Edge TPU vs CPU on one image, differ by up to 5 quantization steps in
the keypoint coordinates and only 8 of 34 agree exactly, see
tests/test_attribution.py). The attribution
therefore reports the per-output difference in quantization steps (LSB) --
histogram, max, mean, share within :data:`LSB_TOLERANCE` -- next to top-1
agreement and the accuracy change with its exact McNemar test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.evaluate import Predictions, VariantResult
from benchmark.metrics import agreement
from benchmark.metrics.swaps import swap_summary
from benchmark.variants import EDGETPU_NAME

#: Float-confidence bins and bootstrap draws of the swap statistics.
SWAP_BINS = 10
N_BOOT = 1000
#: Outputs within this many quantization steps of the CPU's count as agreeing.
LSB_TOLERANCE = 1
#: Largest distance (in steps) from the integer grid for outputs to count as quantized.
GRID_TOLERANCE = 0.05


def infer_step(values) -> float:
    """The step of the grid ``values`` lie on (``k * step + offset``), by least squares.

    For outputs whose quantization scale is not known (e.g. reference outputs
    saved as text): the smallest gap between distinct values gives each value's
    ``k``, then ``step`` is fitted over all of them, which removes the rounding
    of the printed digits.

    Examples
    --------
    >>> round(infer_step([0.1, 0.35, 0.6, 1.1]), 6)
    0.25
    """
    u = np.unique(np.asarray(values, np.float64).ravel())
    if u.size < 2:
        raise ValueError("need at least two distinct values")
    k = np.rint((u - u[0]) / np.diff(u).min())
    step, _ = np.linalg.lstsq(np.stack([k, np.ones_like(k)], 1), u, rcond=None)[0]
    return float(step)


def lsb_difference(reference, other, *, scale: float, tolerance: int = LSB_TOLERANCE) -> dict:
    """Per-output difference of two quantized outputs in quantization steps (LSB).

    Parameters
    ----------
    reference, other : array-like
        Dequantized outputs of the same tensor on the same inputs (same shape),
        e.g. the CPU int8 and the Edge TPU int8 model.
    scale : float
        The output tensor's quantization scale (one step).
    tolerance : int
        Steps within which an output counts as agreeing.

    Returns
    -------
    dict
        ``n_outputs``; ``histogram``: ``{"lsb": [...], "counts": [...]}`` of the
        signed difference ``other - reference`` in steps, every value from the
        smallest to the largest; ``max_lsb`` and ``mean_lsb`` of its absolute
        value; ``exact`` and ``within_tolerance`` (shares of outputs);
        ``tolerance``; ``scale``.

    Raises
    ------
    ValueError
        When the shapes differ, ``scale <= 0``, or the difference is not a
        whole number of steps (the outputs are not on the tensor's grid, e.g.
        a softmax applied after dequantization).

    Examples
    --------
    >>> r = lsb_difference([[0.5, 0.25, 0.25]], [[0.5, 0.5, 0.0]], scale=0.25)
    >>> r["histogram"], r["max_lsb"], r["mean_lsb"], r["exact"], r["within_tolerance"]
    ({'lsb': [-1, 0, 1], 'counts': [1, 1, 1]}, 1, 0.6666666666666666, 0.3333333333333333, 1.0)
    """
    a, b = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    steps = (b - a) / scale
    d = np.rint(steps).astype(np.int64).ravel()
    off = float(np.abs(steps.ravel() - d).max()) if d.size else 0.0
    if off > GRID_TOLERANCE:
        raise ValueError(f"the outputs are not on a grid of step {scale:g} (a difference is "
                         f"{off:.2f} steps from a whole number)")
    lo, hi = (int(d.min()), int(d.max())) if d.size else (0, 0)
    counts = np.bincount(d - lo, minlength=hi - lo + 1)
    mag = np.abs(d)
    return {"n_outputs": int(d.size),
            "histogram": {"lsb": list(range(lo, hi + 1)), "counts": counts.tolist()},
            "max_lsb": int(mag.max()) if d.size else 0,
            "mean_lsb": float(mag.mean()) if d.size else float("nan"),
            "exact": float(np.mean(mag == 0)) if d.size else float("nan"),
            "within_tolerance": float(np.mean(mag <= tolerance)) if d.size else float("nan"),
            "tolerance": int(tolerance), "scale": float(scale)}


def compare_predictions(a: Predictions, b: Predictions) -> dict:
    """Two variants on the same images: top-1 agreement and output differences."""
    diff = a.probs.astype(np.float64)        # one (n, K) float64 array, worked in place
    np.subtract(diff, b.probs, out=diff)
    np.abs(diff, out=diff)
    return {"top1": agreement(a.probs.argmax(1), b.probs.argmax(1)),
            "max_abs_prob_diff": float(diff.max()) if diff.size else float("nan"),
            "mean_abs_prob_diff": float(diff.mean()) if diff.size else float("nan")}


def _lsb_record(cpu: Predictions, tpu: Predictions, quant: dict | None) -> dict:
    """``lsb`` (the :func:`lsb_difference` record) or ``lsb: None`` and ``lsb_note`` (why)."""
    scale = (quant or {}).get("scale") or 0.0
    if not scale:
        return {"lsb": None, "lsb_note": "the Edge TPU runtime did not report the output "
                "tensor's quantization"}
    try:
        return {"lsb": lsb_difference(cpu.probs, tpu.probs, scale=scale)}
    except ValueError as e:
        return {"lsb": None, "lsb_note": f"{e}; a logits model's softmax is applied after "
                "dequantization"}


def attribution(preds: dict[str, Predictions], *, output_quantization: dict | None = None,
                seed: int = 0) -> dict:
    """float -> int8 on the CPU -> int8 on the Edge TPU: where does accuracy go?

    ``int8_cpu_vs_edgetpu`` holds top-1 agreement, the probability differences
    and the per-output difference in quantization steps (``lsb``, see
    :func:`lsb_difference`; None with ``lsb_note`` when the outputs are not on
    the output tensor's grid); ``device_change`` the swap counts of the Edge
    TPU against the CPU int8 model with the exact McNemar p-value and the
    bootstrap interval of the accuracy change
    (:func:`benchmark.metrics.swaps.swap_summary`).
    """
    acc = {v: float(np.mean(p.probs.argmax(1) == p.labels)) for v, p in preds.items()}
    cpu, tpu = preds["int8"], preds[EDGETPU_NAME]
    versus = dict(compare_predictions(cpu, tpu), **_lsb_record(cpu, tpu, output_quantization))
    change = swap_summary(cpu.probs, tpu.probs, tpu.labels, bins=SWAP_BINS, n_boot=N_BOOT,
                          seed=seed)
    return {"accuracy": acc,
            "quantization_delta": acc["int8"] - acc["float"] if "float" in acc else None,
            "device_delta": acc[EDGETPU_NAME] - acc["int8"],
            "int8_cpu_vs_edgetpu": versus,
            "device_change": {k: change[k] for k in (
                "n", "swapped", "right_to_wrong", "wrong_to_right", "mcnemar_p",
                "accuracy_change")}}


@dataclass
class Comparison:
    """The comparison records of one split (each absent when its variants are)."""

    agreement: dict | None = None
    swaps: dict = field(default_factory=dict)
    attribution: dict | None = None

    def record(self) -> dict:
        out = {}
        if self.agreement is not None:
            out["agreement"] = self.agreement
        if self.swaps:
            out["swaps"] = self.swaps
        if self.attribution is not None:
            out["attribution"] = self.attribution
        return out


def compare_variants(results: dict[str, VariantResult], *, seed: int = 0) -> Comparison:
    """Every quantized variant against float; the Edge TPU against the int8 CPU model.

    ``agreement`` is float vs the first quantized variant (the int8 model);
    ``swaps[v]`` holds the paper's swap statistics of each quantized ``v``
    against float, with its top-1 ``agreement_with_float``.
    """
    preds = {v: r.predictions for v, r in results.items()}
    quantized = [v for v, r in results.items() if r.variant.quantized]
    out = Comparison()
    if "float" in preds and quantized:
        ref = preds["float"]
        out.agreement = compare_predictions(ref, preds[quantized[0]])
        out.swaps = {"reference": "float"}
        for v in quantized:
            sw = {"agreement_with_float": agreement(ref.probs.argmax(1),
                                                    preds[v].probs.argmax(1))}
            sw.update(swap_summary(ref.probs, preds[v].probs, preds[v].labels,
                                   bins=SWAP_BINS, n_boot=N_BOOT, seed=seed))
            out.swaps[v] = sw
    if "int8" in preds and EDGETPU_NAME in preds:
        out.attribution = attribution(
            preds, seed=seed,
            output_quantization=results[EDGETPU_NAME].runtime.get("output_quantization"))
    return out
