#!/usr/bin/env python3
"""Build the tables in results/*.md from the CSVs committed under results/.

Every table in ``results/*.md`` sits between ``<!-- results-table:NAME -->`` and
``<!-- /results-table:NAME -->``; this script regenerates the text between the
markers from CSV files that a ``benchmark`` command wrote (copied unchanged into
``results/<source>/``) and leaves everything outside the markers alone. The
command that wrote each source is listed in :data:`SOURCES` and printed into the
``sources`` table of each page, so a table, its CSVs and its command never part.

    python tools/results_tables.py           # rewrite the tables in results/*.md
    python tools/results_tables.py --check   # exit 1 if any table differs from its CSVs

To refresh a source: re-run its command, copy the named files from the run
directory into ``results/<source>/``, run this script, commit both.
tests/test_docs.py checks that the committed tables match the committed CSVs.

Only the standard library is used (the CSVs are small), so this runs anywhere.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"

CHENYAOFO = "../shared/models/cifar100_resnet"
PAPER = "../shared/models/paper_cifar100_resnet"


@dataclass(frozen=True)
class Source:
    """One run whose output files are committed under ``results/<name>/``."""

    name: str
    command: str
    files: tuple[str, ...]


def _cifar_sources() -> list[Source]:
    out = []
    for observer in ("minmax", "mse"):
        for model, origin, weights in (
                ("resnet20", "chenyaofo", f"{CHENYAOFO}/cifar100_resnet20.npz"),
                ("resnet56", "chenyaofo", f"{CHENYAOFO}/cifar100_resnet56.npz"),
                ("resnet20", "paper", f"{PAPER}/paper_resnet20_cifar100.npz"),
                ("resnet56", "paper", f"{PAPER}/paper_resnet56_cifar100.npz")):
            out.append(Source(
                f"cifar100-{model}-{origin}-{observer}",
                f"python -m benchmark.paper --model {model} --dataset cifar100 "
                f"--data-dir ../shared/data/cifar100 --weights {weights} "
                f"--act-observer {observer} --split all",
                ("paper_fig2_sweep.csv", "paper_fig1_reliability.csv")))
    return out


#: Every committed source. Commands run from the repository root; they were run
#: with ``--out``, ``--cache-dir`` (an empty cache) and, for benchmark.paper,
#: ``--no-plots`` added, none of which changes a number.
SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("carolo-synth-run", "python -m benchmark.run --split all --device cpu",
           ("metrics.csv",)),
    Source("carolo-synth-sweep",
           "python -m benchmark.paper --model signnet --split all --weight-bits 8,7,6,5,4,3",
           ("paper_fig2_sweep.csv",)),
    Source("carolo-synth-blog", "python -m benchmark.metrics.blog RUN_DIR (RUN_DIR: the "
           "carolo-synth-run command's run directory)", ("blog_definitions.csv",)),
    Source("blog", "none: the numbers the blog reports, typed in from it", ("blog.csv",)),
    Source("gtsrb-run",
           "python -m benchmark.run --model signnet-gtsrb --dataset gtsrb "
           "--data-dir ../shared/data/gtsrb --split all",
           ("metrics.csv",)),
    *_cifar_sources(),
    Source("imagenet-sample-efficientnet-lite0",
           "python -m benchmark.run --model efficientnet-lite0 --weights "
           "\"$(python -m benchmark.models.efficientnet_lite)\" --dataset imagenet "
           "--data-dir ../shared/data/imagenet-sample --split verification --device cpu",
           ("metrics.csv",)),
    Source("imagenet-sample-coral-mobilenet-v1",
           "python -m benchmark.run --model "
           "../shared/edgetpu/pairs/mobilenet_v1_0.25_128_quant.tflite "
           "--preprocess raw --mean 128 --std 128 "
           "--dataset imagenet --data-dir ../shared/data/imagenet-sample --split verification "
           "--device cpu",
           ("metrics.csv",)),
]}


# ----------------------------------------------------------------------------- reading

def read_csv(source: str, file: str) -> list[dict]:
    path = RESULTS / source / file
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def metrics(source: str) -> dict[tuple[str, str], dict[str, float]]:
    """``metrics.csv`` as ``{(split, variant): {metric: value}}``."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for r in read_csv(source, "metrics.csv"):
        out.setdefault((r["split"], r["variant"]), {})[r["metric"]] = float(r["value"])
    return out


def float_summary(source: str) -> dict[str, tuple[float, float]]:
    """Per split: the float model's (accuracy, ECE) from the equal-width reliability bins."""
    out = {}
    rows = [r for r in read_csv(source, "paper_fig1_reliability.csv")
            if r["binning"] == "equal_width"]
    for split in dict.fromkeys(r["split"] for r in rows):
        n = correct = gap = 0.0
        for r in rows:
            c = int(r["count"])
            if r["split"] != split or c == 0:
                continue
            acc, conf = float(r["accuracy"]), float(r["mean_confidence"])
            n += c
            correct += round(c * acc)
            gap += c * abs(acc - conf)
        out[split] = (correct / n, gap / n)
    return out


def sweep(source: str) -> dict[tuple[str, str], dict[str, str]]:
    """``paper_fig2_sweep.csv`` as ``{(split, variant): row}``."""
    return {(r["split"], r["variant"]): r for r in read_csv(source, "paper_fig2_sweep.csv")}


# ----------------------------------------------------------------------------- formatting

def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown pipe table; ``align`` is one of ``l``/``r`` per column."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = [header, sep, *rows]
    return "\n".join("| " + " | ".join(c) + " |" for c in lines)


def pct(x: float, digits: int = 2, sign: bool = False) -> str:
    """A fraction as a percentage, e.g. ``0.99843`` -> ``99.84 %``."""
    return f"{x * 100:{'+' if sign else ''}.{digits}f} %"


def ppct(x: float, digits: int = 2, sign: bool = False) -> str:
    """A value already in percent."""
    return f"{x:{'+' if sign else ''}.{digits}f} %"


def num(x: float, digits: int) -> str:
    s = f"{x:.{digits}f}"
    return "0." + "0" * digits if s == "-0." + "0" * digits else s


def acc_ci(m: dict[str, float]) -> str:
    return (f"{pct(m['accuracy'])} [{m['accuracy_ci_low'] * 100:.2f}, "
            f"{m['accuracy_ci_high'] * 100:.2f}] n={int(m['n'])}")


def _splits(mx) -> list[str]:
    return list(dict.fromkeys(s for s, _ in mx))


def _variants(mx) -> list[str]:
    return list(dict.fromkeys(v for _, v in mx))


# ----------------------------------------------------------------------------- run tables

def run_accuracy(source: str) -> str:
    mx = metrics(source)
    splits = _splits(mx)
    rows = [[v] + [acc_ci(mx[(s, v)]) for s in splits] for v in _variants(mx)]
    return table(["accuracy (95 % CI)"] + splits, rows)


def run_entropy(source: str) -> str:
    mx = metrics(source)
    splits = _splits(mx)
    rows = [[v] + [num(mx[(s, v)]["mean_normalized_entropy"], 4) for s in splits]
            for v in _variants(mx)]
    for v in _variants(mx):
        if v != "float":
            rows.append([f"float = {v} (top-1)"]
                        + [pct(mx[(s, v)]["agreement_with_float"]) for s in splits])
    return table(["mean H / log K"] + splits, rows)


def run_calibration(source: str) -> str:
    mx = metrics(source)
    rows = []
    for (s, v), m in mx.items():
        rows.append([f"{s}/{v}", pct(m["calibration_ece"]), pct(m["calibration_mce"]),
                     num(m["calibration_nll"], 4), num(m["calibration_brier"], 4),
                     pct(m["calibration_gap"], sign=True)])
    return table(["calibration", "ECE (15 bins)", "MCE", "NLL", "Brier", "conf - acc"], rows)


def run_swaps(source: str) -> str:
    mx = metrics(source)
    rows = []
    for (s, v), m in mx.items():
        if "swapped_pct" not in m:
            continue
        rows.append([f"{s}/{v}", ppct(m["swapped_pct"]), ppct(m["delta_error_pct"], sign=True),
                     num(m["ratio"], 3),
                     f"{int(m['right_to_wrong'])}/{int(m['wrong_to_right'])}/"
                     f"{int(m['wrong_to_wrong'])}",
                     f"{m['mcnemar_p']:.3g}"])
    return table(["vs float", "swapped", "delta error", "ratio", "R->W/W->R/W->W", "McNemar p"],
                 rows)


_BIN = re.compile(r"^certainty_histogram\[([0-9.]+),([0-9.]+)\]$")


def run_certainty(source: str) -> str:
    mx = metrics(source)
    keys = list(mx)
    bins = [(m.group(1), m.group(2)) for k in mx[keys[0]] if (m := _BIN.match(k))]
    header = ["bin"]
    for s, v in keys:
        header += [f"{s}/{v} n", "%"]
    rows = []
    for lo, hi in bins:
        row = [f"{lo}-{hi}"]
        for k in keys:
            counts = [mx[k][f"certainty_histogram[{a},{b}]"] for a, b in bins]
            c = mx[k][f"certainty_histogram[{lo},{hi}]"]
            row += [str(int(c)), num(100 * c / sum(counts), 2)]
        rows.append(row)
    return table(header, rows)


def int8_only(source: str) -> str:
    """One row per split of a model evaluated on its own (no float twin)."""
    rows = []
    for (s, v), m in metrics(source).items():
        rows.append([f"{s}/{v}", acc_ci(m), pct(m["top5_accuracy"]),
                     num(m["mean_normalized_entropy"], 4), pct(m["calibration_ece"]),
                     num(m["calibration_nll"], 4), pct(m["calibration_gap"], sign=True),
                     str(int(m["calibration_nll_zero_true"]))])
    return table(["int8-only", "top-1 (95 % CI)", "top-5", "mean H / log K", "ECE (15 bins)",
                  "NLL", "conf - acc", "p(true) = 0"], rows)


# ----------------------------------------------------------------------------- sweeps

def signnet_sweep(source: str) -> str:
    rows = []
    for (s, v), r in sweep(source).items():
        rows.append([s, v, r["weight_bits"], pct(float(r["accuracy"])),
                     ppct(float(r["swapped_pct"])), ppct(float(r["delta_error_pct"]), sign=True),
                     num(float(r["ratio"]), 3), pct(float(r["ece"])), r["swaps"],
                     f"{float(r['swaps_low_conf_share']) * 100:.0f} %"])
    return table(["split", "variant", "bits", "accuracy", "swapped", "delta error", "ratio",
                  "ECE", "swaps", "swaps at conf<0.5"], rows, align="lllrrrrrrr")


def blog_comparison(run_source: str, blog_source: str,
                    defs_source: str = "carolo-synth-blog") -> str:
    mx = metrics(run_source)
    blog = {r["quantity"]: r for r in read_csv(blog_source, "blog.csv")}
    defs = {(r["split"], r["variant"]): float(r["mean_raw_normalized_entropy"])
            for r in read_csv(defs_source, "blog_definitions.csv")}

    def raw(variant):
        return " / ".join(num(defs[(s, variant)], 4) for s in ("full", "verification"))

    def here(metric, variant, digits, as_pct):
        vals = [mx[(s, variant)][metric] for s in ("full", "verification")]
        return " / ".join(pct(x) if as_pct else num(x, digits) for x in vals)

    rows = [
        ["float accuracy full / verification", blog["float_accuracy"]["value"],
         here("accuracy", "float", 2, True)],
        ["int8 accuracy full / verification", blog["int8_accuracy"]["value"],
         here("accuracy", "int8", 2, True)],
        ["mean H / log K (blog's definition: raw outputs), int8 full / verification",
         blog["int8_entropy"]["value"], raw("int8")],
        ["mean H / log K (blog's definition: raw outputs), float", blog["float_entropy"]["value"],
         raw("float")],
        ["mean H / log K (renormalized outputs), int8 full / verification", "–",
         here("mean_normalized_entropy", "int8", 4, False)],
    ]
    return table(["", "blog (Carolo-Cup photos)", "here (carolo-synth)"], rows, align="lll")


CIFAR_ROWS = [("resnet20", "chenyaofo"), ("resnet56", "chenyaofo"),
              ("resnet20", "paper"), ("resnet56", "paper")]
BITS = ["int8", "w7", "w6", "w5", "w4"]


def cifar_sweep(split: str) -> str:
    header = ["model", "observer", "float acc", "int8 acc", "w4 acc",
              "ratio Δerror/swapped: int8 / w7 / w6 / w5 / w4", "swaps int8 → w4",
              "share of swaps at float confidence < 0.5: int8 → w4 (share of all images)"]
    rows = []
    for model, origin in CIFAR_ROWS:
        for observer in ("minmax", "mse"):
            src = f"cifar100-{model}-{origin}-{observer}"
            sw = sweep(src)
            facc, fece = float_summary(src)[split]
            r = {v: sw[(split, v)] for v in BITS}
            rows.append([
                f"ResNet{model[6:]} ({origin})", observer,
                f"{pct(facc)} (ECE {pct(fece, 1)})",
                pct(float(r["int8"]["accuracy"])), pct(float(r["w4"]["accuracy"])),
                " / ".join(num(float(r[v]["ratio"]), 2) for v in BITS),
                " → ".join(r[v]["swaps"] for v in BITS),
                " → ".join(f"{float(r[v]['swaps_low_conf_share']) * 100:.0f}" for v in BITS)
                + f" % ({float(r['int8']['all_low_conf_share']) * 100:.0f} %)"])
    return table(header, rows, align="llrrrlll")


def sources_table(names: list[str]) -> str:
    rows = []
    for n in names:
        s = SOURCES[n]
        files = ", ".join(f"[{f}]({n}/{f})" for f in s.files)
        cmd = s.command if s.command.startswith("none") else f"`{s.command}`"
        rows.append([f"`{n}`", cmd, files])
    return table(["source", "command", "committed files"], rows, align="lll")


#: Table name -> function building it.
TABLES = {
    "carolo-accuracy": lambda: run_accuracy("carolo-synth-run"),
    "carolo-entropy": lambda: run_entropy("carolo-synth-run"),
    "carolo-calibration": lambda: run_calibration("carolo-synth-run"),
    "carolo-swaps": lambda: run_swaps("carolo-synth-run"),
    "carolo-sweep": lambda: signnet_sweep("carolo-synth-sweep"),
    "blog-comparison": lambda: blog_comparison("carolo-synth-run", "blog"),
    "carolo-sources": lambda: sources_table(["carolo-synth-run", "carolo-synth-sweep",
                                             "carolo-synth-blog", "blog"]),
    "gtsrb-accuracy": lambda: run_accuracy("gtsrb-run"),
    "gtsrb-entropy": lambda: run_entropy("gtsrb-run"),
    "gtsrb-calibration": lambda: run_calibration("gtsrb-run"),
    "gtsrb-swaps": lambda: run_swaps("gtsrb-run"),
    "gtsrb-certainty": lambda: run_certainty("gtsrb-run"),
    "gtsrb-sources": lambda: sources_table(["gtsrb-run"]),
    "cifar-verification": lambda: cifar_sweep("verification"),
    "cifar-full": lambda: cifar_sweep("full"),
    "cifar-sources": lambda: sources_table([s for s in SOURCES if s.startswith("cifar100-")]),
    "effnet-accuracy": lambda: run_accuracy("imagenet-sample-efficientnet-lite0"),
    "effnet-entropy": lambda: run_entropy("imagenet-sample-efficientnet-lite0"),
    "effnet-calibration": lambda: run_calibration("imagenet-sample-efficientnet-lite0"),
    "effnet-swaps": lambda: run_swaps("imagenet-sample-efficientnet-lite0"),
    "coral-int8-only": lambda: int8_only("imagenet-sample-coral-mobilenet-v1"),
    "imagenet-sample-sources": lambda: sources_table(
        [s for s in SOURCES if s.startswith("imagenet-sample-")]),
}

_BLOCK = re.compile(r"(<!-- results-table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                    r"(<!-- /results-table:(?P=name) -->)", re.S)


def render(text: str) -> str:
    """``text`` with the body of every results-table block rebuilt from its CSVs.

    A missing CSV raises (a table is never kept when its source is gone).
    """
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise KeyError(f"unknown results table {name!r}")
        return m.group(1) + TABLES[name]() + "\n" + m.group(4)
    return _BLOCK.sub(sub, text)


def pages() -> list[Path]:
    return sorted(RESULTS.glob("*.md"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if a table differs from what its CSVs give")
    args = ap.parse_args(argv)
    stale = []
    for page in pages():
        old = page.read_text()
        new = render(old)
        if new != old:
            stale.append(page)
            if not args.check:
                page.write_text(new)
    for page in stale:
        verb = "differs from its CSVs" if args.check else "rewritten"
        print(f"{page.relative_to(ROOT)}: {verb}")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
