"""From per-tensor statistics to rows, logit statistics and a verdict (pure numpy).

Mechanisms, in the order the verdict ranks them (an earlier one explains the
later ones' symptoms):

``input clipping``
    The input tensor's int8 range is narrower than the pixel range the
    preprocessing produces, and eval pixels hit its limits.
``calibration coverage``
    Tensors saturate on the eval images far more often than on the
    calibration images (ranges calibrated on too few / unrepresentative images).
``too-wide ranges``
    Tensors whose eval values use a small part of their int8 range, with a
    low signal-to-quantization-noise ratio (a few outliers widened the range).
``ties``
    The quantized top-1 is tied on the output grid for many samples and the
    new errors go mostly to a lower class index (argmax breaks ties to the
    lowest index).
"""

from __future__ import annotations

import math

import numpy as np

#: Eval saturation share (of a tensor's values) from which a tensor counts as saturated.
SAT_SHARE = 0.002
#: ... and how many times its calibration share that must be.
SAT_RATIO = 5.0
#: Input clipping: share of eval input values at the clipped limit(s).
INPUT_CLIP_SHARE = 0.001
#: Too-wide ranges: share of the int8 range the eval values span, and the SQNR (dB) below
#: which that costs accuracy.
WIDE_USE, WIDE_SQNR_DB = 1 / 16, 15.0
#: Ties: share of samples with a tied quantized top-1, share of new errors to a lower index.
TIE_SHARE, TIE_LOWER, TIE_MIN_ERRORS = 0.02, 0.6, 5
#: Accuracy drop (points) within which a model with no finding is called healthy.
HEALTHY_DROP = 1.0


def _db(signal: float, noise: float) -> float | None:
    if noise <= 0:
        return None if signal <= 0 else math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def _side(st) -> dict:
    """The per-image-set part of a row."""
    out = {"values": st.n, "at_limits": (st.at_low + st.at_high) / max(st.n, 1),
           "int8_min": st.qmin, "int8_max": st.qmax}
    if st.float_n:
        out.update(clipped=st.clipped / st.float_n, float_min=st.fmin, float_max=st.fmax)
    out["hist"] = st.hist.tolist()
    return out


def tensor_row(layer, ev, cal=None, fixed_range: bool = False) -> dict:
    """One tensor's row: int8 range, eval (and calibration) saturation, range use, errors.

    ``fixed_range``: the op fixes the tensor's range (SOFTMAX's [0, 1)), so it
    is not calibrated and its saturation says nothing about calibration.
    """
    row = {"tensor": layer.name, "index": layer.tensor.index, "op": layer.op,
           "fixed_range": bool(fixed_range),
           "scale": ev.scale, "zero_point": int(layer.tensor.zero_point[0]),
           "int8_range": [ev.lo, ev.hi], "eval": _side(ev)}
    if cal is not None:
        row["calibration"] = _side(cal)
    lo, hi = (ev.fmin, ev.fmax) if ev.float_n else (ev.qmin, ev.qmax)
    row["range_use"] = (min(hi, ev.hi) - max(lo, ev.lo)) / max(ev.hi - ev.lo, 1e-30)
    if ev.float_n:
        row["accumulated_rmse_scale"] = math.sqrt(ev.err_sq / ev.float_n) / ev.scale
        row["accumulated_sqnr_db"] = _db(ev.sig_sq, ev.err_sq)
    if ev.layer_mse:
        mse = float(np.mean(ev.layer_mse))
        row["layer_mse"] = mse
        row["layer_rmse_scale"] = math.sqrt(mse) / ev.scale
        row["layer_sqnr_db"] = _db(float(np.mean(ev.layer_sig)), mse)
    return row


def saturation(row: dict, side: str = "eval") -> float:
    """The saturation share of one side of a row: float values clipped, else int8 at limits."""
    s = row.get(side)
    if s is None:
        return 0.0
    return s["clipped"] if "clipped" in s else s["at_limits"]


def output_stats(raw: np.ndarray, labels: np.ndarray, float_pred: np.ndarray | None,
                 logits_row: dict | None) -> dict:
    """Logit statistics: ties in the quantized top-1, new errors and their direction.

    ``raw`` are the int8 model's integer outputs (N, K); ``float_pred`` the
    float model's top-1 (or None).
    """
    raw = np.asarray(raw).reshape(len(raw), -1)
    top = raw.max(axis=1, keepdims=True)
    ties = (raw == top).sum(axis=1) > 1
    pred = raw.argmax(axis=1)
    out = {"n": int(len(raw)), "int8_accuracy": float(np.mean(pred == labels)),
           "ties_in_top1": float(np.mean(ties)), "ties": int(ties.sum()),
           "output_at_max": float(np.mean(top[:, 0] == np.iinfo(raw.dtype).max))}
    if logits_row is not None:
        out["logits_clipped"] = saturation(logits_row)
    if float_pred is not None:
        new = (float_pred == labels) & (pred != labels)
        lower = new & (pred < float_pred)
        out.update(float_accuracy=float(np.mean(float_pred == labels)),
                   agreement=float(np.mean(pred == float_pred)),
                   new_errors=int(new.sum()), new_errors_lower=int(lower.sum()),
                   new_errors_lower_share=float(lower.sum() / new.sum()) if new.any() else None,
                   new_errors_tied=int((new & ties).sum()))
    return out


def clip_share(x: np.ndarray, int8_range, step: float) -> float:
    """Share of the values ``x`` outside ``int8_range`` by more than half a ``step``."""
    x = np.asarray(x)
    lo, hi = int8_range
    return float(np.mean((x > hi + step / 2) | (x < lo - step / 2))) if x.size else 0.0


def input_check(row: dict | None, pixel_range: tuple[float, float], x_eval: np.ndarray,
                x_cal: np.ndarray) -> dict | None:
    """Input clipping: the input tensor's int8 range against the preprocessing's pixel range.

    ``x_eval`` / ``x_cal``: the preprocessed eval and calibration inputs (the
    share outside the range is :func:`clip_share`).
    """
    if row is None:
        return None
    step = row["scale"]
    lo, hi = row["int8_range"]
    narrow = lo > pixel_range[0] + step or hi < pixel_range[1] - step
    return {"tensor": row["tensor"], "int8_range": [lo, hi],
            "pixel_range": [float(v) for v in pixel_range], "narrower": bool(narrow),
            "eval_clipped": clip_share(x_eval, (lo, hi), step),
            "calibration_clipped": clip_share(x_cal, (lo, hi), step) if len(x_cal) else None,
            "eval_mean": float(np.mean(x_eval)),
            "calibration_mean": float(np.mean(x_cal)) if len(x_cal) else None}


def _finding(mechanism: str, score: float, evidence: list[str], tensors=()) -> dict:
    return {"mechanism": mechanism, "score": float(score), "evidence": evidence,
            "tensors": list(tensors)}


def _coverage(rows: list[dict], skip: set) -> dict | None:
    hits = []
    for r in rows:
        ev, cal = saturation(r), saturation(r, "calibration")
        if r["tensor"] in skip or r.get("fixed_range") or ev < SAT_SHARE or ev < SAT_RATIO * cal:
            continue
        hits.append((ev, r["tensor"], cal))
    if not hits:
        return None
    hits.sort(reverse=True)
    ev = [f"{t}: {100 * e:.2f} % of eval values saturate vs {100 * c:.3f} % of calibration "
          "values" for e, t, c in hits[:5]]
    return _finding("calibration coverage", hits[0][0], ev, [t for _, t, _ in hits])


def _too_wide(rows: list[dict]) -> dict | None:
    hits = [r for r in rows if not r.get("fixed_range") and r["range_use"] < WIDE_USE and r.get(
        "accumulated_sqnr_db") is not None and r["accumulated_sqnr_db"] < WIDE_SQNR_DB]
    if not hits:
        return None
    ev = [f"{r['tensor']}: eval values span {100 * r['range_use']:.1f} % of the int8 range, "
          f"SQNR {r['accumulated_sqnr_db']:.1f} dB" for r in hits[:5]]
    return _finding("too-wide ranges", 1 - min(r["range_use"] for r in hits), ev,
                    [r["tensor"] for r in hits])


def _ties(out: dict) -> dict | None:
    share, lower = out["ties_in_top1"], out.get("new_errors_lower_share")
    if share < TIE_SHARE or not out.get("new_errors") or out["new_errors"] < TIE_MIN_ERRORS \
            or lower is None or lower < TIE_LOWER:
        return None
    return _finding("ties", share, [
        f"{100 * share:.1f} % of samples have a tied quantized top-1; {out['new_errors_lower']}"
        f" of {out['new_errors']} new errors go to a lower class index (argmax takes the "
        "lowest tied index)"])


def verdict(rows: list[dict], inp: dict | None, out: dict) -> dict:
    """Findings (most likely first) and a one-line summary."""
    findings = []
    if inp is not None and inp["narrower"] and inp["eval_clipped"] >= INPUT_CLIP_SHARE:
        lo, hi = inp["int8_range"]
        findings.append(_finding("input clipping", inp["eval_clipped"], [
            f"input {inp['tensor']}: int8 range [{lo:.4g}, {hi:.4g}] is narrower than the "
            f"pixel range [{inp['pixel_range'][0]:.4g}, {inp['pixel_range'][1]:.4g}]; "
            f"{100 * inp['eval_clipped']:.2f} % of eval input values clip"]
            + ([f"mean input value: calibration {inp['calibration_mean']:.3f}, eval "
                f"{inp['eval_mean']:.3f}"] if inp["calibration_mean"] is not None else []),
            [inp["tensor"]]))
    skip = {inp["tensor"]} if inp is not None else set()
    cover = _coverage(rows, skip)
    if cover is not None:
        # Clipped inputs saturate later tensors too: the larger share names the cause.
        findings.insert(0 if not findings or cover["score"] > findings[0]["score"] else 1,
                        cover)
    findings += [f for f in (_too_wide(rows), _ties(out)) if f]
    drop = None
    if "float_accuracy" in out:
        drop = 100 * (out["float_accuracy"] - out["int8_accuracy"])
    if findings:
        summary = f"most likely: {findings[0]['mechanism']} ({findings[0]['evidence'][0]})"
    elif drop is None or drop <= HEALTHY_DROP:
        summary = "healthy: no tensor saturates beyond calibration, input range covers the pixels"
    else:
        summary = f"unexplained: int8 loses {drop:.2f} points with no mechanism found"
    return {"healthy": not findings and (drop is None or drop <= HEALTHY_DROP),
            "mechanism": findings[0]["mechanism"] if findings else None,
            "accuracy_drop_points": drop, "summary": summary, "findings": findings}
