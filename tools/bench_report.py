#!/usr/bin/env python3
"""Benchmark the HTML report (not a test): prints, in one run,

1. the report's share of a warm ``benchmark.run --split verification``, end to
   end (the run with its report vs ``--no-report``, a new run directory each
   time, figures from the cache shared across runs, :mod:`benchmark.figcache`)
   and for ``write_report`` alone, timed in a fresh child process on one run
   directory with every figure drawn (cold: data never drawn before), from the
   shared cache, and rebuilt from the run's own cache (warm); share = report /
   (run_no_report + report). Rounds alternate the measurements and medians
   are compared; the load average is printed.
2. a synthetic 1000-class run (written with ``benchmark.rundir.RunWriter``):
   its report's time and peak RSS (``resource.getrusage`` of the child that
   builds it, workers included).

Targets: report <= 25 % of a warm verification run; the 1000-class report
<= 15 s and <= 1.5 GB peak.

``python tools/bench_report.py [--rounds 3] [--classes 1000] [--images 50000]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A child process: time write_report on a run directory, print JSON.
_CHILD = """
import json, resource, shutil, sys, time
from pathlib import Path
from benchmark import report
from benchmark.figcache import shared_dir
run, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode in ("cold", "shared"):
    shutil.rmtree(run / report.FIGURE_CACHE, ignore_errors=True)
t0 = time.perf_counter()
report.write_report([run], out, figure_cache=shared_dir() if mode == "shared" else None)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "worker_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  **report.LAST_RENDER}))
"""


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def time_report(run: Path, out: Path, cold: bool | str) -> dict:
    """``write_report`` timed in a fresh process. ``cold`` (True): the run's figure cache
    removed and no shared cache (every figure drawn: data never drawn before); ``"shared"``:
    the run's cache removed, the shared cache of the default cache dir used (what
    ``benchmark.run`` does for a new run whose data was drawn before); False: a rebuild."""
    mode = cold if isinstance(cold, str) else "cold" if cold else "warm"
    r = subprocess.run([sys.executable, "-c", _CHILD, str(run), str(out), mode], cwd=ROOT,
                       check=True, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def time_run(out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "benchmark.run", "--split", "verification",
                        "--quiet", "--out", str(out), *extra], cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"benchmark.run failed:\n{r.stderr[-3000:]}")
    return seconds


def synthetic_run(out: Path, n_classes: int = 1000, n_images: int = 50_000, *,
                  seed: int = 0, n_boot: int = 200) -> Path:
    """Write a float + int8 run of ``n_classes`` classes with RunWriter; return its directory.

    Float probabilities are a softmax of noise plus a boost on the predicted
    class (75 % right, the rest spread over 1..3 neighbours, so the largest
    confusions are concentrated); int8 rounds them to multiples of 1/256 as a
    dequantized int8 output does. The int8 variant carries latency samples.
    """
    from benchmark.compare import compare_predictions
    from benchmark.evaluate import Predictions, summarize
    from benchmark.metrics import agreement
    from benchmark.metrics.swaps import swap_summary
    from benchmark.rundir import RunWriter, run_header
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_images).astype(np.int64)
    pred = labels.copy()
    wrong = rng.random(n_images) < 0.25
    pred[wrong] = (labels[wrong] + rng.integers(1, 4, int(wrong.sum()))) % n_classes
    probs = rng.standard_normal((n_images, n_classes), dtype=np.float32)
    probs[np.arange(n_images), pred] += rng.uniform(2.0, 9.0, n_images).astype(np.float32)
    probs -= probs.max(axis=1, keepdims=True)
    np.exp(probs, out=probs)
    probs /= probs.sum(axis=1, keepdims=True)
    q = (np.round(probs * 256) / 256).astype(np.float32)
    index = np.arange(n_images, dtype=np.int64)
    names = [f"class_{i:04d}" for i in range(n_classes)]
    record = {"split": "verification", "dataset": f"synthetic-{n_classes}",
              "n_train": 0, "n_eval": n_images, "class_names": names, "variants": {}}
    arrays = {}
    for v, p, kind in (("float", probs, "float"), ("int8", q, "int8")):
        summary, cm = summarize(p, labels, num_classes=n_classes)
        record["variants"][v] = dict(summary, device="cpu", kind=kind,
                                     weight_bits=8 if kind == "int8" else None,
                                     reference="float" if kind == "int8" else None)
        arrays[v] = {"confusion": cm, "probs": p, "labels": labels, "index": index}
    lat = rng.gamma(20.0, 0.05, 1000)
    record["variants"]["int8"]["latency"] = {
        "mean_ms": float(lat.mean()), "std_ms": float(lat.std()),
        **{f"p{k}_ms": float(np.percentile(lat, k)) for k in (50, 90, 99)},
        "throughput_per_s": float(1000 / lat.mean()), "first_invoke_ms": float(lat[0] * 3),
        "samples_ms": lat.round(4).tolist()}
    ref, qp = (Predictions(x, labels, index, 1.0) for x in (probs, q))
    record["agreement"] = compare_predictions(ref, qp)
    sw = {"agreement_with_float": agreement(probs.argmax(1), q.argmax(1))}
    sw.update(swap_summary(probs, q, labels, bins=10, n_boot=n_boot, seed=seed))
    record["swaps"] = {"reference": "float", "int8": sw}
    writer = RunWriter(out, ("verification",), run_header({"synthetic": True}, {}))
    writer.write_split(record, arrays)
    writer.finish()
    return Path(out)


def share_of_run(rounds: int, tmp: Path) -> dict:
    """Print and return the report's share of a warm verification run, measured two ways.

    End to end: ``benchmark.run --split verification`` with its report (a new run
    directory each time, so the report is always built; figures come from the shared
    cache) vs ``--no-report``. In a child: ``write_report`` alone on one run directory,
    with every figure drawn (cold), from the shared cache, and rebuilt (warm);
    share = report / (run without report + report). Rounds interleave everything.
    """
    print(f"[{load()}] one benchmark.run --split verification (with its report) for the run "
          "directory, then rounds of: run --no-report, run with report, report cold / shared / "
          "warm")
    run = tmp / "verification"
    time_run(run)
    norep, withrep = [], []
    child = {"cold": [], "shared": [], "warm": []}
    for i in range(rounds):
        norep.append(time_run(tmp / f"norep{i}", "--no-report"))
        withrep.append(time_run(tmp / f"rep{i}"))
        for mode, res in child.items():
            res.append(time_report(run, tmp / f"{mode}{i}.html",
                                   {"cold": True, "warm": False}.get(mode, mode)))
        print(f"  round {i + 1}: run --no-report {norep[-1]:.2f} s, with report "
              f"{withrep[-1]:.2f} s; report cold {child['cold'][-1]['seconds']:.2f} s "
              f"({child['cold'][-1]['rendered']} figures drawn, {child['cold'][-1]['workers']} "
              f"workers), shared {child['shared'][-1]['seconds']:.2f} s "
              f"({child['shared'][-1].get('shared')} from the shared cache), warm "
              f"{child['warm'][-1]['seconds']:.2f} s  [{load()}]", flush=True)
    n, w = statistics.median(norep), statistics.median(withrep)
    out = {"run_no_report_s": n, "run_with_report_s": w, "end_to_end_share": (w - n) / w,
           "spread_s": max(norep) - min(norep)}
    print(f"end to end: warm verification run {w:.2f} s with its report, {n:.2f} s without "
          f"(medians): difference {w - n:+.2f} s = {100 * out['end_to_end_share']:+.1f} % of the "
          f"run (run-to-run spread without the report {out['spread_s']:.2f} s)")
    for mode, label in (("cold", "every figure drawn (data never drawn before)"),
                        ("shared", "figures from the shared cache (a new run, data drawn "
                                   "before)"),
                        ("warm", "rebuilt from the same run")):
        r = statistics.median(x["seconds"] for x in child[mode])
        out[f"{mode}_s"], out[f"{mode}_share"] = r, r / (n + r)
        print(f"report alone, {label}: {r:.2f} s = {100 * r / (n + r):.1f} % of a warm "
              f"verification run ({n:.2f} s without the report + {r:.2f} s)")
    print("target: <= 25 %")
    return out


def thousand_classes(tmp: Path, classes: int, images: int, rounds: int) -> dict:
    t0 = time.perf_counter()
    # written by another process: a child inherits its parent's peak RSS across fork + exec,
    # so this process must stay small for the children's getrusage to mean their own peak
    run = tmp / f"synthetic{classes}"
    subprocess.run([sys.executable, __file__, "--write-synthetic", str(run), "--classes",
                    str(classes), "--images", str(images)], cwd=ROOT, check=True)
    print(f"[{load()}] synthetic run: {classes} classes, {images} images, float + int8 "
          f"(written in {time.perf_counter() - t0:.1f} s)")
    res = [time_report(run, tmp / f"synthetic{i}.html", cold=True) for i in range(rounds)]
    for i, r in enumerate(res):
        workers = (f"{r['workers']} workers, the largest {r['worker_peak_kb'] / 1024:.0f} MB"
                   if r["workers"] else "drawn in the report process")
        print(f"  round {i + 1}: {r['seconds']:.2f} s, peak RSS {r['peak_kb'] / 1024:.0f} MB "
              f"({r['rendered']} figures, {workers})  [{load()}]")
    kb = max(max(r["peak_kb"], r["worker_peak_kb"]) for r in res)
    secs = statistics.median(r["seconds"] for r in res)
    size = (tmp / "synthetic0.html").stat().st_size
    print(f"{classes}-class report (cold cache): median {secs:.2f} s, peak RSS {kb / 1024:.0f} MB "
          f"(largest process), report.html {size // 1024} KiB; target <= 15 s and <= 1.5 GB")
    return {"seconds": secs, "peak_mb": kb / 1024, "html_kib": size // 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--images", type=int, default=50_000,
                    help="images of the synthetic run (ImageNet's validation set: 50,000)")
    ap.add_argument("--skip-run", action="store_true", help="only the synthetic run")
    ap.add_argument("--write-synthetic", type=Path, metavar="DIR",
                    help="only write the synthetic run into DIR")
    args = ap.parse_args(argv)
    if args.write_synthetic:
        synthetic_run(args.write_synthetic, args.classes, args.images)
        return 0
    print(f"python tools/bench_report.py {' '.join(argv or sys.argv[1:])}".rstrip()
          + f"  ({os.cpu_count()} CPUs, {load()})")
    with tempfile.TemporaryDirectory() as d:
        if not args.skip_run:
            share_of_run(args.rounds, Path(d))
        thousand_classes(Path(d), args.classes, args.images, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
