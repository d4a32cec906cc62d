"""Latency of one model on one device: ``python -m benchmark.latency MODEL``.

Opening the model (on the Edge TPU: loading the delegate and allocating the
model) is timed first, then the first ``invoke()`` on its own (cold: on the
Edge TPU it uploads the parameters into the device), then ``--warmup``
untimed runs, then ``--runs`` timed invokes on a fixed random input in the
model's own dtype. The record keeps std and max next to the mean, the host's
CPU governor, temperatures and load before and after, and a ``warning`` when
other processes used the CPU while timing. On the Edge TPU it also holds the
device's USB link speed and, when the compiler's output is beside the model,
its on-chip / off-chip parameter figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.backends import make_backend
from benchmark.cli import main_wrapper, prog_name
from benchmark.errors import UsageError


def latency_stats(samples_ms) -> dict:
    """Summary of per-invoke latencies in milliseconds (pure).

    Examples
    --------
    >>> s = latency_stats([1.0, 2.0, 3.0, 4.0])
    >>> s["mean_ms"], s["p50_ms"], s["throughput_per_s"]
    (2.5, 2.5, 400.0)
    """
    x = np.asarray(samples_ms, np.float64)
    if x.size == 0:
        raise ValueError("no latency samples")
    mean = float(x.mean())
    return {"n": int(x.size), "mean_ms": mean, "std_ms": float(x.std(ddof=1)) if x.size > 1
            else 0.0, "min_ms": float(x.min()), "max_ms": float(x.max()),
            "p50_ms": float(np.percentile(x, 50)), "p90_ms": float(np.percentile(x, 90)),
            "p99_ms": float(np.percentile(x, 99)),
            "throughput_per_s": 1000.0 / mean if mean > 0 else float("nan")}


def _check_counts(runs: int, warmup: int) -> None:
    if runs < 1 or warmup < 0:
        raise UsageError("--runs must be >= 1 and --warmup >= 0")


def _set_random_input(backend, seed: int) -> None:
    """Put a fixed random input in the model's own dtype into the backend's input tensor."""
    spec = backend.input_spec
    rng = np.random.default_rng(seed)
    if np.issubdtype(spec.dtype, np.integer):
        info = np.iinfo(spec.dtype)
        x = rng.integers(info.min, info.max + 1, spec.shape, dtype=spec.dtype)
    else:
        x = rng.random(spec.shape, dtype=np.float32).astype(spec.dtype)
    backend.interpreter.set_tensor(backend._in_index, x)


def _timed_invoke_ms(interpreter) -> float:
    t0 = time.perf_counter_ns()
    interpreter.invoke()
    return (time.perf_counter_ns() - t0) / 1e6


def time_first_invoke(backend, *, seed: int = 0) -> float:
    """Milliseconds of one ``invoke()`` on a random input: call it on a *fresh* backend.

    Only the very first invoke of an interpreter is cold (on the Edge TPU it
    includes loading the parameters into the device), so call this right after
    creating the backend, before any inference, and pass the value on to
    :func:`measure_latency` (``first_invoke_ms=``) after the evaluation.

    Parameters
    ----------
    backend
        An interpreter-based backend (``interpreter``, ``input_spec``, ``_in_index``).
    seed : int
        Seed of the random input (the one :func:`measure_latency` uses by default).

    Returns
    -------
    float
    """
    if hasattr(backend, "time_first_invoke"):   # a backend in a child process
        return backend.time_first_invoke(seed=seed)
    _set_random_input(backend, seed)
    return _timed_invoke_ms(backend.interpreter)


def measure_latency(backend, *, runs: int = 100, warmup: int = 10, seed: int = 0,
                    first_invoke_ms: float | None = None) -> dict:
    """Time ``invoke()`` of an interpreter-based backend: warm-up, then ``runs`` timed invokes.

    Parameters
    ----------
    backend
        An interpreter-based backend (``interpreter``, ``input_spec``, ``_in_index``).
    runs, warmup : int
        Timed and untimed invokes (``runs >= 1``, ``warmup >= 0``).
    seed : int
        Seed of the fixed random input.
    first_invoke_ms : float, optional
        The first invoke, timed earlier with :func:`time_first_invoke` on the
        fresh backend; recorded as is. When None, the first invoke of *this
        call* is timed, which is the cold first invoke only if ``backend`` has
        not run any inference yet.

    Returns
    -------
    dict
        :func:`latency_stats` of the timed runs plus ``first_invoke_ms``,
        ``warmup`` and ``samples_ms``.

    Raises
    ------
    UsageError
        When ``runs < 1`` or ``warmup < 0``.
    """
    _check_counts(runs, warmup)
    if hasattr(backend, "measure_latency"):     # a backend in a child process
        return backend.measure_latency(runs=runs, warmup=warmup, seed=seed,
                                       first_invoke_ms=first_invoke_ms)
    from benchmark import hoststate
    it = backend.interpreter
    _set_random_input(backend, seed)
    if first_invoke_ms is None:
        first_invoke_ms = _timed_invoke_ms(it)
    for _ in range(warmup):
        it.invoke()
    before = hoststate.snapshot()
    samples = np.empty(runs)
    for i in range(runs):
        samples[i] = _timed_invoke_ms(it)
    after = hoststate.snapshot()
    out = dict(latency_stats(samples), first_invoke_ms=float(first_invoke_ms), warmup=warmup,
               samples_ms=[round(float(s), 6) for s in samples],
               host={"before": before.record(), "after": after.record()})
    out.update(getattr(backend, "open_ms", None) or {})
    warning = hoststate.busy_warning(before, after)
    if warning:
        out["warning"] = warning
    return out


def _mib(n) -> str:
    return f"{n / 2 ** 20:.2f} MiB"


def describe(r: dict) -> list[str]:
    """The lines :func:`main` prints after the summary line (open, cold vs warm, device, host)."""
    rt = r.get("runtime", {})
    opened = ", ".join(f"{k[:-3]} {v:.1f} ms" for k, v in rt.get("open_ms", {}).items())
    lines = [f"open {r['open_ms']:.1f} ms ({opened or 'interpreter'}); cold first invoke "
             f"{r['first_invoke_ms']:.3f} ms; warm mean {r['mean_ms']:.3f} ms, std "
             f"{r['std_ms']:.3f}, max {r['max_ms']:.3f} ms"]
    tpu, used = rt.get("tpu"), rt.get("device_used")
    if tpu is not None:
        link = f", {used['link']} ({used['speed_mbps']} Mbit/s)" if used and used.get("link") \
            else ", USB link speed unknown"
        where = f"{used['type']} {used['path']}" if used else rt.get("device", "default")
        lines.append(f"Edge TPU {where}{link}: {tpu['tpu_segments']} TPU segment(s), "
                     f"{tpu['cpu_op_count']} op(s) on the CPU; parameters in the compiled file: "
                     f"on-chip {_mib(tpu.get('on_chip_parameter_bytes') or 0)}, off-chip "
                     f"{_mib(tpu.get('off_chip_parameter_bytes') or 0)}")
    mem = r.get("compile_memory")
    if mem:
        lines.append("compiler: " + ", ".join(f"{k[:-6].replace('_', ' ')} {_mib(v)}"
                                              for k, v in mem.items() if k != "source")
                     + f" ({Path(mem['source']).name})")
    host = r.get("host", {}).get("before", {})
    lines.append(f"host: governor {','.join(host.get('governor') or ['unknown'])}, "
                 f"temperature {host.get('temperature_c') or 'unknown'} -> "
                 f"{r.get('host', {}).get('after', {}).get('temperature_c') or 'unknown'}, "
                 f"load {host.get('load_average_1m')}")
    if r.get("warning"):
        lines.append(f"warning: {r['warning']}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=prog_name("python -m benchmark.latency"),
                                description=__doc__.split("\n")[0])
    p.add_argument("model", type=Path,
                   help=".tflite model (an _edgetpu.tflite for --device edgetpu)")
    p.add_argument("--device", choices=("cpu", "edgetpu"), default="cpu")
    p.add_argument("--edgetpu-device", default=None,
                   help="Edge TPU to use: usb, usb:N, pci, pci:N or :N (default: the first)")
    p.add_argument("--runs", type=int, default=200, help="timed invokes (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed invokes first (default 20)")
    p.add_argument("--num-threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    _check_counts(args.runs, args.warmup)
    if args.json is not None:
        from benchmark.preflight import check_output_file
        check_output_file(args.json, option="--json")   # before minutes of timing
    from benchmark.backends.edgetpu import compile_memory, parse_device_spec
    device = parse_device_spec(args.edgetpu_device)
    t0 = time.perf_counter()
    with make_backend(args.device, args.model, num_threads=args.num_threads,
                      edgetpu_device=device) as b:
        open_ms = (time.perf_counter() - t0) * 1000.0
        first = time_first_invoke(b)   # a fresh backend: this invoke is the cold one
        r = measure_latency(b, runs=args.runs, warmup=args.warmup, first_invoke_ms=first)
        r["runtime"] = b.info()
    r.update(model=str(args.model), model_bytes=args.model.stat().st_size,
             open_ms=round(open_ms, 3), compile_memory=compile_memory(args.model))
    print(f"{args.model.name} on {args.device}: mean {r['mean_ms']:.3f} ms "
          f"(std {r['std_ms']:.3f}), p50 {r['p50_ms']:.3f}, p90 {r['p90_ms']:.3f}, "
          f"p99 {r['p99_ms']:.3f} ms, {r['throughput_per_s']:.0f}/s; first invoke "
          f"{r['first_invoke_ms']:.3f} ms; {r['model_bytes']} bytes")
    for line in describe(r):
        print(line)
    if args.json:
        from benchmark.results import write_json
        write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.latency", main))
