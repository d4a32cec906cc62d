#!/usr/bin/env python3
"""Every ratio of issue #17 in one run (not a test): ``make bench``.

Each section interleaves the things it compares (round by round, so a change
of the machine's load hits both sides alike), compares medians and prints the
load average before and after; the closing table lists each target and
whether it holds. The sections reuse the single-purpose scripts
(``tools/bench_observer.py``, ``bench_report.py``, ``bench_eval.py``,
``bench_coldstart.py``, ``bench_run.py``):

1. observer: ResNet20 conversion with ``--act-observer mse`` vs ``minmax``
   (fresh cache each, needs TensorFlow and the CIFAR-100 data and weights in
   /work/shared; ``--skip-tf`` skips it). Target mse <= 1.5x min-max.
2. report: its share of a warm ``benchmark.run --split verification`` (end to
   end, and ``write_report`` alone with figures drawn / from the shared
   cache / rebuilt) and a synthetic 1000-class report's time and peak RSS.
   Targets <= 25 %; <= 15 s and <= 1.5 GB.
3. evaluation: SignNet int8 (carolo-synth verification) and ResNet56 int8
   (CIFAR-100 verification) images/s of the harness's automatic plan vs the
   harness at batch 1 in one process (today's path) and vs the raw batch-1
   ``invoke()`` loop on inputs prepared in advance; predictions bit-identical.
   Targets auto >= 1.25x (SignNet), >= 1.35x (ResNet56) of batch 1.
3b. baseline: the same two models through the harness of ``--baseline REV`` (0fa25a7,
   the code issue #17 measured "today's throughput" on) vs this checkout's automatic plan,
   each in its own process (``tools/bench_baseline.py``); same targets.
4. memory: peak RSS of a warm GTSRB ``benchmark.run`` (``--no-prediction-
   cache``: the images are read and evaluated), split ``full`` vs
   ``verification`` (target <= 1.2x), and of a cold GTSRB load (target <=
   0.8 GB); skipped without /work/shared/data/gtsrb.
5. cold start: ``make run``'s step (``benchmark.run --split all --device
   cpu``) with an empty cache directory vs warm.
6. test suite: not run here (see the note it prints).

``python tools/bench_all.py [--rounds 3] [--skip-tf] [--only report eval ...]
[--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(TOOLS))

SHARED = ROOT.parent / "shared"
#: In this order: memory first (its cold-load child inherits this process's peak RSS).
SECTIONS = ("memory", "observer", "report", "eval", "baseline", "coldstart", "tests")
GTSRB_RUN = ["--model", "signnet-gtsrb", "--dataset", "gtsrb", "--no-report", "--quiet",
             "--no-prediction-cache"]


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def head(title: str) -> None:
    print(f"\n## {title}  [{load()}]", flush=True)


def has_tf() -> bool:
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


# ---------------------------------------------------------------- 1. observer


def observer(args, verdicts: list) -> dict:
    import bench_observer
    need = [SHARED / "data" / "cifar100", SHARED / "models" / "cifar100_resnet"]
    if args.skip_tf or not has_tf() or not all(p.exists() for p in need):
        why = "--skip-tf" if args.skip_tf else "no TensorFlow" if not has_tf() else \
            "no CIFAR-100 data / ResNet20 weights in " + str(SHARED)
        print(f"skipped ({why})")
        verdicts.append(("mse / min-max conversion (ResNet20)", "skipped", "<= x1.5", None))
        return {}
    times = {"minmax": [], "mse": []}
    for i in range(args.rounds):
        for obs in (("minmax", "mse") if i % 2 == 0 else ("mse", "minmax")):
            times[obs].append(bench_observer.conversion_round(obs, "new")["convert_s"])
    mm, ms = (statistics.median(times[k]) for k in ("minmax", "mse"))
    print(f"conversion mse / minmax: x{ms / mm:.2f} ({ms:.1f} s / {mm:.1f} s, medians of "
          f"{args.rounds})")
    verdicts.append(("mse / min-max conversion (ResNet20)", f"x{ms / mm:.2f}", "<= x1.5",
                     ms / mm <= 1.5))
    return {"minmax_s": times["minmax"], "mse_s": times["mse"], "ratio": ms / mm}


# ---------------------------------------------------------------- 2. report


def report(args, verdicts: list, tmp: Path) -> dict:
    import bench_report
    # at least 5 rounds: the end-to-end difference is within the noise of one ~0.5 s run
    share = bench_report.share_of_run(max(args.rounds, 5), tmp)
    for key, what in (("end_to_end_share", "report share, warm verification run (end to end)"),
                      ("shared_share", "report share, new run, figures drawn before"),
                      ("cold_share", "report share, new run, every figure drawn")):
        verdicts.append((what, f"{100 * share[key]:.1f} %", "<= 25 %", share[key] <= 0.25))

    big = bench_report.thousand_classes(tmp, 1000, args.images, 1)
    verdicts.append(("1000-class report", f"{big['seconds']:.1f} s, {big['peak_mb']:.0f} MB",
                     "<= 15 s, <= 1.5 GB", big["seconds"] <= 15 and big["peak_mb"] <= 1536))
    return {"share": share, "thousand_classes": big}


# ---------------------------------------------------------------- 3. evaluation


def eval_cases(args) -> list:
    """``(label, entry name, model path, dataset)``: SignNet int8 and ResNet56 int8."""
    import bench_eval
    ns = argparse.Namespace(cache_dir=args.eval_cache, no_convert=args.skip_tf or not has_tf(),
                            cifar=str(SHARED / "data" / "cifar100"), only=["int8"])
    if not Path(ns.cifar).is_dir():
        ns.only = ["signnet int8"]
        print(f"ResNet56 skipped: no {ns.cifar}")
    return bench_eval.cases(ns)


def raw_batch1(path: Path, entry, ds, idx: np.ndarray):
    """A function timing the raw batch-1 loop (``bench_run.raw_loop``: set_tensor, invoke,
    get_tensor per image, inputs preprocessed and quantized in advance); images/s."""
    import bench_run
    from benchmark.backends.base import quantize
    from benchmark.backends.litert_cpu import LiteRTCPUBackend
    b = LiteRTCPUBackend(path)
    q = quantize(entry.preprocess(np.asarray(ds.images[idx])), b.input_spec)
    shape, dtype = b.output_spec.shape[1:], b.output_spec.dtype
    return lambda: idx.size / bench_run.raw_loop(b.interpreter, q, shape, dtype)


def eval_one(label, entry_name, path, ds, passes: int, tile: int) -> dict:
    """Alternate batch 1 (today), the automatic plan and the raw loop ``passes`` times."""
    import bench_eval
    from benchmark.evaluate import evaluate_variant
    from benchmark.models.registry import get_model
    from benchmark.variants import Variant
    entry = get_model(entry_name)
    idx = np.tile(ds.split("verification")[1], tile)
    v = Variant("int8", "int8", "cpu", path, 8)
    raw = raw_batch1(path, entry, ds, idx)
    ips = {"today": [], "auto": [], "raw": []}
    ref, identical, plan, before = None, True, "", load()
    for i in range(passes + 1):                     # pass 0 warms up (batch-N copy, workers)
        for name, settings in (("today", bench_eval.TODAY), ("auto", bench_eval.AUTO)):
            r = evaluate_variant(v, ds, idx, preprocess=entry.preprocess,
                                 logits=entry.outputs == "logits", settings=settings)
            ref = ref or r
            identical &= bench_eval.same(r, ref)
            if i:
                ips[name].append(r.predictions.images_per_second)
            plan = r.runtime.get("plan", "") if name == "auto" else plan
        r_ips = raw()
        if i:
            ips["raw"].append(r_ips)
    med = {k: statistics.median(x) for k, x in ips.items()}
    print(f"{label} ({idx.size} images, {passes} passes; {before} -> {load()}): batch 1 "
          f"{med['today']:.0f} img/s, auto {med['auto']:.0f} img/s ({plan}), raw batch-1 "
          f"loop {med['raw']:.0f} img/s; auto / batch 1 x{med['auto'] / med['today']:.2f}, "
          f"auto / raw loop x{med['auto'] / med['raw']:.2f}; bit-identical: {identical}",
          flush=True)
    return {"images": int(idx.size), "img_s": med, "all": ips, "plan": plan,
            "identical": bool(identical)}


def evaluation(args, verdicts: list) -> dict:
    out = {}
    targets = {"SignNet int8": 1.25, "ResNet56 int8": 1.35}
    for label, entry_name, path, ds in eval_cases(args):
        res = out[label] = eval_one(label, entry_name, path, ds, args.passes, args.tile)
        m = res["img_s"]
        for base, what in (("today", "harness batch 1"), ("raw", "raw batch-1 loop")):
            ok = m["auto"] / m[base] >= targets[label] and res["identical"]
            verdicts.append((f"{label} auto / {what}", f"x{m['auto'] / m[base]:.2f}"
                             + ("" if res["identical"] else " NOT bit-identical"),
                             f">= x{targets[label]}", ok))
    for label in targets:
        if label not in out:
            verdicts.append((f"{label} auto / batch 1", "skipped", f">= x{targets[label]}",
                             None))
    return out


def baseline(args, verdicts: list) -> dict:
    """The harness of ``--baseline`` (the code the issue measured) vs this one, as processes."""
    import bench_baseline
    ns = bench_baseline.parse_args(["--rev", args.baseline, "--rounds", str(args.rounds + 2),
                                    "--tile", str(4 * args.tile), "--cache-dir",
                                    args.eval_cache])
    try:
        out = bench_baseline.run_all(ns)
    except subprocess.CalledProcessError as e:
        print(f"baseline skipped: git archive {args.baseline} failed ({e})")
        out = {}
    targets = {"SignNet int8": 1.25, "ResNet56 int8": 1.35}
    for label, target in targets.items():
        r = out.get(label)
        got = "skipped" if r is None else f"x{r['ratio']:.2f}" + (
            "" if r["identical"] else " NOT bit-identical")
        ok = None if r is None else r["ratio"] >= target and r["identical"]
        verdicts.append((f"{label} now / harness {args.baseline}", got, f">= x{target}", ok))
    return out


# ---------------------------------------------------------------- 4. memory


def peak_run(argv: list[str]) -> tuple[float, float | None]:
    """Wall seconds and peak RSS (MB) of ``benchmark.run argv`` in a child.

    The peak comes from ``/usr/bin/time -f %M`` (None without it): a child forked
    from this process would report at least this process's own peak (Linux keeps the
    high-water mark of the forked memory map across exec), so ``wait4`` here would be
    wrong once this process has loaded a dataset.
    """
    timer = shutil.which("time", path="/usr/bin:/bin")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        peak = Path(d) / "peak"
        cmd = [sys.executable, "-m", "benchmark.run", *argv]
        cmd = [timer, "-f", "%M", "-o", str(peak), *cmd] if timer else cmd
        r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode:
            sys.exit(f"benchmark.run {' '.join(argv)} failed:\n{r.stderr[-3000:]}")
        mb = int(peak.read_text().split()[-1]) / 1024 if timer else None
    return time.perf_counter() - t0, mb


def memory(args, verdicts: list, tmp: Path) -> dict:
    import bench_coldstart
    gtsrb = SHARED / "data" / "gtsrb"
    if not gtsrb.is_dir():
        print(f"skipped: no {gtsrb}")
        verdicts.append(("GTSRB full / verification peak RSS", "skipped", "<= x1.2", None))
        return {}
    if not shutil.which("time", path="/usr/bin:/bin"):
        print("skipped: no /usr/bin/time (peak RSS of a child)")
        verdicts.append(("GTSRB full / verification peak RSS", "skipped", "<= x1.2", None))
        return {}
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cold = bench_coldstart.child(bench_coldstart.LOAD, ["gtsrb", "80", str(gtsrb),
                                                        str(tmp / "gtsrb-cold")], ROOT, None)
    shutil.rmtree(tmp / "gtsrb-cold", ignore_errors=True)
    gb = max(cold["peak_mb"], cold["worker_peak_mb"]) / 1024
    print(f"cold GTSRB load (fresh cache dir, pool): {cold['seconds']:.1f} s, peak RSS "
          f"{cold['peak_mb']:.0f} MB (largest worker {cold['worker_peak_mb']:.0f} MB; at least "
          f"this script's own {own:.0f} MB, inherited by its children)  [{cold['load']}]")
    verdicts.append(("cold GTSRB load peak RSS", f"{gb:.2f} GB", "<= 0.8 GB", gb <= 0.8))
    peaks = {"verification": [], "full": []}
    base = GTSRB_RUN + ["--data-dir", str(gtsrb)]
    peak_run(base + ["--split", "verification", "--out", str(tmp / "g-warmup")])
    for i in range(args.mem_rounds):
        for split in peaks:
            sec, mb = peak_run(base + ["--split", split, "--out", str(tmp / f"g-{split}-{i}")])
            peaks[split].append(mb)
            print(f"  warm GTSRB run --split {split:12s} {sec:6.1f} s, peak RSS {mb:5.0f} MB  "
                  f"[{load()}]", flush=True)
    v, f = (max(peaks[k]) for k in ("verification", "full"))
    print(f"warm GTSRB run peak RSS full / verification: x{f / v:.2f} ({f:.0f} / {v:.0f} MB)")
    verdicts.append(("GTSRB warm run peak RSS full / verification", f"x{f / v:.2f}", "<= x1.2",
                     f / v <= 1.2))
    return {"warm_peak_mb": peaks, "cold": cold}


# ---------------------------------------------------------------- 5. cold start, 6. tests


def coldstart(args, verdicts: list, tmp: Path) -> dict:
    import bench_coldstart
    render = bench_coldstart.child(bench_coldstart.LOAD, ["carolo-synth", "80", "",
                                                          str(tmp / "synth-cold")], ROOT, None)
    shutil.rmtree(tmp / "synth-cold", ignore_errors=True)
    print(f"carolo-synth cold render (fresh cache dir, pool): {render['seconds']:.1f} s "
          f"(rendering {render['build_seconds']:.1f} s)  [{render['load']}]", flush=True)
    argv = ["--split", "all", "--device", "cpu", "--quiet"]
    cold, warm = [], []
    for i in range(args.cold_rounds):
        cache = tmp / f"cold-cache-{i}"
        cold.append(peak_run(argv + ["--cache-dir", str(cache), "--out", str(tmp / f"c{i}")])[0])
        warm.append(peak_run(argv + ["--out", str(tmp / f"w{i}")])[0])
        shutil.rmtree(cache, ignore_errors=True)
        print(f"  round {i + 1}: make run's step cold (empty cache dir) {cold[-1]:.1f} s, warm "
              f"{warm[-1]:.1f} s  [{load()}]", flush=True)
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"make run's step (benchmark.run --split all --device cpu): cold {c:.1f} s, warm "
          f"{w:.1f} s (medians)")
    verdicts.append(("make run step cold / warm", f"{c:.1f} s / {w:.1f} s", "-", None))
    return {"cold_s": cold, "warm_s": warm, "render_s": render["seconds"]}


def tests_note(verdicts: list) -> None:
    print("not run here (it needs the whole machine): `make test` runs pytest -n auto "
          "--dist loadfile; time it with `time make test` on an idle machine against "
          "`.venv/bin/python -m pytest -p no:xdist` (target <= 50 %)")
    verdicts.append(("test suite wall time", "not measured here", "<= 50 % of serial", None))


# ---------------------------------------------------------------- main


def summary(verdicts: list) -> None:
    head("summary")
    width = max(len(v[0]) for v in verdicts)
    for what, got, target, ok in verdicts:
        mark = "-" if ok is None else "holds" if ok else "NOT MET"
        print(f"  {what:{width}s}  {got:>22s}  target {target:18s}  {mark}")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="observer and report rounds")
    ap.add_argument("--passes", type=int, default=5, help="evaluation passes per configuration")
    ap.add_argument("--tile", type=int, default=2, help="verification split repeats per pass")
    ap.add_argument("--mem-rounds", type=int, default=1)
    ap.add_argument("--cold-rounds", type=int, default=1)
    ap.add_argument("--images", type=int, default=50_000, help="of the 1000-class run")
    ap.add_argument("--skip-tf", action="store_true",
                    help="no TensorFlow work (observer conversions, ResNet56 conversion)")
    ap.add_argument("--only", nargs="*", choices=SECTIONS, help="only these sections")
    ap.add_argument("--eval-cache", default="/tmp/eval-cache",
                    help="cache dir holding (or getting) the ResNet56 conversion")
    ap.add_argument("--baseline", default="0fa25a7", metavar="REV",
                    help="the revision whose harness the baseline section runs (default: "
                         "the commit issue #17 measured)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    only = set(args.only or SECTIONS)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    print(f"$ python tools/bench_all.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {git}, "
          f"{os.cpu_count()} cores, {load()}")
    verdicts: list = []
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-all-") as d:
        tmp = Path(d)
        steps = {"observer": lambda: observer(args, verdicts),
                 "report": lambda: report(args, verdicts, tmp),
                 "eval": lambda: evaluation(args, verdicts),
                 "baseline": lambda: baseline(args, verdicts),
                 "memory": lambda: memory(args, verdicts, tmp),
                 "coldstart": lambda: coldstart(args, verdicts, tmp),
                 "tests": lambda: tests_note(verdicts)}
        for name in SECTIONS:
            if name in only:
                head(name)
                res[name] = steps[name]()
    summary(verdicts)
    print(f"done {time.strftime('%H:%M UTC', time.gmtime())}  [{load()}]")
    if args.json:
        args.json.write_text(json.dumps({"argv": sys.argv, "results": res}, indent=1,
                                        default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
