"""Evaluation that uses the machine: batch-N model copies and worker processes.

A converted ``.tflite`` has a fixed batch of 1. On the CPU, one invoke per
image leaves XNNPACK's thread pool mostly idle between small operators, so
CPU variants are evaluated on a **batch-N copy** of the model
(:func:`batched_model`) and/or **sharded across worker processes**
(:class:`ShardPool`); :func:`plan_cpu` picks the configuration. The Edge TPU
graph always stays batch 1 in a single process.

The batch-N copy is the batch-1 flatbuffer with the batch dimension of the
input (and of every RESHAPE's target shape) set to -1, resized to N by the
interpreter. It is built once, checked to give bit-identical outputs to the
batch-1 model on N probe inputs, and cached in ``cache_root()/"batched"``
under the source model's SHA-256 (a model that cannot be batched is recorded
there too, and evaluated at batch 1). The user's model folder is never
written.

Measured on the 2-core development machine (tools/bench_eval.py, load
~1.2-1.7, i.e. one core partly taken by other people's jobs): the batch-1,
2-thread path is the one that suffers from a busy core (every operator
waits for the slower thread), so its throughput swings (ResNet56 int8
1540-2170 img/s between runs) while batch N and worker processes stay
steady. Batch 32 beats batch 1 on int8 models (SignNet int8 x1.1, ResNet56
int8 x1.2-1.6); float SignNet gains nothing beyond batch ~8 (its 80x80x16
float maps already keep the threads busy, bigger batches only spill the
caches). Worker processes with one thread each and threads in one process
are within ~5 % of each other on ResNet56 when the machine is idle, but
the processes degrade far less under load (no per-operator
synchronisation), so heavy models go to processes; light ones (SignNet)
would spend as much shipping images to workers as running them. See
:func:`choose` for the rule.

When 1 thread / 1 worker wins: on a busy machine (load average at or above
the core count, e.g. several people's jobs on the 2-core box; measured at
load ~3: SignNet int8 batch 1 x 1 thread 5570 img/s vs 3520 with 2
threads), extra threads wait for cores other processes hold, and worker
processes compete with them too; ``--num-threads 1 --workers 1`` (still at
batch N) is then as fast or faster and disturbs the others least.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.workers import hidden_main

#: Bump when the flatbuffer edit changes, so cached copies are rebuilt.
EDIT_VERSION = 1
#: Ops whose presence means the graph cannot be given a batch dimension.
_UNBATCHABLE_OPS = {"CUSTOM", "WHILE", "IF", "CALL_ONCE", "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM",
                    "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_LSTM",
                    "BIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "RNN", "VAR_HANDLE", "READ_VARIABLE",
                    "ASSIGN_VARIABLE"}


class NotBatchable(Exception):
    """The model cannot be evaluated on a batch-N copy (the message says why)."""


# ------------------------------------------------------------------ the flatbuffer edit

def _batched_shape(shape, batch: int, what: str) -> list[int]:
    """A RESHAPE target with its leading batch 1 replaced (-1, or N beside another -1)."""
    shape = [int(d) for d in shape]
    if not shape or shape[0] not in (1, -1):
        raise NotBatchable(f"{what} {shape} does not keep the batch dimension")
    shape[0] = batch if -1 in shape[1:] else -1
    return shape


def _edit_input(sg, index: int) -> None:
    t = sg.tensors[index]
    shape = [int(d) for d in t.shape]
    sig = None if t.shapeSignature is None else [int(d) for d in t.shapeSignature]
    if not shape or shape[0] != 1:
        raise NotBatchable(f"input shape {shape} has no leading batch of 1")
    if any(d <= 0 for d in shape[1:]) or (sig is not None and any(d < 0 for d in sig[1:])):
        raise NotBatchable(f"input shape {sig or shape} is not static")
    t.shapeSignature = np.array([-1] + shape[1:], np.int32)


def _edit_reshape(model_t, sg, op, batch: int) -> None:
    opts = op.builtinOptions
    new_shape = getattr(opts, "newShape", None)
    if new_shape is not None and len(new_shape):
        opts.newShape = np.array(_batched_shape(new_shape, batch, "RESHAPE new_shape"),
                                 np.int32)
    if len(op.inputs) < 2 or op.inputs[1] < 0:
        return
    t = sg.tensors[op.inputs[1]]
    buf = model_t.buffers[t.buffer] if t.buffer < len(model_t.buffers) else None
    data = None if buf is None else buf.data
    if data is None or len(data) == 0:
        if getattr(buf, "offset", 0):
            raise NotBatchable("RESHAPE shape stored outside the flatbuffer")
        return  # computed at run time: the probe check decides
    dtype = {2: np.int32, 4: np.int64}.get(t.type)
    if dtype is None:
        raise NotBatchable(f"RESHAPE shape tensor of type {t.type}")
    shape = _batched_shape(np.frombuffer(bytes(bytearray(data)), dtype), batch, "RESHAPE shape")
    new = type(buf)()
    new.data = np.frombuffer(np.array(shape, dtype).tobytes(), np.uint8)
    model_t.buffers.append(new)  # a buffer of its own: the old one may be shared
    t.buffer = len(model_t.buffers) - 1


def batch_model_bytes(model: bytes, batch: int) -> bytes:
    """The ``.tflite`` bytes of ``model`` with a variable batch (resize it to ``batch``).

    Raises
    ------
    NotBatchable
        Several subgraphs, an op that cannot be batched (custom, control
        flow, stateful), a non-static or non-batch-1 input, or a RESHAPE that
        drops the batch dimension.
    """
    from benchmark.errors import DataError
    from benchmark.tflite_graph import op_name, pack_model, unpack_model
    try:
        model_t, schema = unpack_model(model)
    except DataError as e:
        raise NotBatchable(str(e)) from None
    if len(model_t.subgraphs) != 1:
        raise NotBatchable(f"{len(model_t.subgraphs)} subgraphs")
    sg = model_t.subgraphs[0]
    if len(sg.inputs) != 1:
        raise NotBatchable(f"{len(sg.inputs)} inputs")
    for op in sg.operators:
        name = op_name(model_t, schema, op)
        if name in _UNBATCHABLE_OPS:
            raise NotBatchable(f"op {name}")
        if name == "RESHAPE":
            _edit_reshape(model_t, sg, op, batch)
    _edit_input(sg, int(sg.inputs[0]))
    return pack_model(model_t)


# ------------------------------------------------------------------ build, check, cache

def _probe_inputs(spec, batch: int, probe: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """``batch`` inputs in the model's input dtype: ``probe`` rows first, seeded noise after."""
    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(spec.shape[1:])
    if np.issubdtype(spec.dtype, np.integer):
        info = np.iinfo(spec.dtype)
        x = rng.integers(info.min, info.max + 1, shape, dtype=spec.dtype)
    else:
        x = rng.random(shape, dtype=np.float32).astype(spec.dtype)
    if probe is not None and len(probe):
        k = min(batch, len(probe))
        x[:k] = np.asarray(probe[:k], spec.dtype)
    return x


def check_batched(model: Path, batched: bytes, batch: int, probe: np.ndarray | None = None,
                  transform=None, threads: int | None = None) -> None:
    """Raise :class:`NotBatchable` unless ``batched`` gives ``model``'s exact outputs.

    One batch-N invoke (``threads`` threads) against N batch-1 invokes (one
    thread) on the same inputs: ``probe`` rows first (uint8 images put
    through ``transform`` and quantized like the backends do, or, without a
    transform, values in the input tensor's dtype), then seeded noise. The
    raw output tensors must be equal byte for byte.
    """
    import tempfile
    from benchmark.backends.base import quantize
    from benchmark.backends.litert_cpu import LiteRTCPUBackend
    from benchmark.tempfiles import system_prefix
    with tempfile.TemporaryDirectory(prefix=system_prefix("batch")) as tmp:
        path = Path(tmp) / "batched.tflite"
        path.write_bytes(batched)
        try:
            big = LiteRTCPUBackend(path, num_threads=threads, batch=batch)
        except Exception as e:  # the runtime's own error: unsupported resize, bad shape
            raise NotBatchable(f"the runtime cannot resize it: {str(e).splitlines()[0]}") \
                from None
    one = LiteRTCPUBackend(model, num_threads=1)
    if probe is not None and transform is not None:
        probe = quantize(transform(np.asarray(probe)), one.input_spec)
    x = _probe_inputs(one.input_spec, batch, probe)
    it, ref = one.interpreter, []
    for i in range(batch):
        it.set_tensor(one._in_index, x[i:i + 1])
        it.invoke()
        ref.append(it.get_tensor(one._out_index).copy())
    try:
        big.interpreter.set_tensor(big._in_index, x)
        big.interpreter.invoke()
    except Exception as e:
        raise NotBatchable(f"batch-{batch} invoke failed: {str(e).splitlines()[0]}") from None
    _compare(big.interpreter.get_tensor(big._out_index), np.concatenate(ref), batch)


def _compare(out: np.ndarray, ref: np.ndarray, batch: int) -> None:
    if out.shape != ref.shape or out.dtype != ref.dtype:
        raise NotBatchable(f"batch-{batch} output {out.shape} {out.dtype}, expected {ref.shape}")
    if out.tobytes() != ref.tobytes():
        bad = int(np.sum(np.any(out.reshape(batch, -1) != ref.reshape(batch, -1), axis=1)))
        raise NotBatchable(f"batch-{batch} outputs differ from batch 1 on {bad} of {batch} "
                           "probe inputs")


def batched_dir() -> Path:
    """Where batch-N copies live: ``cache_root()/"batched"`` (never the model's folder)."""
    from benchmark.paths import cache_root
    return cache_root() / "batched"


def _runtime_version() -> str:
    from benchmark.backends.runtime import find_runtime
    rt = find_runtime()
    return f"{rt.package} {rt.version}"


def batched_model(model, batch: int, *, probe: np.ndarray | None = None, transform=None,
                  threads: int | None = None) -> tuple[Path | None, str]:
    """The cached, checked batch-``batch`` copy of ``model``: ``(path or None, note)``.

    Built on first use (:func:`batch_model_bytes`, then :func:`check_batched`)
    and stored atomically as ``<sha256>-b<N>.tflite`` with a ``.json`` record
    beside it; a model that cannot be batched gets a record with the reason,
    so it is not rebuilt on every run. The record names the runtime version:
    another runtime re-checks. None (with the reason as ``note``) means:
    evaluate at batch 1.
    """
    from benchmark.results import atomic_write_bytes
    model = Path(model)
    src = model.read_bytes()
    sha = hashlib.sha256(src).hexdigest()
    out = batched_dir() / f"{sha}-b{batch}.tflite"
    rec_path = out.with_suffix(".json")
    want = {"source_sha256": sha, "batch": batch, "edit_version": EDIT_VERSION,
            "runtime": _runtime_version()}
    try:
        rec = json.loads(rec_path.read_text())
    except (OSError, ValueError):
        rec = {}
    if {k: rec.get(k) for k in want} == want:
        if rec.get("ok") and out.is_file():
            return out, f"cached batch-{batch} copy"
        if not rec.get("ok"):
            return None, rec.get("reason", "not batchable")
    try:
        blob = batch_model_bytes(src, batch)
        check_batched(model, blob, batch, probe=probe, transform=transform,
                      threads=threads)
        ok, reason = True, ""
    except NotBatchable as e:
        ok, reason = False, f"batch 1: {e}"
    try:
        if ok:
            atomic_write_bytes(out, blob)
        atomic_write_bytes(rec_path, json.dumps(dict(want, ok=ok, reason=reason),
                                                indent=2).encode())
    except OSError as e:
        return None, f"batch 1: cannot write {out.parent} ({e.strerror or e})"
    return (out, f"built batch-{batch} copy") if ok else (None, reason)


# ------------------------------------------------------------------ worker processes

def read_rows(images: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``images[idx]`` as an in-RAM array (out of a memory map: a copy, never a view).

    A contiguous run of indices is one slice copy; invoking on rows read
    straight from the memory map is 10-20 % slower than from RAM. The mapped
    pages of the rows read are released afterwards
    (:func:`benchmark.datasets.cache.release`), so the resident memory of an
    evaluation does not grow with the dataset; reading them again is correct
    (they come back from the page cache).
    """
    from benchmark.datasets.cache import release
    idx = np.asarray(idx, np.int64)
    if not idx.size:
        return np.array(images[idx])
    if idx[-1] - idx[0] == idx.size - 1 and np.all(np.diff(idx) == 1):
        rows = np.array(images[idx[0]:idx[-1] + 1])
    else:
        rows = np.array(images[idx])
    release(images, int(idx.min()), int(idx.max()) + 1)
    return rows


_WORKER: dict = {"barrier": None, "open": {}}


def _worker_init(barrier) -> None:
    """Pool initializer: keep the barrier of :meth:`ShardPool.open`; load the runtime."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _WORKER["barrier"] = barrier
    from benchmark.backends.runtime import find_runtime
    find_runtime()


def _worker_backend(key):
    """This worker's interpreter for ``key = (path, batch, threads)`` (one model at a time)."""
    opened = _WORKER["open"]
    if key not in opened:
        from benchmark.backends.litert_cpu import LiteRTCPUBackend
        for old in list(opened):
            opened.pop(old).close()
        path, batch, threads = key
        opened[key] = LiteRTCPUBackend(path, num_threads=threads, batch=batch)
    return opened[key]


def _worker_open(key, timeout: float) -> tuple[int, dict]:
    """Open ``key``, wait for every other worker to have it open too; ``(pid, info)``."""
    backend = _worker_backend(key)
    _WORKER["barrier"].wait(timeout)
    return os.getpid(), dict(backend.info(), xnnpack=backend.delegated())


def _worker_run(key, images: np.ndarray, transform) -> np.ndarray:
    return _worker_backend(key).predict_images(images, transform)


class ShardPool:
    """``workers`` spawned processes, each with its own interpreter of one model.

    Processes are started with ``spawn`` (not ``fork``: the parent may hold
    TensorFlow's and XNNPACK's threads), without the caller's main module
    (:func:`benchmark.workers.hidden_main`). Use :func:`shard_pool` to get a pool
    that is kept for the next variant, so the start-up (~0.3 s) is paid once
    per run.
    """

    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        ctx = multiprocessing.get_context("spawn")
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                             initargs=(ctx.Barrier(workers),))

    def open(self, key, timeout: float = 120.0) -> dict:
        """Have every worker open ``key = (path, batch, threads)``; a worker's backend info.

        Returns when all have it open (they meet at a barrier, so each of the
        ``workers`` calls runs in a different process).
        """
        with hidden_main():
            futures = [self._executor.submit(_worker_open, key, timeout)
                       for _ in range(self.workers)]
        answers = dict(f.result() for f in futures)
        if len(answers) != self.workers:
            raise RuntimeError(f"{len(answers)} of {self.workers} workers answered")
        return next(iter(answers.values()))

    def predict(self, key, images: np.ndarray, indices: np.ndarray, transform, *,
                chunk: int) -> np.ndarray:
        """Outputs of ``images[indices]`` in index order; rows go to the workers by ``chunk``.

        At most two chunks per worker are in flight, so memory does not grow
        with the dataset.
        """
        from collections import deque
        n = len(indices)
        out, pending = None, deque()

        def collect():
            nonlocal out
            start, fut = pending.popleft()
            res = fut.result()
            if out is None:
                out = np.empty((n,) + res.shape[1:], res.dtype)
            out[start:start + len(res)] = res

        for start in range(0, n, chunk):
            rows = read_rows(images, indices[start:start + chunk])
            with hidden_main():
                fut = self._executor.submit(_worker_run, key, rows, transform)
            pending.append((start, fut))
            while len(pending) >= 2 * self.workers:
                collect()
        while pending:
            collect()
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


_POOLS: dict[int, ShardPool] = {}


def shard_pool(workers: int) -> ShardPool:
    """The process-wide :class:`ShardPool` of ``workers`` processes (started on first use)."""
    pool = _POOLS.get(workers)
    if pool is None:
        import atexit
        if not _POOLS:
            atexit.register(close_pools)
        pool = _POOLS[workers] = ShardPool(workers)
    return pool


def close_pools() -> None:
    """Stop every worker process started by :func:`shard_pool`."""
    while _POOLS:
        _POOLS.popitem()[1].close()


def drop_pool(workers: int) -> None:
    """Stop and forget the pool of ``workers`` processes (after a failure)."""
    pool = _POOLS.pop(workers, None)
    if pool is not None:
        pool.close()


# ------------------------------------------------------------------ the automatic choice

#: Per-image multiply-accumulates from which worker processes beat threads (see plan_cpu).
PROCESS_MACS = 50e6
#: Upper bound of one batch's activations (bytes): big inputs get a smaller N.
ACTIVATION_BUDGET = 4 << 20
#: Default batch of the CPU copy, and the fewest images per worker worth a process.
DEFAULT_BATCH = 32
MIN_IMAGES_PER_WORKER = 256


@dataclass(frozen=True)
class ModelCost:
    """What the plan needs to know about a batch-1 model, read from its graph."""

    macs: int               # multiply-accumulates of one image (conv, depthwise, FC)
    operators: int
    activation_bytes: int   # the largest non-constant tensor of one image


def model_cost(model) -> ModelCost:
    """:class:`ModelCost` of a ``.tflite`` (MACs of CONV_2D, DEPTHWISE_CONV_2D, FC)."""
    from benchmark.tflite_graph import read_graph
    g = read_graph(model)
    macs = 0
    for op in g.operators:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or \
                len(op.inputs) < 2 or not op.outputs:
            continue
        w, out = g.tensors[op.inputs[1]].shape, g.tensors[op.outputs[0]].shape
        per_out = w[1] * w[2] if op.name == "DEPTHWISE_CONV_2D" else int(np.prod(w[1:]))
        macs += int(np.prod(out)) * int(per_out)
    acts = [int(np.prod(t.shape)) * np.dtype(_np_dtype(t.dtype)).itemsize
            for t in g.tensors if not t.is_constant and len(t.shape)]
    return ModelCost(macs=macs, operators=len(g.operators), activation_bytes=max(acts, default=0))


def _np_dtype(name: str):
    return {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32,
            "INT64": np.int64, "INT16": np.int16}.get(name, np.uint8)


@dataclass(frozen=True)
class CpuPlan:
    """How one CPU variant is evaluated: batch, processes and threads per process."""

    batch: int
    workers: int
    threads: int
    model: Path             # the batch-N copy, or the original at batch 1
    note: str = ""

    def record(self) -> dict:
        return {"batch": self.batch, "workers": self.workers,
                "threads_per_worker": self.threads, "plan": self.note}


def choose(cost: ModelCost, n_images: int, *, cores: int, num_threads: int | None,
           workers: int | None, batch: int | None = None) -> tuple[int, int, int]:
    """``(batch, workers, threads per worker)`` for a model of ``cost`` on ``cores`` cores.

    The rule, from interleaved runs on the 2-core development machine (see
    the module docstring): batch :data:`DEFAULT_BATCH`, less when one
    batch's largest activation would exceed :data:`ACTIVATION_BUDGET`
    (float SignNet: 8). Models of at least :data:`PROCESS_MACS` per image
    (ResNet56: 126 M) run as one single-threaded process per core, which
    holds up best when other jobs share the cores; lighter models (SignNet:
    21 M), whose images cost about as much to ship to a worker as to run,
    as one process with ``num_threads`` threads. No more workers than
    ``num_threads``, and none below :data:`MIN_IMAGES_PER_WORKER` images
    each. ``workers`` (``--workers``) overrides; ``batch`` overrides the
    batch (1 = the batch-1 model).
    Threads: ``num_threads`` (default: the cores) split over the workers.
    """
    total = max(1, num_threads or cores)
    if batch is None:
        fit = ACTIVATION_BUDGET // max(1, cost.activation_bytes)
        batch = int(max(1, min(DEFAULT_BATCH, 2 ** int(np.log2(max(1, fit))))))
    if workers is None:
        heavy = cost.macs >= PROCESS_MACS
        workers = min(total, cores, max(1, n_images // MIN_IMAGES_PER_WORKER)) if heavy else 1
    workers = max(1, int(workers))
    threads = max(1, total // workers)
    return batch, workers, threads


def plan_cpu(model, n_images: int, *, num_threads: int | None = None,
             workers: int | None = None, batch: int | None = None,
             probe: np.ndarray | None = None, transform=None) -> CpuPlan:
    """The :class:`CpuPlan` of a batch-1 CPU ``model`` over ``n_images`` images.

    :func:`choose` picks batch, workers and threads; the batch-N copy comes
    from :func:`batched_model` (checked on ``probe`` images through
    ``transform``), and a model that cannot be batched runs at batch 1 with
    the same workers and threads. ``batch=1, workers=1`` is the plain
    batch-1, single-process evaluation.
    """
    model = Path(model)
    cores = os.cpu_count() or 1
    try:
        cost = model_cost(model)
    except Exception as e:  # unreadable graph: the backend reports it properly
        cost, note = ModelCost(0, 0, 0), f"no cost ({type(e).__name__})"
    else:
        note = f"{cost.macs / 1e6:.0f} M MACs/image"
    batch, workers, threads = choose(cost, n_images, cores=cores, num_threads=num_threads,
                                     workers=workers, batch=batch)
    path = model
    if batch > 1:
        copy, why = batched_model(model, batch, probe=probe, transform=transform,
                                  threads=threads)
        if copy is None:
            batch, note = 1, f"{note}; {why}"
        else:
            path = copy
    return CpuPlan(batch=batch, workers=workers, threads=threads, model=path,
                   note=f"{note}; batch {batch} x {workers} worker(s) x {threads} thread(s)")
