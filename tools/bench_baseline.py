#!/usr/bin/env python3
"""The harness of git revision REV vs this checkout's, on the same model files (not a test).

Issue #17 asks for "ResNet56 int8 evaluation >= 1.35x today's throughput, SignNet int8
>= 1.25x": *today* being the harness as it was when the issue was filed (0fa25a7).
``tools/bench_eval.py`` emulates that path with this checkout's code (batch 1, one
process); this script runs the old code itself. For each model, rounds alternate a child
process running REV's ``benchmark.evaluate.evaluate`` (``make_backend('cpu', ...)``, batch
64 of preprocessing, batch-1 invokes, all cores' threads: REV's defaults) with a child running
this checkout's ``evaluate_variant`` (automatic plan), both on the same ``.tflite`` file and
the same images (the verification split tiled ``--tile`` times), each loading its dataset
through its own loader (and cache). Each child warms up once, then times ``--passes``
evaluations and reports the median ``images_per_second`` (the inference calls, as each
revision records it in results.json) and the SHA-256 of its output probabilities; the parent
prints the medians over rounds, their ratio, whether the outputs are bit-identical, and the
load average before and after.

``python tools/bench_baseline.py [--rev 0fa25a7] [--rounds 5] [--passes 3] [--tile 8]``
(needs /work/shared for ResNet56; the ResNet56 int8 file is the one ``bench_eval.py``
converts into ``--cache-dir``.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_eval  # this directory is sys.path[0] (a script here, or via bench_all)
from bench_eval import load

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CIFAR = SHARED / "data" / "cifar100"

DRIVER = r"""
import hashlib, json, statistics, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from benchmark.datasets.registry import load_dataset
from benchmark.models.registry import get_model
kind, entry_name, model, data, size, tile, passes, cache = sys.argv[2:10]
kw = dict(image_size=int(size), verbose=False, cache_dir=cache)
if data != "carolo-synth":
    kw["data_dir"] = data
ds = load_dataset("carolo-synth" if data == "carolo-synth" else "cifar100", **kw)
idx = np.tile(ds.split("verification")[1], int(tile))
entry = get_model(entry_name)
logits = entry.outputs == "logits"
if kind == "old":
    from benchmark.backends import make_backend
    from benchmark.evaluate import evaluate
    with make_backend("cpu", model) as b:
        def once():
            return evaluate(b, ds.images, ds.labels, idx, preprocess=entry.preprocess,
                            logits=logits)
        runs = [once() for _ in range(int(passes) + 1)][1:]
else:
    from benchmark.evaluate import EvalSettings, evaluate_variant
    from pathlib import Path
    from benchmark.variants import Variant
    v = Variant("int8", "int8", "cpu", Path(model), 8)
    def once():
        return evaluate_variant(v, ds, idx, preprocess=entry.preprocess, logits=logits,
                                settings=EvalSettings()).predictions
    runs = [once() for _ in range(int(passes) + 1)][1:]
p = runs[-1]
print(json.dumps({"img_s": statistics.median(r.images_per_second for r in runs),
                  "sha256": hashlib.sha256(np.ascontiguousarray(p.probs).tobytes()).hexdigest(),
                  "images": int(idx.size)}))
"""


def export_revision(rev: str, dest: Path) -> Path:
    """The files of git revision ``rev`` (``git archive``) extracted into a new ``dest``."""
    dest.mkdir()
    tar = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                         capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    return dest


def child(kind: str, src: Path, case: tuple, args, cache: Path) -> dict:
    label, entry, model, data, size = case
    out = subprocess.run([sys.executable, "-c", DRIVER, str(src), kind, entry, str(model), data,
                          str(size), str(args.tile), str(args.passes), str(cache)],
                         cwd=src, capture_output=True, text=True,
                         env={**os.environ, "EDGETPU_BENCH_PROGRESS": "0"})
    if out.returncode:
        sys.exit(f"{label} ({kind}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cases(args) -> list[tuple]:
    sign = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"
    out = [("SignNet int8", "signnet", sign, "carolo-synth", 80)]
    r56 = bench_eval.resnet56_int8(Path(args.cache_dir), convert=False)
    if CIFAR.is_dir() and r56 is not None:
        out.append(("ResNet56 int8", "resnet56", r56, str(CIFAR), 32))
    else:
        print(f"ResNet56 skipped: no {CIFAR} or no converted resnet56_int8.tflite in "
              f"{args.cache_dir} (run tools/bench_eval.py once)")
    return out


def measure(case, old_src: Path, args, tmp: Path) -> dict:
    caches = {"old": tmp / "old-cache", "new": Path(args.new_cache)}
    srcs = {"old": old_src, "new": ROOT}
    got = {"old": [], "new": []}
    shas, before = set(), load()
    for r in range(args.rounds):
        for kind in (("old", "new") if r % 2 == 0 else ("new", "old")):
            res = child(kind, srcs[kind], case, args, caches[kind])
            got[kind].append(res["img_s"])
            shas.add(res["sha256"])
    med = {k: statistics.median(v) for k, v in got.items()}
    print(f"{case[0]} ({res['images']} images, {args.rounds} rounds x {args.passes} passes; "
          f"{before} -> {load()}): {args.rev} {med['old']:.0f} img/s "
          f"[{min(got['old']):.0f}-{max(got['old']):.0f}], now {med['new']:.0f} img/s "
          f"[{min(got['new']):.0f}-{max(got['new']):.0f}]: x{med['new'] / med['old']:.2f}; "
          f"bit-identical: {len(shas) == 1}", flush=True)
    return {"rev": args.rev, "img_s": med, "all": got, "identical": len(shas) == 1,
            "ratio": med["new"] / med["old"]}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rev", default="0fa25a7", help="the baseline revision (default: the "
                   "commit issue #17 was measured at)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--tile", type=int, default=8, help="repeat the verification split N times")
    p.add_argument("--cache-dir", default="/tmp/eval-cache",
                   help="where bench_eval.py converted ResNet56 (default /tmp/eval-cache)")
    p.add_argument("--new-cache", default=str(ROOT / "datasets" / "cache"),
                   help="this checkout's dataset cache (default datasets/cache)")
    p.add_argument("--json", help="also write the results as JSON to this file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"baseline {args.rev} vs {commit}, {os.cpu_count()} cores, {load()}", flush=True)
    out = run_all(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def run_all(args) -> dict:
    """Every case measured (``{label: measure(...)}``); ``args`` as :func:`parse_args` gives."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as t:
        tmp = Path(t)
        src = export_revision(args.rev, tmp / "src")
        for case in cases(args):
            out[case[0]] = measure(case, src, args, tmp)
    return out


if __name__ == "__main__":
    sys.exit(main())
