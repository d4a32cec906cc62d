"""Reports of saved runs: text tables (stdout), one-file HTML and Markdown.

``python -m benchmark.report RUN_DIR [RUN_DIR ...] [--out report.html]``
builds everything from the run files alone (results.json, confusion CSVs,
predictions npz), so a report can be rebuilt without re-running inference.

Figures: each split's figures are :class:`Section` s of :class:`FigureJob` s
(a module-level function of :mod:`benchmark.plots` and the plain data it
draws). Confusion matrices are heatmaps drawn with Pillow, one cell per class
pair up to 100 classes, with the class names in HTML; beyond that, a table of
the largest off-diagonal confusions and an overview of at most 100 x 100
blocks. The PNG of each job is stored in ``<run>/.figures/<key>.png``, the key
hashing the function, its data, :data:`benchmark.plots.RENDER_VERSION` and the
library versions, so a rebuilt report draws nothing that has not changed.
``benchmark.run`` also passes the cache shared across runs
(:mod:`benchmark.figcache`, ``<cache>/figures``): a new run whose data was
drawn before (the same command again) reads its figures from there.
What is not cached is drawn in worker processes (:func:`figure_workers`).
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import html
import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tabulate import tabulate

from benchmark.variants import EDGETPU_NAME, sweep_variants


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def accuracy_table(results: dict, fmt: str = "simple") -> str:
    """Rows = variants, columns = splits: accuracy with its 95 % interval."""
    splits = list(results)
    variants = list(dict.fromkeys(v for r in results.values() for v in r["variants"]))
    rows = []
    for v in variants:
        row = [v]
        for s in splits:
            m = results[s]["variants"].get(v)
            if m is None:
                row.append("")
                continue
            ci = m["accuracy_interval"]
            row.append(f"{_pct(m['accuracy'])} [{100 * ci['low']:.2f}, {100 * ci['high']:.2f}]"
                       f" n={m['n']}")
        rows.append(row)
    return tabulate(rows, headers=["accuracy (95 % CI)", *splits],
                    tablefmt=fmt)


def entropy_table(results: dict, fmt: str = "simple") -> str:
    splits = list(results)
    variants = list(dict.fromkeys(v for r in results.values() for v in r["variants"]))
    rows = [[v, *(f"{results[s]['variants'][v]['mean_normalized_entropy']:.4f}"
                  if v in results[s]["variants"] else "" for s in splits)] for v in variants]
    if any("agreement" in r for r in results.values()):
        # the agreement is float vs the first quantized variant (int8 unless --variants float)
        first = {next((v for v in r["variants"] if v != "float"), "int8")
                 for r in results.values() if "agreement" in r}
        name = first.pop() if len(first) == 1 else "int8"
        rows.append([f"float = {name} (top-1)",
                     *(_pct(results[s]["agreement"]["top1"]) if "agreement" in results[s]
                       else "" for s in splits)])
    return tabulate(rows, headers=["mean H / log K", *splits],
                    tablefmt=fmt)


def calibration_table(results: dict, fmt: str = "simple") -> str:
    """Rows = split/variant: ECE, MCE, NLL, Brier, mean confidence - accuracy."""
    rows = []
    for s, r in results.items():
        for v, m in r["variants"].items():
            c = m.get("calibration")
            if c:
                rows.append([f"{s}/{v}", f"{100 * c['ece']:.2f} %", f"{100 * c['mce']:.2f} %",
                             f"{c['nll']:.4f}", f"{c['brier']:.4f}", f"{100 * c['gap']:+.2f} %"])
    return tabulate(rows, headers=["calibration", "ECE (15 bins)", "MCE", "NLL", "Brier",
                                   "conf - acc"], disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def _tie_cells(sw: dict) -> list[str]:
    """Ties in the quantized top-1 and new errors (R->W) to a lower class index than the
    reference's (``argmax`` takes the lowest tied index); empty for an older record."""
    if "q_ties" not in sw:
        return ["", ""]
    return [str(sw["q_ties"]), f"{sw['new_errors_lower']}/{sw['right_to_wrong']}"]


def swap_table(results: dict, fmt: str = "simple") -> str:
    """The paper's swap statistics of each quantized variant against float, per split."""
    rows = []
    for s, r in results.items():
        for v, sw in r.get("swaps", {}).items():
            if v == "reference":
                continue
            ratio = "n/a" if sw["ratio"] != sw["ratio"] else f"{sw['ratio']:.3f}"
            ci = sw["accuracy_change"]
            rows.append([f"{s}/{v}", f"{sw['swapped_pct']:.2f} %",
                         f"{sw['delta_error_pct']:+.2f} %", ratio,
                         f"{sw['right_to_wrong']}/{sw['wrong_to_right']}/{sw['wrong_to_wrong']}",
                         f"{sw['mcnemar_p']:.3g}",
                         f"[{100 * ci['low']:+.2f}, {100 * ci['high']:+.2f}] %",
                         *_tie_cells(sw)])
    return tabulate(rows, headers=["vs float", "swapped", "delta error", "ratio",
                                   "R->W/W->R/W->W", "McNemar p", "delta acc 95 % CI",
                                   "q top-1 ties", "new err lower"],
                    disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def sweep_table(results: dict, fmt: str = "simple", kind: str = "weights") -> str:
    """Weight-bit sweep (variants ``w<b>``; ``kind="activations"``: the activation-bit sweep,
    ``a<b>``): accuracy and swap statistics against float."""
    rows = []
    for s, r in results.items():
        for v, var in sweep_variants(r["variants"], kind):
            m, sw = r["variants"][v], r.get("swaps", {}).get(v, {})
            ratio = sw.get("ratio", float("nan"))
            bits = var.weight_bits if kind == "weights" else var.act_bits
            rows.append([s, str(bits), _pct(m["accuracy"]),
                         f"{sw.get('swapped_pct', 0):.2f} %",
                         f"{sw.get('delta_error_pct', 0):+.2f} %",
                         "n/a" if ratio != ratio else f"{ratio:.3f}",
                         f"{100 * m['calibration']['ece']:.2f} %"])
    what = "weight" if kind == "weights" else "activation"
    return tabulate(rows, headers=[f"{what}-bit sweep", "bits", "accuracy", "swapped",
                                   "delta error", "ratio", "ECE"],
                    disable_numparse=True, stralign="right", tablefmt=fmt)


def calibration_summary(results: dict) -> list[dict]:
    """Per split and calibration size: draws, median and worst change against float."""
    from benchmark.quant.sweeprows import calibration_sweep_rows, summary
    rows = [x for s, r in results.items() for x in calibration_sweep_rows(s, r)]
    return summary([x for x in rows if x["delta_points"] is not None])


def calibration_sweep_table(results: dict, fmt: str = "simple") -> str:
    """Calibration sweep (variants ``cal<n>-s<seed>``): per split and size, the median and the
    worst accuracy change over the draws, median swaps, draws with McNemar p < 0.05."""
    rows = [[x["split"], str(x["size"]), str(x["draws"]), f"{x['float_accuracy']:.2f} %",
             f"{x['median_delta']:+.2f}", f"{x['worst_delta']:+.2f}",
             f"{x['median_swapped']:.0f}", str(x["significant"])]
            for x in calibration_summary(results)]
    return tabulate(rows, headers=["calibration sweep", "images", "draws", "float",
                                   "median delta (points)", "worst delta", "median swapped",
                                   "p < 0.05"],
                    disable_numparse=True, stralign="right", tablefmt=fmt)


def latency_table(results: dict, fmt: str = "simple") -> str:
    """Per split/variant latency statistics (only variants that measured it)."""
    rows = []
    for s, r in results.items():
        for v, m in r["variants"].items():
            lat = m.get("latency")
            if lat:
                rows.append([f"{s}/{v}", m["device"], f"{lat['mean_ms']:.3f}",
                             f"{lat['std_ms']:.3f}", f"{lat['p50_ms']:.3f}",
                             f"{lat['p90_ms']:.3f}", f"{lat['p99_ms']:.3f}",
                             f"{lat['throughput_per_s']:.0f}", f"{lat['first_invoke_ms']:.3f}",
                             m.get("model_bytes", "")])
    return tabulate(rows, headers=["latency (ms)", "device", "mean", "std", "p50", "p90", "p99",
                                   "per s", "first", "bytes"],
                    disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def _attribution_row(split: str, a: dict) -> list[str]:
    """One split's attribution record as table cells ('' where the record lacks a field)."""
    acc, same = a["accuracy"], a["int8_cpu_vs_edgetpu"]
    lsb, change = same.get("lsb"), a.get("device_change") or {}
    p = change.get("mcnemar_p")
    return [split, _pct(acc["float"]) if "float" in acc else "", _pct(acc["int8"]),
            _pct(acc[EDGETPU_NAME]), _pct(same["top1"]),
            str(lsb["max_lsb"]) if lsb else "",
            f"{_pct(lsb['within_tolerance'])} (±{lsb['tolerance']})" if lsb else "",
            f"{p:.3g}" if p is not None else "",
            f"{same['max_abs_prob_diff']:.4f}"]


def attribution_table(results: dict, fmt: str = "simple") -> str:
    """float -> int8 (CPU) -> int8 (Edge TPU), per split.

    Next to the accuracies: top-1 agreement of the CPU and the Edge TPU int8
    model, the largest output difference in quantization steps (``max LSB``),
    the share of outputs within the tolerance (``±1`` LSB by default), the
    exact McNemar p of the Edge TPU's accuracy change against the CPU int8
    model, and the largest probability difference (results.json's
    ``attribution`` record, :func:`benchmark.compare.attribution`). The LSB
    cells are empty when the outputs were not on the output tensor's grid
    (``lsb_note``) or the run predates the LSB record.
    """
    rows = [_attribution_row(s, r["attribution"]) for s, r in results.items()
            if r.get("attribution")]
    return tabulate(rows, headers=["attribution", "float", "int8 CPU", "int8 Edge TPU",
                                   "same top-1 CPU/TPU", "max LSB", "within LSB tol.",
                                   "McNemar p", "max prob. diff"],
                    disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def histogram_table(results: dict, key: str, fmt: str = "simple") -> str:
    """Bins as rows; count and fraction per split and variant as columns."""
    headers, columns, edges = ["bin"], [], None
    for s, r in results.items():
        for v, m in r["variants"].items():
            h = m[key]
            edges = h["edges"]
            headers += [f"{s}/{v} n", "%"]
            columns.append(h)
    rows = []
    for i in range(len(edges) - 1):
        row = [f"{edges[i]:.2f}-{edges[i + 1]:.2f}"]
        for h in columns:
            row += [h["counts"][i], f"{100 * h['fractions'][i]:.2f}"]
        rows.append(row)
    return tabulate(rows, headers=headers, disable_numparse=True, stralign="right",
                    tablefmt=fmt)


def _acc_n(part: dict | None) -> str:
    if not part or not part["n"]:
        return ""
    return f"{_pct(part['accuracy'])} n={part['n']}"


def class_summary_table(results: dict, fmt: str = "simple") -> str:
    """Rows = split/variant: top-5, macro and weighted F1, seen / unseen accuracy, NLL zeros."""
    rows = []
    for s, r in results.items():
        for v, m in r["variants"].items():
            pc, seen = m.get("per_class"), m.get("training_seen") or {}
            if not pc:
                continue
            cal = m.get("calibration") or {}
            top5 = m.get("top5_accuracy")
            zeros = cal.get("nll_zero_true")
            rows.append([f"{s}/{v}", "" if top5 is None else _pct(top5),
                         _pct(pc["macro_avg"]["precision"]), _pct(pc["macro_avg"]["recall"]),
                         _pct(pc["macro_avg"]["f1"]), _pct(pc["weighted_avg"]["f1"]),
                         _acc_n(seen.get("seen")), _acc_n(seen.get("unseen")),
                         "" if zeros is None else f"{zeros} (floor {cal['nll_floor']:.3g})"])
    return tabulate(rows, headers=["per-class summary", "top-5", "macro P", "macro R",
                                   "macro F1", "weighted F1", "seen in training",
                                   "never in training", "NLL: p(true) = 0"],
                    disable_numparse=True, stralign="right", tablefmt=fmt)


#: On stdout, per-class tables of more classes show only the largest recall changes.
STDOUT_CLASSES = 43
STDOUT_WORST = 15


def _class_variants(r: dict) -> list[str]:
    shown = [v for v in ("float", "int8", EDGETPU_NAME)
             if v in r["variants"] and r["variants"][v].get("per_class")]
    return shown or [v for v, m in r["variants"].items() if m.get("per_class")][:2]


def per_class_table(r: dict, fmt: str = "simple", limit: int | None = None) -> tuple[str, str]:
    """One split's per-class precision / recall / F1 of float, int8 (and the Edge TPU), the
    support, and the float -> int8 recall change; ``(note, table)``.

    With ``limit`` and more classes than that, only the :data:`STDOUT_WORST` classes whose
    recall changed most (then the lowest recall) are listed; the note says so.
    """
    names = [str(n) for n in r["class_names"]]
    variants = _class_variants(r)
    pcs = [r["variants"][v]["per_class"] for v in variants]
    change = (r.get("recall_change") or {}).get("int8", {}).get("change")
    order = list(range(len(names)))
    note = ""
    if limit is not None and len(names) > limit:
        # classes without images (a model's classes the data lacks) have nothing to show
        order = [i for i in order if pcs[0]["support"][i]] or order
        key = (lambda i: (-abs(change[i] or 0), pcs[0]["recall"][i])) if change else \
            (lambda i: pcs[0]["recall"][i])
        order = sorted(order, key=key)[:STDOUT_WORST]
        what = ("the largest float -> int8 recall changes" if change else
                f"the lowest {variants[0]} recall")
        note = (f" ({len(order)} of {len(names)} classes: {what}; every class is in "
                "metrics.csv and the report)")
    rows = []
    for i in order:
        row = [names[i], pcs[0]["support"][i]]
        for pc in pcs:
            row += [f"{pc['precision'][i]:.3f}", f"{pc['recall'][i]:.3f}", f"{pc['f1'][i]:.3f}"]
        if change:
            row.append("" if change[i] is None else f"{100 * change[i]:+.1f} %")
        rows.append(row)
    for avg in ("macro_avg", "weighted_avg"):
        row = [avg.replace("_avg", " avg"), sum(pcs[0]["support"])]
        for pc in pcs:
            row += [f"{pc[avg][k]:.3f}" for k in ("precision", "recall", "f1")]
        rows.append(row + ([""] if change else []))
    heads = ["class", "n"] + [f"{v} {k}" for v in variants for k in ("P", "R", "F1")]
    heads += ["recall int8 - float"] if change else []
    return note, tabulate(rows, headers=heads, disable_numparse=True, stralign="right",
                          tablefmt=fmt)


def per_class_tables(results: dict, fmt: str, limit: int | None = None) -> list[tuple[str, str]]:
    """(title, table) of each split that has per-class metrics."""
    out = []
    for s, r in results.items():
        if _class_variants(r):
            note, table = per_class_table(r, fmt, limit)
            out.append((f"Per class: {s}{note}", table))
    return out


def print_tables(results: dict, file=None) -> None:
    """Print all blog-style tables for ``{split: split_result}``."""
    for _, table in _tables(results, "simple"):
        print(table, file=file)
        print(file=file)
    for title, table in per_class_tables(results, "simple", limit=STDOUT_CLASSES):
        print(title, file=file)
        print(table, file=file)
        print(file=file)
    print("Certainty histogram (probability given to the true class)", file=file)
    print(histogram_table(results, "certainty_histogram"), file=file)
    print(file=file)
    print("Histogram of all output values", file=file)
    print(histogram_table(results, "output_histogram"), file=file)


def _tables(results: dict, fmt: str) -> list[tuple[str, str]]:
    """(title, table) of every summary table the results have data for."""
    variants = [(v, m) for r in results.values() for v, m in r["variants"].items()]
    out = [("Accuracy", accuracy_table(results, fmt)),
           ("Mean normalized entropy", entropy_table(results, fmt))]
    if any(m.get("calibration") for _, m in variants):
        out.append(("Calibration", calibration_table(results, fmt)))
    if any(r.get("swaps") for r in results.values()):
        out.append(("Swapped predictions", swap_table(results, fmt)))
    if any(sweep_variants(r["variants"]) for r in results.values()):
        out.append(("Weight-bit sweep", sweep_table(results, fmt)))
    if any(sweep_variants(r["variants"], "activations") for r in results.values()):
        out.append(("Activation-bit sweep", sweep_table(results, fmt, "activations")))
    if any(sweep_variants(r["variants"], "calibration") for r in results.values()):
        out.append(("Calibration sweep", calibration_sweep_table(results, fmt)))
    if any(r.get("attribution") for r in results.values()):
        out.append(("Attribution", attribution_table(results, fmt)))
    if any(m.get("latency") for _, m in variants):
        out.append(("Latency", latency_table(results, fmt)))
    if any(m.get("per_class") for _, m in variants):
        out.append(("Per-class summary", class_summary_table(results, fmt)))
    return out


# ---------------------------------------------------------------- saved runs


def load_run(run_dir: Path):
    """A saved run, read through :func:`benchmark.rundir.read_run` (DataError if unreadable)."""
    from benchmark.rundir import read_run
    return read_run(run_dir)


#: Sub-directory of a run directory holding rendered figures, ``<key>.png``.
FIGURE_CACHE = ".figures"
#: Fewer figures to render than this are drawn in this process (a pool costs more).
MIN_PARALLEL_FIGURES = 3
#: Off-diagonal confusions listed for matrices too large to draw in full.
TOP_CONFUSIONS = 20
#: Rows of predictions per chunk when computing entropies (bounds the temporaries).
ENTROPY_CHUNK = 4096
#: What the last :func:`render_figures` call did: figures ``rendered`` and ``cached``, ``workers``.
LAST_RENDER: dict = {}

_KEY_CHARS = 40


def _feed(h, obj) -> None:
    """Hash ``obj`` (plain data: dicts, sequences, arrays, scalars) by content and type."""
    if isinstance(obj, dict):
        h.update(b"d%d;" % len(obj))
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(b"l%d;" % len(obj))
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"a{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    elif isinstance(obj, str):
        b = obj.encode()
        h.update(b"s%d;" % len(b) + b)
    elif obj is None or isinstance(obj, (bool, int, float, np.generic)):
        v = obj.item() if isinstance(obj, np.generic) else obj
        h.update(f"{type(v).__name__}:{v!r};".encode())
    else:
        raise TypeError(f"cannot hash figure data of type {type(obj).__name__}")


@functools.lru_cache(maxsize=None)
def _versions() -> str:
    from importlib import metadata
    return ",".join(f"{p}={metadata.version(p)}" for p in ("matplotlib", "pillow", "numpy"))


@dataclass(frozen=True, eq=False)
class FigureJob:
    """One figure to draw: a module-level function of :mod:`benchmark.plots` and its data."""

    func: Callable
    kwargs: dict

    def key(self) -> str:
        """Hash of exactly what is drawn: function, data, drawing version, libraries, DPI."""
        from benchmark import plots
        h = hashlib.sha256(f"{self.func.__module__}.{self.func.__qualname__};"
                           f"v{plots.RENDER_VERSION};dpi{plots.DPI};{_versions()};".encode())
        _feed(h, self.kwargs)
        return h.hexdigest()[:_KEY_CHARS]

    def figure(self):
        """Draw it in this process (a matplotlib Figure, or PNG bytes for heatmaps)."""
        return self.func(**self.kwargs)


@dataclass
class Section:
    """A titled part of a split's report: images (label, job) and, for confusion, its data."""

    title: str
    images: list[tuple[str, FigureJob]]
    confusion: dict | None = None


def _entropies(sr, variant: str) -> np.ndarray:
    """Per-image normalized entropy, computed in chunks of rows (same values, less memory)."""
    from benchmark.metrics import normalized_entropy
    probs = sr.predictions(variant)["probs"]
    return np.concatenate([normalized_entropy(probs[i:i + ENTROPY_CHUNK])
                           for i in range(0, probs.shape[0], ENTROPY_CHUNK)])


def _index_labels(k: int, block: int) -> list[str]:
    return [f"{lo}-{min(lo + block, k) - 1}" if block > 1 else str(lo)
            for lo in range(0, k, block)]


def confusion_section(cms: dict, names: list[str]) -> Section:
    """Full heatmaps up to ~100 classes; beyond that, the top confusions and an overview."""
    from benchmark import plots
    k = len(names)
    title = "Confusion matrices (row-normalized)"
    if k <= plots.FULL_MATRIX_MAX_CLASSES:
        images = [(v, FigureJob(plots.confusion_image, {"cm": cm})) for v, cm in cms.items()]
        return Section(title, images, {"k": k, "labels": names, "cell": plots.heatmap_cell(k),
                                       "full": True})
    block = plots.overview_blocks(k)
    pairs = plots.top_confusions(cms, TOP_CONFUSIONS)
    rows = [[names[i], names[j], *(x for cm in cms.values()
                                   for x in (int(cm[i, j]), cm[i, j] / max(cm[i].sum(), 1)))]
            for i, j in pairs]
    labels = _index_labels(k, block)
    images = [(f"{v} overview", FigureJob(plots.confusion_overview, {"cm": cm}))
              for v, cm in cms.items()]
    return Section(title, images, {"k": k, "labels": labels, "full": False, "block": block,
                                   "cell": plots.heatmap_cell(len(labels)), "top": rows,
                                   "variants": list(cms)})


def _plain(heading: str, func, **kwargs) -> Section:
    return Section(heading, [("", FigureJob(func, kwargs))])


def split_sections(sr) -> list[Section]:
    """Every figure of one split (a :class:`benchmark.rundir.SplitRun`), in report order."""
    from benchmark import plots
    res = sr.record
    variants = list(res["variants"])
    names = [str(n) for n in res["class_names"]]
    out = []
    cms = {v: sr.confusion(v) for v in variants if sr.has_confusion(v)}
    # side by side: the reference, the int8 model and the device; sweep variants are in tables
    shown = {v: cms[v] for v in ("float", "int8", EDGETPU_NAME) if v in cms} or cms
    if shown:
        out.append(confusion_section(shown, names))
    for key, title, xlabel in (
            ("certainty_histogram", "Certainty: probability given to the true class",
             "probability of the true class"),
            ("output_histogram", "All output values", "output value")):
        h = {v: res["variants"][v][key] for v in variants}
        out.append(_plain(title + " (log counts)", plots.histograms, hists=h, title=title,
                          xlabel=xlabel, log=True))
    ent = {v: _entropies(sr, v) for v in variants if sr.has_predictions(v)}
    if ent:
        out.append(_plain("Entropy distributions", plots.entropy_distributions, entropies=ent))
    rel = {v: res["variants"][v]["calibration"]["reliability"] for v in variants
           if res["variants"][v].get("calibration")}
    if rel:
        out.append(_plain("Reliability diagram and confidence histogram", plots.reliability,
                          rels=rel))
    out += _comparison_sections(res, cms, names)
    # latency dicts without raw samples (older runs) only get the table
    lat = {v: m["latency"]["samples_ms"] for v, m in res["variants"].items()
           if (m.get("latency") or {}).get("samples_ms")}
    if lat:
        out.append(_plain("Latency", plots.latency_distributions, samples=lat))
    return out


def _comparison_sections(res: dict, cms: dict, names: list[str]) -> list[Section]:
    """Recall changes, where swaps sit, the weight-bit sweep (what the split has data for)."""
    from benchmark import plots
    out = []
    quant = [v for v in res["variants"] if v != "float"]
    if "float" in cms and quant and quant[0] in cms:
        out.append(_plain("Recall changes", plots.recall_changes, cm_ref=cms["float"],
                          cm_q=cms[quant[0]], class_names=names, labels=("float", quant[0])))
    sw = {v: h["swapped_by_confidence"] for v, h in res.get("swaps", {}).items()
          if v != "reference"}
    if sw:
        out.append(_plain("Swapped predictions over float confidence",
                          plots.swapped_vs_confidence, swaps=sw))
    return out + _sweep_sections(res)


def _sweep_sections(res: dict) -> list[Section]:
    """The weight- and activation-bit sweeps' and the calibration sweep's figures."""
    from benchmark import plots
    out = []
    for kind, title in (("weights", "Weight-bit sweep"), ("activations", "Activation-bit sweep")):
        sweep = sorted((var.weight_bits if kind == "weights" else var.act_bits,
                        res["swaps"][v]) for v, var in sweep_variants(res["variants"], kind)
                       if v in res.get("swaps", {}))
        if len(sweep) > 1:
            more = {} if kind == "weights" else {"what": "activation"}
            out.append(_plain(title, plots.bit_sweep, bits=[x[0] for x in sweep],
                              swapped_pct=[x[1]["swapped_pct"] for x in sweep],
                              delta_error_pct=[x[1]["delta_error_pct"] for x in sweep],
                              ratio=[x[1]["ratio"] for x in sweep], **more))
    summ = calibration_summary({res["split"]: res}) if "split" in res else []
    if summ:
        curves = {res["split"]: [(x["size"], x["median_delta"], x["worst_delta"])
                                 for x in summ]}
        out.append(_plain("Calibration sweep: accuracy vs calibration size",
                          plots.calibration_sweep, curves=curves))
    return out


def split_figures(sr) -> list[tuple[str, object]]:
    """(title, matplotlib Figure) of a split's figures, drawn here (confusion heatmaps aside)."""
    return [(s.title, s.images[0][1].figure()) for s in split_sections(sr)
            if s.confusion is None]


# ---------------------------------------------------------------- rendering and its cache


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def figure_workers(n: int) -> int:
    """Worker processes for drawing ``n`` matplotlib figures: ``min(cores, n)``, or 0 (draw
    here) for fewer than :data:`MIN_PARALLEL_FIGURES` figures, one core, or a machine
    already busy (1-minute load >= cores - 0.5). Measured on 2 cores with the report's
    figures all in matplotlib: at load 1.1 two workers took 0.81 s against 1.06 s here; at
    load 3, 1.23 s against 0.92 s (forking and copy-on-write cost CPU that other processes
    already hold). Pillow figures do not count (:func:`_draw`)."""
    cpus = _cpus()
    if n < MIN_PARALLEL_FIGURES or cpus < 2 or _load() >= cpus - 0.5:
        return 0
    return min(cpus, n)


def _render_pool(jobs: list[FigureJob], workers: int) -> list[bytes]:
    """Draw ``jobs`` in ``workers`` processes, forked (where the OS can) after matplotlib is
    imported and warmed up here (when a job draws with it), so that the workers start ready
    to draw."""
    from benchmark import plots
    fork = "fork" in mp.get_all_start_methods()
    if fork and any(plots.needs_matplotlib(j.func) for j in jobs):
        plots.warm_up(draw=True)
    ctx = mp.get_context("fork") if fork else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                             initializer=None if fork else plots.warm_up) as ex:
        return list(ex.map(plots.render, [j.func for j in jobs], [j.kwargs for j in jobs]))


def _read_cached(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if data.startswith(b"\x89PNG") else None


def _store(path: Path, data: bytes) -> None:
    from benchmark.results import atomic_write_bytes
    try:
        atomic_write_bytes(path, data)
    except OSError:
        pass                      # a read-only run: the report is still built, just not cached


def _prune(cache_dir: Path, keep: set[str]) -> None:
    """Remove cached figures this run no longer draws (its data or the drawing changed)."""
    try:
        old = [p for p in cache_dir.glob("*.png") if len(p.stem) == _KEY_CHARS
               and p.stem not in keep]
        for p in old:
            p.unlink()
    except OSError:
        pass


def _lookup(jobs, keys, shared: Path | None) -> tuple[dict[str, bytes], int]:
    """PNG bytes already drawn, by key: the run's own cache, else the shared one (then copied
    into the run's); and how many came from the shared cache."""
    got: dict[str, bytes] = {}
    hits = 0
    for (_, d), key in zip(jobs, keys):
        if key in got:
            continue
        data = _read_cached(d / f"{key}.png") if d is not None else None
        if data is None and shared is not None:
            data = _read_cached(shared / f"{key}.png")
            if data is not None:
                from benchmark import figcache
                figcache.touch(shared / f"{key}.png")
                hits += 1
                if d is not None:
                    _store(d / f"{key}.png", data)
        if data is not None:
            got[key] = data
    return got, hits


def _draw(todo: dict) -> tuple[list[bytes], int]:
    """Draw ``{key: (job, dir)}`` in worker processes or here; ``(pngs, workers used)``.

    Only figures drawn with matplotlib count for the pool: the Pillow ones (heatmaps,
    :data:`benchmark.charts.TWINS`) take ~10 ms each, less than starting a worker.
    """
    from benchmark import plots
    workers = figure_workers(sum(plots.needs_matplotlib(j.func) for j, _ in todo.values()))
    if workers:
        try:
            return _render_pool([j for j, _ in todo.values()], workers), workers
        except (OSError, BrokenProcessPool):     # no processes here (limits, no /dev/shm)
            pass
    return [plots.render(j.func, j.kwargs) for j, _ in todo.values()], 0


def render_figures(jobs: list[tuple[FigureJob, Path | None]],
                   shared: Path | None = None) -> list[bytes]:
    """PNG bytes of each ``(job, cache_dir)``; cached files are reused, new ones are stored.

    A job whose ``<cache_dir>/<key>.png`` exists is read back instead of drawn,
    else (with ``shared``, the cache of :mod:`benchmark.figcache`) one from
    ``<shared>/<key>.png``; the others are drawn in worker processes (see
    :func:`figure_workers`: one per core, at most one per figure) or here, then
    stored (atomically) in ``cache_dir`` and ``shared``. Figures in a cache
    directory that no job of this call uses are removed; ``shared`` is trimmed
    to :data:`benchmark.figcache.MAX_BYTES`.
    """
    keys = [j.key() for j, _ in jobs]
    got, hits = _lookup(jobs, keys, shared)
    todo = {}
    for (job, d), key in zip(jobs, keys):
        if key not in got:
            todo.setdefault(key, (job, d))
    drawn, workers = _draw(todo) if todo else ([], 0)
    for (key, (_, d)), data in zip(todo.items(), drawn):
        got[key] = data
        for cache in (d, shared):
            if cache is not None:
                _store(cache / f"{key}.png", data)
    for d in {d for _, d in jobs if d is not None}:
        _prune(d, {k for (_, dd), k in zip(jobs, keys) if dd == d})
    if shared is not None and todo:
        from benchmark import figcache
        figcache.trim(shared)
    LAST_RENDER.clear()
    LAST_RENDER.update(rendered=len(todo), cached=len(set(keys)) - len(todo), workers=workers)
    if shared is not None:
        LAST_RENDER["shared"] = hits
    return [got[k] for k in keys]


def run_sections(runs) -> list[dict[str, list[Section]]]:
    """``{split: sections}`` of each run."""
    return [{s: split_sections(sr) for s, sr in run.splits.items()} for run in runs]


def render_sections(runs, sections, shared: Path | None = None
                    ) -> list[dict[str, list[list[bytes]]]]:
    """PNG bytes of every image of :func:`run_sections`' output, in one batch (one pool);
    ``shared``: the cross-run figure cache (:func:`render_figures`)."""
    jobs = [(job, Path(run.dir) / FIGURE_CACHE)
            for run, by_split in zip(runs, sections) for secs in by_split.values()
            for sec in secs for _, job in sec.images]
    pngs = iter(render_figures(jobs, shared))
    return [{s: [[next(pngs) for _ in sec.images] for sec in secs]
             for s, secs in by_split.items()} for by_split in sections]


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode()


def _labels_html(labels: list[str], cls: str, cell: int, extra: str = "") -> str:
    font = max(1, min(11, cell - 1))
    divs = "".join(f"<div title='{html.escape(n)}'>{html.escape(n)}</div>" for n in labels)
    return (f"<div class='{cls}' style='font-size:{font}px;line-height:{cell}px;{extra}'>"
            f"{divs}</div>")


def _heatmap_panel(label: str, png: bytes, conf: dict) -> str:
    """One heatmap with its class labels in HTML (rows left, columns below)."""
    side = len(conf["labels"]) * conf["cell"]
    return (f"<figure class='cm'><figcaption>{html.escape(label)}</figcaption>"
            f"<div class='cmg'>{_labels_html(conf['labels'], 'cmy', conf['cell'])}"
            f"<img class='heat' width='{side}' height='{side}' "
            f"alt='{html.escape(label)} confusion matrix' src='data:image/png;base64,{_b64(png)}'>"
            f"<div class='cma'>true &darr;<br>predicted &rarr;</div>"
            f"{_labels_html(conf['labels'], 'cmx', conf['cell'], f'width:{side}px')}"
            f"</div></figure>")


def _top_table(conf: dict) -> str:
    heads = ["true", "predicted"] + [h for v in conf["variants"]
                                     for h in (f"{v} images", f"{v} % of true")]
    out = ["<table class='topk'><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads)
           + "</tr>"]
    for row in conf["top"]:
        cells = [html.escape(row[0]), html.escape(row[1])]
        for n, frac in zip(row[2::2], row[3::2]):
            cells += [str(n), f"{100 * frac:.2f}"]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def confusion_html(sec: Section, pngs: list[bytes]) -> str:
    """The confusion section: heatmaps with HTML labels, a colour bar, and for many classes
    the largest off-diagonal confusions and a downsampled overview."""
    from benchmark.plots import VIRIDIS_STOPS
    conf = sec.confusion
    parts = []
    if not conf["full"]:
        b = conf["block"]
        parts.append(f"<p>{conf['k']} classes: too many to draw one cell per class pair. "
                     f"The {len(conf['top'])} largest off-diagonal confusions (images summed "
                     f"over the variants shown):</p>{_top_table(conf)}"
                     f"<p>Overview: each cell is a block of {b} &times; {b} classes (class "
                     "indices), the mean over the block's true classes of the fraction "
                     "predicted in the block.</p>")
    parts.append("<div class='cms'>" + "".join(_heatmap_panel(label, png, conf)
                                               for (label, _), png in zip(sec.images, pngs))
                 + "</div>")
    parts.append("<div class='cbar'>0 <span style='background:linear-gradient(to right,"
                 + ",".join(VIRIDIS_STOPS) + ")'></span> 1 &nbsp;fraction of true class "
                 "(rows = true class)</div>")
    return "".join(parts)


def section_html(split: str, sec: Section, pngs: list[bytes]) -> str:
    head = f"<h3>{html.escape(split)}: {html.escape(sec.title)}</h3>"
    if sec.confusion is not None:
        return head + confusion_html(sec, pngs)
    return head + "".join(f"<img alt='{html.escape(sec.title)}' "
                          f"src='data:image/png;base64,{_b64(png)}'>" for png in pngs)


_CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px}
th{background:#f2f2f2}.diff{background:#ffe08a}img{max-width:100%;display:block;margin:0.5em 0}
code,pre{background:#f6f6f6}h2{border-bottom:1px solid #ddd}
.cms{display:flex;flex-wrap:wrap;gap:1em 2em}.cm{margin:0}.cm figcaption{font-weight:bold}
.cmg{display:grid;grid-template-columns:auto auto;align-items:start}
.cmy{text-align:right;max-width:12em;overflow:hidden;white-space:nowrap;padding-right:3px}
.cmx{writing-mode:vertical-lr;max-height:10em;overflow:hidden;white-space:nowrap;
padding-top:3px}.cma{font-size:10px;text-align:right;padding:3px}
img.heat{max-width:none;margin:0;image-rendering:pixelated}
.cbar span{display:inline-block;width:200px;height:10px;vertical-align:middle}
.topk td{text-align:right}.topk td:nth-child(-n+2){text-align:left}"""


COMPARE_KEYS = (("accuracy", "accuracy"), ("mean_normalized_entropy", "mean H/log K"))


def comparison_rows(runs: list[dict]) -> tuple[list[str], list[list]]:
    """Rows = metric per split/variant, columns = runs (None where absent)."""
    keys = []
    for run in runs:
        for s, sr in run.splits.items():
            for v in sr.record["variants"]:
                for k, label in COMPARE_KEYS + (("ece", "ECE"),):
                    if (s, v, k, label) not in keys:
                        keys.append((s, v, k, label))
    rows = []
    for s, v, k, label in keys:
        row = [f"{s}/{v} {label}"]
        for run in runs:
            sr = run.splits.get(s)
            m = sr.record["variants"].get(v) if sr is not None else None
            val = None
            if m is not None:
                val = m.get("calibration", {}).get("ece") if k == "ece" else m.get(k)
            row.append(val)
        rows.append(row)
    return [str(r.dir) for r in runs], rows


def comparison_html(runs: list[dict]) -> str:
    """The multi-run comparison as an HTML section.

    Parameters
    ----------
    runs : list of dict
        Runs as returned by :func:`load_run`; the first one is the reference.

    Returns
    -------
    str
        ``<h2>Comparison</h2>`` and a table with one row per metric (split/variant
        accuracy, mean normalized entropy, ECE) and one column per run; cells that
        differ from the first run's value have ``class='diff'``.
    """
    heads, rows = comparison_rows(runs)
    parts = ["<h2>Comparison</h2><p>Cells that differ from the first run are "
             "highlighted.</p><table class='comparison'><tr><th>metric</th>"
             + "".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>"]
    for row in rows:
        first = row[1]
        cells = []
        for i, val in enumerate(row[1:]):
            txt = "" if val is None else f"{val:.4f}"
            cls = " class='diff'" if i and val is not None and first is not None \
                and abs(val - first) > 1e-12 else ""
            cells.append(f"<td{cls}>{txt}</td>")
        parts.append(f"<tr><td>{html.escape(row[0])}</td>{''.join(cells)}</tr>")
    parts.append("</table>")
    return "".join(parts)


def build_html(runs: list[dict], shared: Path | None = None) -> str:
    """One self-contained page: no external CSS, JS, fonts or images; ``shared``: the
    cross-run figure cache (:func:`render_figures`)."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             "<title>edgetpu-bench report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>edgetpu-bench report</h1>"]
    if len(runs) > 1:
        parts.append(comparison_html(runs))
    all_sections = run_sections(runs)
    for run, sections, pngs in zip(runs, all_sections, render_sections(runs, all_sections,
                                                                       shared)):
        results = run.records()
        top = run.top
        parts.append(f"<h2>Run {html.escape(str(run.dir))}</h2>")
        env = top.get("environment", {})
        parts.append("<details><summary>config and environment</summary><pre>"
                     + html.escape(json.dumps({"config": top.get("config"), "environment": env},
                                              indent=2)) + "</pre></details>")
        for title, table in _tables(results, "html"):
            parts.append(f"<h3>{html.escape(title)}</h3>{table}")
        for title, table in per_class_tables(results, "html"):
            parts.append(f"<h3>{html.escape(title)}</h3>{table}")
        for key, title in (("certainty_histogram", "Certainty histogram"),
                           ("output_histogram", "Histogram of all outputs")):
            parts.append(f"<h3>{title}</h3>{histogram_table(results, key, 'html')}")
        for split, secs in sections.items():
            parts += [section_html(split, sec, p) for sec, p in zip(secs, pngs[split])]
    parts.append("</body></html>")
    return "\n".join(parts)


def build_markdown(runs: list[dict]) -> str:
    """Summary tables for pasting into an issue or a README."""
    out = []
    for run in runs:
        results = run.records()
        env = run.top.get("environment", {})
        out.append(f"## Run `{run.dir}` (git {env.get('git')})\n")
        for title, table in _tables(results, "github") + per_class_tables(results, "github"):
            out.append(f"**{title}**\n\n{table}\n")
    if len(runs) > 1:
        heads, rows = comparison_rows(runs)
        out.append("**Comparison**\n\n" + tabulate(
            [[r[0], *("" if v is None else f"{v:.4f}" for v in r[1:])] for r in rows],
            headers=["metric", *heads], tablefmt="github") + "\n")
    return "\n".join(out)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def write_figures(run_dir: Path, fig_dir: Path) -> list[Path]:
    """Save every figure of a run in ``fig_dir``: ``<split>_<title>.png``, and one
    ``<split>_<title>_<variant>.png`` per confusion heatmap."""
    from benchmark.results import atomic_write_bytes
    run = load_run(run_dir)
    sections = run_sections([run])
    paths = []
    for split, pngs in render_sections([run], sections)[0].items():
        for sec, images in zip(sections[0][split], pngs):
            for (label, _), png in zip(sec.images, images):
                path = Path(fig_dir) / "_".join(_slug(x) for x in (split, sec.title, label) if x)
                path = path.with_name(path.name + ".png")
                atomic_write_bytes(path, png)
                paths.append(path)
    return paths


def figure_dirs(run_dirs, fig_dir: Path) -> list[Path]:
    """Where each run's figures go: ``fig_dir`` for one run, ``fig_dir/<i>-<name>`` for several."""
    run_dirs = [Path(d) for d in run_dirs]
    if len(run_dirs) == 1:
        return [Path(fig_dir)]
    return [Path(fig_dir) / f"{i + 1}-{_slug(d.resolve().name) or 'run'}"
            for i, d in enumerate(run_dirs)]


def save_all_figures(run_dirs, fig_dir: Path) -> list[Path]:
    """Every figure of every run (see :func:`figure_dirs`)."""
    paths = []
    for run_dir, d in zip(run_dirs, figure_dirs(run_dirs, fig_dir)):
        paths += write_figures(run_dir, d)
    return paths


#: How the files this module writes begin; an existing file that does not is not replaced.
_OWN_START = {".html": "<!DOCTYPE html><html><head><meta charset='utf-8'>\n"
                       "<title>edgetpu-bench report</title>",
              ".md": "## Run `"}


def check_report_out(out: Path) -> None:
    """Refuse an ``--out`` that would replace anything but a report this module wrote.

    Parameters
    ----------
    out : Path
        The HTML path; ``report.md`` goes beside it (same stem, ``.md``).

    Raises
    ------
    UsageError
        When ``out`` is not an ``.html`` file name, is a folder, or when it or
        the ``.md`` beside it exists and does not begin the way this module's
        reports begin (a run's ``results.json``, the user's own notes).
    """
    from benchmark.errors import UsageError
    out = Path(out)
    if out.suffix.lower() != ".html":
        raise UsageError(f"--out {out}: must be an .html file name (report.md is written "
                         "beside it)")
    for path in (out, out.with_suffix(".md")):
        if path.is_dir():
            raise UsageError(f"--out {out}: {path} is a folder")
        if path.exists() and not _is_own_report(path):
            raise UsageError(f"--out {out}: {path} exists and was not written by "
                             "benchmark.report; refusing to overwrite it (choose another --out)")


def _is_own_report(path: Path) -> bool:
    start = _OWN_START[path.suffix.lower()].encode()
    try:
        with open(path, "rb") as f:
            return f.read(len(start)) == start
    except OSError:
        return False


def write_report(run_dirs, out: Path | None = None, *,
                 figure_cache: Path | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md``; return their paths.

    ``figure_cache``: a directory of figures shared across runs
    (:func:`benchmark.figcache.shared_dir`; ``benchmark.run`` passes it), read
    before drawing and given what is drawn; by default only each run's own
    ``.figures`` cache is used.

    An existing file is replaced only when it is a report this function wrote
    (:func:`check_report_out`).
    """
    from benchmark.results import atomic_write_bytes
    if out is None and len(run_dirs) == 1:
        out = Path(run_dirs[0]) / "report.html"
    out = Path(out) if out is not None else Path("report.html")
    check_report_out(out)
    runs = [load_run(Path(d)) for d in run_dirs]
    atomic_write_bytes(out, build_html(runs, figure_cache).encode())
    md = out.with_suffix(".md")
    atomic_write_bytes(md, build_markdown(runs).encode())
    return out, md


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.report",
                                description="Build report.html (self-contained) and report.md "
                                            "from saved run directories.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories (benchmark.run --out)")
    p.add_argument("--out", type=Path, default=None,
                   help="HTML file (default RUN_DIR/report.html for one run, ./report.html "
                        "for several); report.md goes beside it")
    p.add_argument("--figures", type=Path, default=None, metavar="DIR",
                   help="also save every figure as PNG files in DIR (one sub-folder per run "
                        "when several runs are given)")
    args = p.parse_args(argv)
    from benchmark.preflight import check_report_outputs
    check_report_outputs(args.out, args.figures, args.runs)
    t0 = time.perf_counter()
    html_path, md_path = write_report(args.runs, args.out)
    if args.figures:
        for path in save_all_figures(args.runs, args.figures):
            print(f"wrote {path}")
    print(f"wrote {html_path} ({html_path.stat().st_size // 1024} KiB) and {md_path} in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    from benchmark.cli import main_wrapper
    sys.exit(main_wrapper("benchmark.report", main))
