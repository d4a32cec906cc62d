#!/usr/bin/env python3
"""Benchmark CPU evaluation (not a test): today's batch-1 path vs the automatic plan.

Measured in one run, per model: images/s of ``evaluate_variant`` with
``EvalSettings(workers=1, cpu_batch=1, copy_rows=False)`` (batch 1, one
process, rows as views of the memory map: the evaluation as it was) and
with ``EvalSettings()`` (the automatic plan of :mod:`benchmark.batching`),
alternating pass by pass; medians, their ratio, whether the predictions are
bit-identical, and the ``uptime`` load before and after. ``--matrix`` also
times fixed configurations (batch x workers x threads) to check the rule.

Models: SignNet int8 and float (shipped, carolo-synth verification split) and
ResNet56 int8 on the CIFAR-100 verification split, converted once with
``python -m benchmark.run --model resnet56 ... --cache-dir CACHE`` when
``CACHE/converted/resnet56-*/resnet56_int8.tflite`` is missing.

Acceptance (issue 17): ResNet56 int8 >= 1.35x, SignNet int8 >= 1.25x,
bit-identical predictions. Throughput is ``Predictions.images_per_second``
(inference calls only, as recorded in results.json); "wall" adds the set-up
(batch-N copy lookup, worker start-up on the first pass, row reading).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark.evaluate import EvalSettings, evaluate_variant  # noqa: E402
from benchmark.variants import Variant  # noqa: E402

TODAY = EvalSettings(workers=1, cpu_batch=1, copy_rows=False)
AUTO = EvalSettings()
#: --matrix: (label, settings) of fixed configurations.
MATRIX = [
    ("b1 w1 t2", EvalSettings(workers=1, cpu_batch=1)),
    ("b1 w1 t1", EvalSettings(workers=1, cpu_batch=1, num_threads=1)),
    ("b64 w1 t1", EvalSettings(workers=1, cpu_batch=64, num_threads=1)),
    ("b32 w1 t2", EvalSettings(workers=1, cpu_batch=32)),
    ("b64 w1 t2", EvalSettings(workers=1, cpu_batch=64)),
    ("b1 w2 t1", EvalSettings(workers=2, cpu_batch=1)),
    ("b32 w2 t1", EvalSettings(workers=2, cpu_batch=32)),
    ("b64 w2 t1", EvalSettings(workers=2, cpu_batch=64)),
]
RESNET = [sys.executable, "-m", "benchmark.run", "--model", "resnet56", "--dataset", "cifar100",
          "--data-dir", "/work/shared/data/cifar100", "--weights",
          "/work/shared/models/cifar100_resnet/cifar100_resnet56.npz", "--no-report", "--quiet"]


def load() -> str:
    """The 1, 5 and 15 minute load averages (as ``uptime`` prints them)."""
    return "load %.2f %.2f %.2f" % os.getloadavg()


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def resnet56_int8(cache: Path, convert: bool) -> Path | None:
    """The converted ResNet56 int8 in ``cache`` (converting it once when allowed)."""
    pattern = str(cache / "converted" / "resnet56-*" / "resnet56_int8.tflite")
    if not glob.glob(pattern) and convert:
        print(f"converting ResNet56 into {cache} ...", flush=True)
        # the run directory must be outside the cache (benchmark.run refuses otherwise)
        run = cache.parent / f"{cache.name}-run-r56"
        subprocess.run(RESNET + ["--cache-dir", str(cache), "--out", str(run)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    hits = sorted(glob.glob(pattern))
    return Path(hits[0]) if hits else None


def cases(args):
    """``(label, model entry name, model path, dataset)`` of each benchmarked model."""
    from benchmark.datasets.registry import load_dataset
    sign = load_dataset("carolo-synth", image_size=80, verbose=False)
    out = [(f"SignNet {k}", "signnet", ROOT / "models" / "signnet" / "verification" /
            f"signnet_{k}.tflite", sign) for k in ("int8", "float")]
    r56 = resnet56_int8(Path(args.cache_dir), not args.no_convert)
    if r56 is None:
        print("ResNet56 int8 not found (run without --no-convert); skipped")
    else:
        cifar = load_dataset("cifar100", data_dir=args.cifar, image_size=32, verbose=False)
        out.append(("ResNet56 int8", "resnet56", r56, cifar))
    wanted = [o.lower() for o in args.only or ()]
    return [c for c in out if not wanted or any(o in c[0].lower() for o in wanted)]


def same(a, b) -> bool:
    return (a.predictions.probs.tobytes() == b.predictions.probs.tobytes()
            and np.array_equal(a.predictions.index, b.predictions.index))


def measure(label, entry_name, path, ds, configs, passes: int, tile: int) -> dict:
    """Alternate the configurations ``passes`` times; per configuration the medians."""
    from benchmark.models.registry import get_model
    entry = get_model(entry_name)
    idx = np.tile(ds.split("verification")[1], tile)
    kind = "float" if "float" in path.name else "int8"
    v = Variant(kind, kind, "cpu", path, 8 if kind == "int8" else None)
    run = {name: [] for name, _ in configs}
    ref, identical, first_wall = None, True, {}
    before = load()
    for _ in range(passes + 1):                  # pass 0 warms up (batch-N copy, workers)
        for name, settings in configs:
            r = evaluate_variant(v, ds, idx, preprocess=entry.preprocess,
                                 logits=entry.outputs == "logits", settings=settings)
            if name not in first_wall:
                first_wall[name] = idx.size / r.wall_seconds
                continue
            ref = ref or r
            identical &= same(r, ref)
            run[name].append((r.predictions.images_per_second, idx.size / r.wall_seconds,
                              r.runtime))
    res = {"model": label, "file": str(path), "images": int(idx.size), "load_before": before,
           "load_after": load(), "identical": bool(identical), "configs": {}}
    for name, rows in run.items():
        ips = [x[0] for x in rows]
        res["configs"][name] = {
            "img_s": statistics.median(ips), "min": min(ips), "max": max(ips),
            "wall_img_s": statistics.median(x[1] for x in rows),
            "first_wall_img_s": first_wall[name], "plan": rows[-1][2].get("plan", ""),
            "xnnpack": rows[-1][2].get("xnnpack")}
    return res


def report(res: dict) -> None:
    c = res["configs"]
    base = c["today"]["img_s"]
    print(f"\n{res['model']}  ({res['images']} images; {res['load_before']} -> "
          f"{res['load_after']}; bit-identical: {res['identical']})")
    print(f"  {'config':10s} {'img/s':>8s} {'min-max':>13s} {'x today':>8s} {'wall/s':>8s} "
          f"{'1st wall':>8s}  plan")
    for name, r in c.items():
        print(f"  {name:10s} {r['img_s']:8.0f} {r['min']:6.0f}-{r['max']:<6.0f} "
              f"{r['img_s'] / base:8.2f} {r['wall_img_s']:8.0f} {r['first_wall_img_s']:8.0f}  "
              f"{r['plan']}{'' if r['xnnpack'] else ' (no XNNPACK!)'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=7, help="timed passes per configuration")
    ap.add_argument("--tile", type=int, default=1,
                    help="evaluate the verification split this many times per pass")
    ap.add_argument("--matrix", action="store_true", help="also time fixed configurations")
    ap.add_argument("--configs", nargs="*", help="with --matrix: only these labels (b64 w1 t2)")
    ap.add_argument("--only", nargs="*", help="models whose label contains one of these")
    ap.add_argument("--cache-dir", default="/tmp/eval-cache", help="for the ResNet56 conversion")
    ap.add_argument("--cifar", default="/work/shared/data/cifar100")
    ap.add_argument("--no-convert", action="store_true")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    matrix = [m for m in MATRIX if not args.configs or m[0] in args.configs]
    configs = [("today", TODAY), ("auto", AUTO)] + (matrix if args.matrix else [])
    print(f"cores {os.cpu_count()}; {uptime()}")
    results = [measure(*c, configs, args.passes, args.tile) for c in cases(args)]
    for res in results:
        report(res)
    print("\nauto vs today: " + ", ".join(
        f"{r['model']} x{r['configs']['auto']['img_s'] / r['configs']['today']['img_s']:.2f}"
        f"{'' if r['identical'] else ' (NOT identical)'}" for r in results))
    print(uptime())
    if args.json:
        Path(args.json).write_text(json.dumps({"command": sys.argv, "results": results},
                                              indent=2, default=str))
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
