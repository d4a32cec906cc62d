"""The printed diagnosis: calibration set, input check, tensor table, outputs, verdict."""

from __future__ import annotations


def _pct(v, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}"


def _num(v, fmt: str = ".1f") -> str:
    return "–" if v is None else format(v, fmt)


def _calibration_lines(c: dict) -> list[str]:
    line = f"calibration: {c['size']} images (seed {c.get('seed')})"
    if c.get("calibration_from"):
        line += f" from {c['calibration_from']}"
    if "classes_covered" in c:
        line += (f"; {c['classes_covered']} of {c['num_classes']} classes, "
                 f"{c['groups_covered']} of {c['groups_total']} groups")
    if c.get("observer"):
        line += f"; observer {c['observer']}"
    return [line]


def _input_lines(i: dict | None) -> list[str]:
    if i is None:
        return ["input: no quantized input tensor found"]
    lo, hi = i["int8_range"]
    state = "NARROWER than" if i["narrower"] else "covers"
    return [f"input: int8 range [{lo:.4g}, {hi:.4g}] {state} the pixel range "
            f"[{i['pixel_range'][0]:.4g}, {i['pixel_range'][1]:.4g}]; clipped input values "
            f"{_pct(i['eval_clipped'])} % eval, {_pct(i['calibration_clipped'])} % calibration"]


def tensor_table(rows: list[dict], top: int = 12) -> list[str]:
    """The ``top`` tensors with the most eval saturation, in graph order."""
    from benchmark.diagnose.verdict import saturation

    chosen = sorted(rows, key=lambda r: -saturation(r))[:top]
    chosen = sorted(chosen, key=lambda r: r["index"])
    head = (f"{'tensor':<44} {'op':<16} {'sat eval %':>10} {'sat cal %':>9} {'use %':>6} "
            f"{'layer rmse/s':>12} {'layer dB':>8} {'acc rmse/s':>10} {'acc dB':>7}")
    lines = [head, "-" * len(head)]
    for r in chosen:
        name = r["tensor"] if len(r["tensor"]) <= 44 else "…" + r["tensor"][-43:]
        lines.append(
            f"{name:<44} {r['op']:<16} {_pct(saturation(r), 3):>10} "
            f"{_pct(saturation(r, 'calibration') if 'calibration' in r else None, 3):>9} "
            f"{_pct(r['range_use'], 1):>6} {_num(r.get('layer_rmse_scale'), '.3f'):>12} "
            f"{_num(r.get('layer_sqnr_db')):>8} {_num(r.get('accumulated_rmse_scale'), '.3f'):>10} "
            f"{_num(r.get('accumulated_sqnr_db')):>7}")
    return lines


def _output_lines(o: dict) -> list[str]:
    line = f"outputs ({o['n']} eval images): int8 accuracy {_pct(o['int8_accuracy'])} %"
    if "float_accuracy" in o:
        line += f", float {_pct(o['float_accuracy'])} %, agreement {_pct(o['agreement'])} %"
    lines = [line, f"  ties in the quantized top-1: {_pct(o['ties_in_top1'])} % "
                   f"({o['ties']}); top-1 at the output's max: {_pct(o['output_at_max'])} %"
             + (f"; logits clipped: {_pct(o['logits_clipped'], 3)} %"
                if "logits_clipped" in o else "")]
    if "new_errors" in o:
        lines.append(f"  new errors (float right, int8 wrong): {o['new_errors']}, "
                     f"{o['new_errors_lower']} to a lower class index, "
                     f"{o['new_errors_tied']} with a tied top-1")
    return lines


def format_report(result: dict, top: int = 12) -> str:
    """The text ``benchmark.diagnose`` prints."""
    v = result["verdict"]
    lines = [f"diagnose {result['int8_model']}  (float: {result['float_model'] or 'none'}; "
             f"{result['cpu_kernels']} kernels)"]
    lines += _calibration_lines(result["calibration"]) + _input_lines(result["input"])
    lines += [""] + tensor_table(result["tensors"], top) + [""] + _output_lines(result["outputs"])
    lines += ["", f"verdict: {v['summary']}"]
    for f in v["findings"]:
        lines.append(f"  {f['mechanism']}:")
        lines += [f"    {e}" for e in f["evidence"]]
    return "\n".join(lines)
