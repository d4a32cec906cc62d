#!/usr/bin/env python3
"""Benchmark the mse activation observer (not a test): prints ratios measured in one run.

1. Range search, exhaustive (every candidate scored with
   ``quantization_error``, the search before the prefix-sum error model) vs
   the fast default ``mse_bins``, on the same captured activation
   histograms of a ResNet20 (CIFAR-100, pretrained weights), interleaved per
   histogram; also checks that both pick the same bins.
2. ResNet20 conversion time with ``--act-observer mse`` vs ``minmax``: each
   round runs ``benchmark.run`` (pretrained path, ``--no-report``) in a
   fresh process with a fresh cache directory, so the conversion is never
   reused; rounds alternate the observers. The conversion is timed inside
   the process (``convert_pretrained``: export, float and int8 conversion,
   calibration, histograms, range search), the whole run from outside.
   ``--old-mse`` adds one round with the exhaustive search and the previous
   ``np.histogram`` binning (slow: minutes).

The histograms are captured by the first mse round (or taken from
``--hists``). Target (issue 17): mse conversion <= 1.5x min-max.

    nice -n 0 .venv/bin/python tools/bench_observer.py --rounds 2
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

SHARED = ROOT.parent / "shared"
WEIGHTS = SHARED / "models" / "cifar100_resnet" / "cifar100_resnet20.npz"
DATA_DIR = SHARED / "data" / "cifar100"


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def _old_collect_histograms(calibrated, inputs, tensors, *, bins=2048):
    """collect_histograms as it was: one ``np.histogram`` (sorting) per tensor and image."""
    import warnings

    from benchmark.backends.runtime import find_runtime

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interp = find_runtime().Interpreter(model_content=calibrated,
                                            experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    in_index = interp.get_input_details()[0]["index"]
    hists = {}
    for i, (lo, hi) in tensors.items():
        hi = hi if hi > lo else lo + 1e-6
        hists[i] = (np.zeros(bins, np.int64), np.linspace(lo, hi, bins + 1))
    for k in range(inputs.shape[0]):
        interp.set_tensor(in_index, inputs[k:k + 1].astype(np.float32))
        interp.invoke()
        for i, (counts, edges) in hists.items():
            v = interp.get_tensor(i).ravel()
            c, _ = np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)
            counts += c
    return hists


def run_one(args) -> None:
    """One ``benchmark.run`` in this process; prints a JSON line of timings."""
    from benchmark import convert
    from benchmark.quant import observers

    if args.impl == "old":
        observers.mse_bins = observers._mse_bins_exhaustive
        observers.collect_histograms = _old_collect_histograms
    timings = {"search_s": 0.0, "collect_s": 0.0}

    def timed(fn, key):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        return wrapper

    collect = timed(observers.collect_histograms, "collect_s")
    captured = {}

    def capture(*a, **k):
        hists = collect(*a, **k)
        captured.update(hists)
        return hists

    observers.collect_histograms = capture
    observers.mse_bins = timed(observers.mse_bins, "search_s")
    convert.convert_pretrained = timed(convert.convert_pretrained, "convert_s")
    from benchmark.run import main

    rc = main(["--model", "resnet20", "--dataset", "cifar100", "--data-dir", str(DATA_DIR),
               "--weights", str(WEIGHTS), "--act-observer", args.observer,
               "--cache-dir", args.cache_dir, "--no-report", "--quiet", "--out", args.out])
    if args.save_hists and captured:
        np.savez(args.save_hists, **{f"c{i}": c for i, (c, _) in captured.items()},
                 **{f"e{i}": e for i, (_, e) in captured.items()})
    print("TIMINGS " + json.dumps({"rc": rc, **timings}))


def conversion_round(observer: str, impl: str, save_hists: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="obs-bench-") as d:
        cmd = [sys.executable, __file__, "_run-one", "--observer", observer, "--impl", impl,
               "--cache-dir", f"{d}/cache", "--out", f"{d}/run"]
        if save_hists:
            cmd += ["--save-hists", save_hists]
        before = load()
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    line = [x for x in p.stdout.splitlines() if x.startswith("TIMINGS ")]
    if p.returncode or not line:
        sys.exit(f"{observer} run failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    res = json.loads(line[-1][len("TIMINGS "):])
    res.update(wall_s=wall, load_before=before, load_after=load())
    print(f"  {observer:7s} {impl:3s}: conversion {res['convert_s']:6.1f} s (histograms "
          f"{res['collect_s']:5.1f} s, search {res['search_s']:6.2f} s), whole run "
          f"{wall:6.1f} s  [{before} -> {res['load_after']}]", flush=True)
    return res


def load_hists(path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    d = np.load(path)
    keys = sorted(int(k[1:]) for k in d.files if k.startswith("c"))
    return [(d[f"c{k}"], d[f"e{k}"]) for k in keys]


def search_comparison(hists, new_repeats: int) -> dict:
    """Exhaustive vs fast search per histogram, interleaved; same picks?"""
    from benchmark.quant.observers import _mse_bins_exhaustive, mse_bins

    old_t, new_t, same = 0.0, 0.0, 0
    print(f"search on {len(hists)} histograms ({load()})", flush=True)
    for counts, edges in hists:
        t0 = time.perf_counter()
        old = _mse_bins_exhaustive(counts, edges)
        old_t += time.perf_counter() - t0
        runs = []
        for _ in range(new_repeats):
            t0 = time.perf_counter()
            new = mse_bins(counts, edges)
            runs.append(time.perf_counter() - t0)
        new_t += statistics.median(runs)
        same += new == old
    print(f"  exhaustive {old_t:7.2f} s, fast {new_t:6.3f} s (median of {new_repeats}): "
          f"x{old_t / new_t:.0f} faster; identical bins on {same}/{len(hists)}  ({load()})")
    return {"exhaustive_s": old_t, "fast_s": new_t, "speedup": old_t / new_t,
            "identical": same, "histograms": len(hists), "load": load()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd")
    one = sub.add_parser("_run-one", help=argparse.SUPPRESS)
    one.add_argument("--observer", required=True)
    one.add_argument("--impl", choices=("new", "old"), default="new")
    one.add_argument("--cache-dir", required=True)
    one.add_argument("--out", required=True)
    one.add_argument("--save-hists")
    p.add_argument("--rounds", type=int, default=2, help="conversion rounds per observer")
    p.add_argument("--old-mse", action="store_true",
                   help="also time one mse conversion with the exhaustive search (slow)")
    p.add_argument("--hists", help="captured histograms (.npz); default: the first mse round's")
    p.add_argument("--no-search", action="store_true", help="skip the search comparison")
    p.add_argument("--new-repeats", type=int, default=3)
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args(argv)
    if args.cmd == "_run-one":
        run_one(args)
        return 0
    return bench(args)


def bench(args) -> int:
    print(f"{' '.join(sys.argv)}\n{time.strftime('%Y-%m-%d %H:%M:%S')} UTC, {os.cpu_count()} "
          f"cores, {load()}", flush=True)
    out = {"command": " ".join(sys.argv), "rounds": []}
    hists_path = args.hists
    tmp = tempfile.TemporaryDirectory(prefix="obs-hists-")
    times = {"minmax": [], "mse": [], "mse-old": []}
    if args.rounds:
        print("ResNet20 conversions (fresh cache each):")
    for r in range(args.rounds):
        plan = [("minmax", "new"), ("mse", "new")]
        plan += [("mse", "old")] if args.old_mse and r == 0 else []
        for observer, impl in plan if r % 2 == 0 else plan[::-1]:
            save = None
            if observer == "mse" and impl == "new" and hists_path is None:
                save = hists_path = f"{tmp.name}/resnet20_hists.npz"
            res = conversion_round(observer, impl, save)
            times["mse-old" if impl == "old" else observer].append(res)
            out["rounds"].append({"observer": observer, "impl": impl, **res})
    if times["minmax"] and times["mse"]:
        summary(times, out)
    if not args.no_search and hists_path:
        out["search"] = search_comparison(load_hists(hists_path), args.new_repeats)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    tmp.cleanup()
    return 0


def summary(times: dict, out: dict) -> None:
    def med(key, field):
        return statistics.median(r[field] for r in times[key])

    conv = {k: med(k, "convert_s") for k in times if times[k]}
    wall = {k: med(k, "wall_s") for k in times if times[k]}
    print(f"conversion mse / minmax: x{conv['mse'] / conv['minmax']:.2f} "
          f"({conv['mse']:.1f} s / {conv['minmax']:.1f} s, medians; target <= 1.5); "
          f"whole run x{wall['mse'] / wall['minmax']:.2f}")
    if "mse-old" in conv:
        print(f"conversion mse (exhaustive search, old binning) / minmax: "
              f"x{conv['mse-old'] / conv['minmax']:.2f} ({conv['mse-old']:.1f} s)")
    # Pairs run back to back (each round alternates the order): less exposed to load swings.
    pairs = [m["convert_s"] / x["convert_s"] for m, x in zip(times["mse"], times["minmax"])]
    extra = [(r["collect_s"] + r["search_s"]) for r in times["mse"]]
    print(f"  per round mse / minmax: {', '.join(f'x{r:.2f}' for r in pairs)}; "
          f"mse-only work (histograms + search) {statistics.median(extra):.1f} s = "
          f"{statistics.median(extra) / conv['minmax']:.0%} of the min-max conversion")
    out["conversion_ratio"] = conv["mse"] / conv["minmax"]
    out["round_ratios"] = pairs
    out["mse_extra_s"] = extra
    out["conversion_median_s"] = conv
    out["run_median_s"] = wall


if __name__ == "__main__":
    sys.exit(main())
