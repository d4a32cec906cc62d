"""Rows and per-size summary of a calibration sweep, from a run's split records.

Shared by the report (:mod:`benchmark.report`) and ``python -m
benchmark.quant.calsweep``; reads only records (no TensorFlow, no runtime).
"""

from __future__ import annotations

import numpy as np

from benchmark.variants import sweep_variants


def calibration_sweep_rows(split: str, r: dict) -> list[dict]:
    """One row per calibration-sweep variant of a split record (size, seed, accuracy, change
    in points against float, swaps, McNemar p), by size then seed."""
    facc = r["variants"].get("float", {}).get("accuracy")
    rows = []
    for v, var in sweep_variants(r["variants"], "calibration"):
        m, sw = r["variants"][v], r.get("swaps", {}).get(v, {})
        rows.append({"split": split, "variant": v, "size": var.cal_size, "seed": var.cal_seed,
                     "calibration_from": var.cal_from or "", "accuracy": m["accuracy"],
                     "float_accuracy": facc,
                     "delta_points": None if facc is None else 100 * (m["accuracy"] - facc),
                     "swapped": sw.get("swapped"), "right_to_wrong": sw.get("right_to_wrong"),
                     "wrong_to_right": sw.get("wrong_to_right"),
                     "mcnemar_p": sw.get("mcnemar_p")})
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per (split, size): median and worst change in points over the seeds, median swaps."""
    out = []
    for split in dict.fromkeys(r["split"] for r in rows):
        for size in dict.fromkeys(r["size"] for r in rows if r["split"] == split):
            d = [r for r in rows if r["split"] == split and r["size"] == size]
            deltas = np.array([r["delta_points"] for r in d])
            out.append({"split": split, "size": size, "draws": len(d),
                        "float_accuracy": 100 * d[0]["float_accuracy"],
                        "median_delta": float(np.median(deltas)),
                        "worst_delta": float(deltas.min()),
                        "median_swapped": float(np.median([r["swapped"] for r in d])),
                        "significant": sum(r["mcnemar_p"] < 0.05 for r in d)})
    return out


def format_summary(summ: list[dict]) -> str:
    head = (f"{'split':<13} {'size':>5} {'draws':>5} {'float %':>8} {'median Δ':>9} "
            f"{'worst Δ':>8} {'med swaps':>9} {'p<0.05':>6}")
    lines = [head, "-" * len(head)]
    for s in summ:
        lines.append(f"{s['split']:<13} {s['size']:>5} {s['draws']:>5} "
                     f"{s['float_accuracy']:>8.2f} {s['median_delta']:>+9.2f} "
                     f"{s['worst_delta']:>+8.2f} {s['median_swapped']:>9.0f} "
                     f"{s['significant']:>6}")
    return "\n".join(lines)
