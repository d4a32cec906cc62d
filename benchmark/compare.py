"""The compare stage: float vs quantized (agreement, swaps) and CPU vs Edge TPU (attribution).

Takes the evaluate stage's :class:`~benchmark.evaluate.VariantResult` objects
of one split and returns the comparison records stored in results.json
(``agreement``, ``swaps``, ``attribution``); writes nothing.
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


def compare_predictions(a: Predictions, b: Predictions) -> dict:
    """Two variants on the same images: top-1 agreement and output differences."""
    diff = np.abs(a.probs.astype(np.float64) - b.probs)
    return {"top1": agreement(a.probs.argmax(1), b.probs.argmax(1)),
            "max_abs_prob_diff": float(diff.max()) if diff.size else float("nan"),
            "mean_abs_prob_diff": float(diff.mean()) if diff.size else float("nan")}


def attribution(preds: dict[str, Predictions]) -> dict:
    """float -> int8 on the CPU -> int8 on the Edge TPU: where does accuracy go?"""
    acc = {v: float(np.mean(p.probs.argmax(1) == p.labels)) for v, p in preds.items()}
    return {"accuracy": acc,
            "quantization_delta": acc["int8"] - acc["float"] if "float" in acc else None,
            "device_delta": acc[EDGETPU_NAME] - acc["int8"],
            "int8_cpu_vs_edgetpu": compare_predictions(preds["int8"], preds[EDGETPU_NAME])}


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
        out.attribution = attribution(preds)
    return out
