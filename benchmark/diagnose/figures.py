"""The diagnosis' figures, written beside ``diagnose.json``."""

from __future__ import annotations

from pathlib import Path

#: Tensors shown in the histogram grid (the most saturated ones).
HIST_TENSORS = 12


def write_figures(result: dict, out: Path) -> list[Path]:
    """``saturation.png``, ``histograms.png`` and ``layer_error.png`` of a diagnosis."""
    from benchmark import plots
    from benchmark.diagnose.verdict import saturation
    from benchmark.results import atomic_write_bytes

    rows = result["tensors"]
    names = [r["tensor"] for r in rows]
    top = sorted(rows, key=lambda r: -saturation(r))[:HIST_TENSORS]
    top = sorted(top, key=lambda r: r["index"])
    jobs = {
        "saturation.png": (plots.diagnose_saturation, {
            "names": names, "eval_pct": [100 * saturation(r) for r in rows],
            "calibration_pct": [100 * saturation(r, "calibration") for r in rows]}),
        "histograms.png": (plots.diagnose_histograms, {"hists": {
            r["tensor"]: (r["eval"]["hist"], r.get("calibration", {}).get("hist", []))
            for r in top}}),
        "layer_error.png": (plots.diagnose_layer_error, {
            "names": names, "layer_db": [r.get("layer_sqnr_db") for r in rows],
            "accumulated_db": [r.get("accumulated_sqnr_db") for r in rows]}),
    }
    written = []
    for name, (func, kwargs) in jobs.items():
        atomic_write_bytes(out / name, plots.render(func, kwargs))
        written.append(out / name)
    return written
