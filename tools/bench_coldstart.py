#!/usr/bin/env python3
"""Cold-start benchmark (not a test): dataset builds and conversion, measured in one run.

1. carolo-synth rendering (default spec: 12 sessions x 30 classes x 16, 80 px)
   with 1 worker (serial) and with the pool (every core).
2. GTSRB decoding (official archives, 80 px, 51,839 images) serial and pooled,
   with the peak RSS of the loading process (``ru_maxrss`` of a child that
   does nothing but the cold load) and of its largest worker.
3. Peak RSS of reading warm GTSRB's evaluated rows chunk by chunk (like an
   evaluation loop), ``verification`` (12,630) vs ``full`` (51,839), without
   and with :func:`benchmark.datasets.cache.release` after each chunk.
4. A pretrained ResNet20 ``--weights`` conversion (float + int8, dataset
   cache warm), and whether the converted bytes equal the baseline's.

Every measurement runs in a fresh child process with a fresh cache directory
under /tmp. ``--baseline REV`` also measures the code of git revision REV
(``git archive`` into /tmp; its loaders are serial), so before/after come
from the same run. The load average is printed with every number, and the
CPU seconds of the child and its workers (``os.wait4``): on a machine busy
with other sessions' work the pool can only use the cores left over.

Target: cold GTSRB peak RSS <= 0.8 GB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GTSRB_PEAK_TARGET_GB = 0.8

#: Child program: load one dataset cold, print seconds and peak RSS (self, largest child).
LOAD = r"""
import json, resource, sys, time
from benchmark.datasets.registry import load_dataset
name, size, data_dir, cache_dir = sys.argv[1:5]
t0 = time.perf_counter()
ds = load_dataset(name, image_size=int(size), data_dir=data_dir or None, cache_dir=cache_dir,
                  verbose=False)
seconds = time.perf_counter() - t0
meta = ds.meta
try:  # workers are the forkserver's children: stop it so their peak counts as ours
    from multiprocessing import forkserver
    forkserver._forkserver._stop()
except Exception:
    pass
print(json.dumps({"seconds": seconds, "n": len(ds),
                  "build_seconds": meta.get("decode_seconds", meta.get("render_seconds")),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

#: Child program: a pretrained conversion (dataset cache warmed first), timed.
CONVERT = r"""
import json, sys, time
from pathlib import Path
from benchmark.cli import require_tensorflow
require_tensorflow("conversion")
from benchmark.convert import ConvertConfig, convert
from benchmark.datasets.registry import load_dataset
model, weights, data_dir, cache_dir, out = sys.argv[1:6]
load_dataset("cifar100", image_size=32, data_dir=data_dir, cache_dir=cache_dir, verbose=False)
t0 = time.perf_counter()
convert(ConvertConfig(split="verification", model=model, weights=weights, data_dir=data_dir,
                      cache_dir=Path(cache_dir), model_dir=Path(out)))
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


#: Child program: read a warm dataset's evaluated rows chunk by chunk (as an evaluation loop
#: does), with or without cache.release() of each finished chunk; peak RSS.
READ = r"""
import json, resource, sys
import numpy as np
from benchmark.datasets import cache
from benchmark.datasets.registry import load_dataset
name, size, data_dir, cache_dir, split, release = sys.argv[1:7]
ds = load_dataset(name, image_size=int(size), data_dir=data_dir or None, cache_dir=cache_dir,
                  verbose=False)
_, ev = ds.split(split)
total = 0
for s in range(0, ev.size, 1024):
    idx = ev[s:s + 1024]
    total += int(np.asarray(ds.images[idx]).sum(dtype=np.int64))
    if release == "1":
        cache.release(ds.images, int(idx[0]), int(idx[-1]) + 1)
print(json.dumps({"n": int(ev.size), "checksum": total,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def child(program: str, args: list[str], src: Path, workers: int | None) -> dict:
    """Run ``program`` in a fresh interpreter with ``src`` on the path; its last JSON line."""
    env = dict(os.environ, PYTHONPATH=str(src), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("EDGETPU_BENCH_DATA_WORKERS", None)
    if workers is not None:
        env["EDGETPU_BENCH_DATA_WORKERS"] = str(workers)
    before = load_avg()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", program, *args], stdout=out, stderr=err,
                                env=env, cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(proc.pid, 0)  # CPU of the child and its waited-for workers
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"child failed ({' '.join(args)}):\n{err.read()[-2000:]}")
        res = json.loads(out.read().strip().splitlines()[-1])
    res["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    res["load"] = f"{before} -> {load_avg()}"
    return res


def dataset_rows(name: str, size: int, data_dir: str, versions: dict, tmp: Path,
                 rounds: int) -> list:
    """(label, result) for each round, code version and worker setting; fresh cache each.

    The settings alternate within a round, so a change of load hits them alike.
    """
    rows = []
    for rnd in range(rounds):
        for version, src in versions.items():
            for workers in ((None,) if version != "current" else (1, None)):
                label = f"{version}, {'1 worker' if workers == 1 else 'pool'}" \
                    if version == "current" else f"{version} (serial)"
                cache = tmp / f"{name}-{version}-{workers}-{rnd}"
                res = child(LOAD, [name, str(size), data_dir, str(cache)], src, workers)
                rows.append((label, res))
                print(f"  {name:13s} {label:24s} {res['seconds']:6.1f} s (build "
                      f"{res['build_seconds']:5.1f} s, cpu {res['cpu_seconds']:5.1f} s), peak "
                      f"RSS {res['peak_mb']:5.0f} MB, largest worker "
                      f"{res['worker_peak_mb']:4.0f} MB  [load {res['load']}]", flush=True)
                shutil.rmtree(cache, ignore_errors=True)
    return rows


def summary(name: str, rows: list) -> None:
    """Median wall time per setting and the speed-up of the pool over 1 worker."""
    by: dict[str, list] = {}
    for label, res in rows:
        by.setdefault(label, []).append(res)
    med = {label: statistics.median(r["seconds"] for r in rs) for label, rs in by.items()}
    for label, sec in med.items():
        peak = max(r["peak_mb"] for r in by[label])
        print(f"  {name:13s} {label:24s} median {sec:6.1f} s, max peak RSS {peak:5.0f} MB")
    serial = next((s for label, s in med.items() if label.endswith("1 worker")), None)
    pool = next((s for label, s in med.items() if label.endswith("pool")), None)
    if serial and pool:
        print(f"  {name:13s} pool / 1 worker: x{serial / pool:.2f} faster")


def read_rows(name: str, size: int, data_dir: str, tmp: Path) -> list:
    """Peak RSS of reading a warm dataset's evaluated rows, per split, with/without release."""
    cache = tmp / f"{name}-warm"
    child(LOAD, [name, str(size), data_dir, str(cache)], ROOT, None)
    rows = []
    for split in ("verification", "full"):
        for release in ("0", "1"):
            res = child(READ, [name, str(size), data_dir, str(cache), split, release], ROOT,
                        None)
            label = f"{split}, {'release()' if release == '1' else 'no release'}"
            rows.append((label, res))
            print(f"  {name:13s} warm read {label:26s} {res['n']:6d} rows, peak RSS "
                  f"{res['peak_mb']:5.0f} MB  [load {res['load']}]", flush=True)
    shutil.rmtree(cache, ignore_errors=True)
    peak = {label: r["peak_mb"] for label, r in rows}
    for how in ("no release", "release()"):
        print(f"  {name:13s} warm read full / verification peak, {how}: "
              f"x{peak[f'full, {how}'] / peak[f'verification, {how}']:.2f}")
    return rows


def blobs(model_dir: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(model_dir.rglob("*.tflite"))}


def conversion_rows(args, versions: dict, tmp: Path) -> list:
    rows, hashes = [], {}
    cache = tmp / "cifar100-cache"
    for version, src in versions.items():
        out = tmp / f"convert-{version}"
        res = child(CONVERT, [args.model, args.weights, args.cifar_dir, str(cache), str(out)],
                    src, None)
        hashes[version] = blobs(out)
        rows.append((version, res))
        print(f"  convert {args.model} {version:18s} {res['seconds']:6.1f} s  "
              f"{hashes[version]}  [load {res['load']}]", flush=True)
    if len(hashes) == 2:
        same = len(set(json.dumps(h, sort_keys=True) for h in hashes.values())) == 1
        print(f"  converted .tflite bytes identical to the baseline: {same}")
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    p.add_argument("--gtsrb-dir", default=str(SHARED / "data" / "gtsrb"))
    p.add_argument("--cifar-dir", default=str(SHARED / "data" / "cifar100"))
    p.add_argument("--model", default="resnet20")
    p.add_argument("--weights",
                   default=str(SHARED / "models" / "cifar100_resnet" / "cifar100_resnet20.npz"))
    p.add_argument("--skip", nargs="*", default=[], choices=("synth", "gtsrb", "convert"))
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat the dataset measurements, interleaved (medians reported)")
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"cores {os.cpu_count()}, load {load_avg()}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as d:
        tmp = Path(d)
        versions = {"current": ROOT}
        if args.baseline:
            from bench_baseline import export_revision
            base = export_revision(args.baseline, tmp / "baseline-src")
            versions = {f"baseline {args.baseline}": base, "current": ROOT}
        results = {}
        if "synth" not in args.skip:
            results["carolo-synth"] = dataset_rows("carolo-synth", 80, "", versions, tmp,
                                                   args.rounds)
            summary("carolo-synth", results["carolo-synth"])
        if "gtsrb" not in args.skip:
            results["gtsrb"] = dataset_rows("gtsrb", 80, args.gtsrb_dir, versions, tmp,
                                            args.rounds)
            summary("gtsrb", results["gtsrb"])
            peak = max(r["peak_mb"] for label, r in results["gtsrb"] if label.endswith("pool"))
            verdict = "PASS" if peak / 1024 <= GTSRB_PEAK_TARGET_GB else "FAIL"
            print(f"  cold GTSRB peak RSS {peak / 1024:.2f} GB (target <= "
                  f"{GTSRB_PEAK_TARGET_GB} GB): {verdict}")
            results["gtsrb-read"] = read_rows("gtsrb", 80, args.gtsrb_dir, tmp)
        if "convert" not in args.skip:
            results["convert"] = conversion_rows(args, versions, tmp)
    if args.out:
        args.out.write_text(json.dumps({"command": sys.argv, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
