#!/usr/bin/env python3
"""Benchmark of studies (not a test): prints numbers measured in one run.

1. Study throughput with 1 vs 2 local workers: the SignNet study
   {full, verification} x {float, int8, w6, w4} (8 cells, ``--limit`` images
   each, prediction cache off so every cell computes), each in a new study
   directory; images evaluated per second of wall time, and the speed-up.
2. Ray vs local overhead: the same study with ``--executor ray`` (a local Ray
   of 2 CPUs, started and stopped inside the timed call) vs the local pool of 2.
3. Peak RSS of one cell at 10k vs 50k images: ``benchmark.run`` of a float +
   int8 cell as a study runs it (one worker process, one thread, no prediction
   cache) on a carolo-synth of 105 sessions (50,400 images, rendered once
   into a temporary cache first, not timed), ``--split full --limit 10000``
   and all 50,400; the child's peak RSS from ``wait4``. Flat means the ratio
   stays near 1.

    .venv/bin/python tools/bench_study.py [--limit 1440] [--skip-rss]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STUDY = """name = "bench"
splits = ["full", "verification"]
variants = ["float", "int8", "w6", "w4"]
limit = {limit}
[[models]]
name = "signnet"
model_dir = "{models}"
[run]
prediction_cache = false
"""


def time_study(path: Path, out: Path, executor: str, workers: int) -> tuple[float, int]:
    """``(wall seconds, images evaluated)`` of one study run into a new directory."""
    from benchmark.study.runner import run_study, summary
    from benchmark.study.spec import load_study
    study = load_study(path, out=out)
    t0 = time.perf_counter()
    if executor == "ray":
        import ray
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        print(f"  (ray.init: {time.perf_counter() - t0:.1f} s)")
        try:
            result = run_study(study, executor="ray", quiet=True, report=False)
        finally:
            ray.shutdown()
    else:
        result = run_study(study, executor="local", workers=workers, quiet=True, report=False)
    wall = time.perf_counter() - t0
    if result.failed or result.ran != len(result.states):
        raise SystemExit(summary(result, "bench"))
    images = 0
    from benchmark.rundir import read_run
    for st in result.states:
        rec = read_run(st.dir).splits[st.cell.split].record
        images += rec["n_eval"] * len(rec["variants"])
    return wall, images


def peak_rss(args: list[str], env: dict) -> tuple[float, float]:
    """``(peak RSS MB, wall seconds)`` of ``python -m benchmark.run ARGS`` (wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "benchmark.run", *args], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark.run {' '.join(args)} failed: {p.stderr.read()[-500:]}")
    return usage.ru_maxrss / 1024, wall


def rss_section(tmp: Path) -> None:
    env = dict(os.environ, EDGETPU_BENCH_CACHE=str(tmp / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    common = ["--split", "full", "--synth-sessions", "105", "--variants", "float,int8",
              "--workers", "1", "--num-threads", "1", "--no-prediction-cache", "--no-report",
              "--quiet"]
    t0 = time.perf_counter()
    peak_rss([*common, "--limit", "10", "--out", str(tmp / "warm")], env)  # renders the data
    print(f"  carolo-synth, 105 sessions (50,400 images) rendered in "
          f"{time.perf_counter() - t0:.0f} s (not part of the numbers below)")
    rows = []
    for n in (10000, None):
        lim = ["--limit", str(n)] if n else []
        mb, wall = peak_rss([*common, *lim, "--out", str(tmp / f"rss{n}")], env)
        rows.append((n or 50400, mb, wall))
        print(f"  {n or 50400:6d} images: peak RSS {mb:6.0f} MB, {wall:5.1f} s")
    print(f"  ratio 50k / 10k: x{rows[1][1] / rows[0][1]:.2f} (flat: near 1)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=1440, help="images per cell (default 1440)")
    p.add_argument("--skip-rss", action="store_true", help="leave out the RSS measurement")
    a = p.parse_args(argv)
    print(f"# tools/bench_study.py --limit {a.limit}{' --skip-rss' if a.skip_rss else ''}")
    print(f"# {platform.node()}: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        study = tmp / "bench.toml"
        study.write_text(STUDY.format(limit=a.limit, models=ROOT / "models"))
        print("1. study throughput, 8 SignNet cells, local process pool")
        one = time_study(study, tmp / "w1", "local", 1)
        two = time_study(study, tmp / "w2", "local", 2)
        for name, (wall, n) in (("1 worker ", one), ("2 workers", two)):
            print(f"  {name}: {wall:6.1f} s, {n} images, {n / wall:7.0f} img/s")
        print(f"  speed-up 2 vs 1 workers: x{one[0] / two[0]:.2f}")
        print("2. Ray (local, 2 CPUs, start and stop included) vs local pool of 2")
        try:
            ray_t = time_study(study, tmp / "ray", "ray", 2)
            print(f"  ray      : {ray_t[0]:6.1f} s, {ray_t[1] / ray_t[0]:7.0f} img/s; overhead "
                  f"{ray_t[0] - two[0]:+.1f} s ({ray_t[0] / two[0]:.2f} x the local pool)")
        except ImportError:
            print("  ray is not installed (pip install -e '.[study]'): skipped")
        if not a.skip_rss:
            print("3. peak RSS of one cell (float + int8, 1 worker, 1 thread), warm data")
            rss_section(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
