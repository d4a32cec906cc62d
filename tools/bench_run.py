#!/usr/bin/env python3
"""Benchmark the harness itself (not a test): prints ratios measured in one run.

1. Wall time of `make run`'s main step (`python -m benchmark.run --split all
   --device cpu`), cold (dataset cache empty, if it was) and warm.
2. Evaluation throughput of the harness (`benchmark.evaluate.evaluate`, which
   includes reading, preprocessing, quantizing and dequantizing) as a ratio to
   (A) the minimal hand-written loop doing the same job per image
   (preprocess, quantize, set_tensor, invoke, get_tensor), and (B) an
   invoke-only loop over inputs preprocessed and quantized in advance. Same
   model, same images, same thread count; rounds alternate the three loops and
   the median of each is compared.

3. `benchmark.latency`'s mean invoke time vs a plain `invoke()` loop timed as a
   whole, same model, same run.

Targets: warm main step <= 60 s, throughput ratio >= 0.97, latency within 10 %.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark.backends.base import quantize  # noqa: E402
from benchmark.backends.litert_cpu import LiteRTCPUBackend  # noqa: E402
from benchmark.datasets.registry import load_dataset  # noqa: E402
from benchmark.evaluate import evaluate  # noqa: E402
from benchmark.latency import measure_latency  # noqa: E402
from benchmark.models.registry import get_model  # noqa: E402


def time_main_step(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "benchmark.run", "--split", "all", "--device",
                            "cpu", "--quiet", "--out", f"{d}/run"], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
    return times


def raw_loop_with_preprocessing(interp, images, spec, transform, out_shape, out_dtype) -> float:
    """The minimal hand-written loop doing the same job: per image preprocess,
    quantize, set_tensor, invoke, get_tensor."""
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    res = np.empty((images.shape[0],) + out_shape, out_dtype)
    t0 = time.perf_counter()
    for i in range(images.shape[0]):
        interp.set_tensor(inp, quantize(transform(images[i:i + 1]), spec))
        interp.invoke()
        res[i] = interp.get_tensor(out)[0]
    return time.perf_counter() - t0


def raw_loop(interp, q: np.ndarray, out_shape, out_dtype) -> float:
    """invoke() only: inputs already preprocessed and quantized in advance."""
    inp = interp.get_input_details()[0]["index"]
    out = interp.get_output_details()[0]["index"]
    res = np.empty((q.shape[0],) + out_shape, out_dtype)
    t0 = time.perf_counter()
    for i in range(q.shape[0]):
        interp.set_tensor(inp, q[i:i + 1])
        interp.invoke()
        res[i] = interp.get_tensor(out)[0]
    return time.perf_counter() - t0


def throughput(split: str, variant: str, rounds: int, threads: int | None, limit: int | None):
    entry = get_model("signnet")
    path = entry.artifact_dir(split) / f"signnet_{variant}.tflite"
    ds = load_dataset("carolo-synth", image_size=entry.input_size, verbose=False)
    _, idx = ds.split(split)
    if limit:
        idx = idx[:limit]
    backend = LiteRTCPUBackend(path, num_threads=threads)
    q = quantize(entry.preprocess(ds.images[idx]), backend.input_spec)
    oshape, odtype = backend.output_spec.shape[1:], backend.output_spec.dtype
    evaluate(backend, ds.images, ds.labels, idx[:64])          # warm-up
    raw_loop(backend.interpreter, q[:64], oshape, odtype)
    imgs = np.asarray(ds.images[idx])
    harness, raw, raw_pre = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        evaluate(backend, ds.images, ds.labels, idx, preprocess=entry.preprocess)
        harness.append(time.perf_counter() - t0)
        raw_pre.append(raw_loop_with_preprocessing(backend.interpreter, imgs,
                                                   backend.input_spec, entry.preprocess,
                                                   oshape, odtype))
        raw.append(raw_loop(backend.interpreter, q, oshape, odtype))
    n = idx.size
    return (n, n / statistics.median(harness), n / statistics.median(raw_pre),
            n / statistics.median(raw))


def latency_agreement(split: str, variant: str, runs: int, threads: int | None):
    """benchmark.latency's mean vs a plain loop of invoke() timed as a whole."""
    entry = get_model("signnet")
    b = LiteRTCPUBackend(entry.artifact_dir(split) / f"signnet_{variant}.tflite",
                         num_threads=threads)
    harness, plain = [], []
    for _ in range(3):
        harness.append(measure_latency(b, runs=runs, warmup=20)["mean_ms"])
        t0 = time.perf_counter()
        for _ in range(runs):
            b.interpreter.invoke()
        plain.append((time.perf_counter() - t0) * 1000 / runs)
    return statistics.median(harness), statistics.median(plain)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--main-runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="images per throughput round")
    args = ap.parse_args()

    times = time_main_step(args.main_runs)
    print("main step (benchmark.run --split all --device cpu): "
          + ", ".join(f"{t:.1f} s" for t in times)
          + f"  -> warm {times[-1]:.1f} s (target <= 60 s)")
    print("throughput in images/s (median of rounds); A = raw loop doing the same job "
          "(preprocess + quantize + set/invoke/get per image), B = invoke-only loop on "
          "inputs prepared in advance")
    print(f"{'split':13s} {'variant':7s} {'images':>6s} {'harness':>9s} {'raw A':>9s} "
          f"{'ratio A':>8s} {'raw B':>9s} {'ratio B':>8s}")
    for split in ("verification", "full"):
        for variant in ("float", "int8"):
            n, h, ra, rb = throughput(split, variant, args.rounds, args.threads, args.limit)
            print(f"{split:13s} {variant:7s} {n:6d} {h:9.1f} {ra:9.1f} {h / ra:8.3f} "
                  f"{rb:9.1f} {h / rb:8.3f}")
    print("target: ratio A >= 0.97 (B bounds what any input pipeline could reach)")
    print(f"{'latency':13s} {'variant':7s} {'benchmark.latency mean':>23s} "
          f"{'plain invoke loop':>18s} {'ratio':>6s}")
    for variant in ("float", "int8"):
        h, p = latency_agreement("verification", variant, 500, args.threads)
        print(f"{'verification':13s} {variant:7s} {h:20.4f} ms {p:15.4f} ms {h / p:6.3f}")
    print("target: latency within 10 % of the plain loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
