"""The evaluate stage: streaming batched inference and per-variant results, no file I/O.

:func:`evaluate` feeds a backend batch by batch and collects probabilities;
:func:`evaluate_variant` opens a variant's model on its device, runs it and
returns a :class:`VariantResult` (predictions, metrics, confusion matrix,
runtime, latency). Persisting results is :mod:`benchmark.rundir`'s job.

CPU variants use the machine (:mod:`benchmark.batching`): a batch-N copy of
the model and/or worker processes, chosen from the cores and the model's
cost, with predictions bit-identical to batch-1, single-process evaluation.
``EvalSettings(workers=1, cpu_batch=1)`` forces the batch-1 single-process
path. On a busy machine (load average at or above the cores) one thread and
one worker (``--num-threads 1 --workers 1``) is as fast or faster. The Edge
TPU graph always runs at batch 1 in this process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from benchmark.backends.base import Backend
from benchmark.preprocess import PixelTransform
from benchmark.variants import Variant


@dataclass
class Predictions:
    probs: np.ndarray   # (N, K) float32
    labels: np.ndarray  # (N,) int64
    index: np.ndarray   # (N,) int64, position of each image in the dataset
    seconds: float      # wall time of predict() calls only

    @property
    def images_per_second(self) -> float:
        return self.labels.size / self.seconds if self.seconds > 0 else float("nan")


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, returned as float32."""
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def evaluate(backend: Backend, images: np.ndarray, labels: np.ndarray, indices: np.ndarray, *,
             batch_size: int = 64, preprocess: PixelTransform = PixelTransform(),
             progress: Callable[[int, int], None] | None = None,
             logits: bool = False, copy_rows: bool = True) -> Predictions:
    """Run ``backend`` over ``images[indices]`` in batches.

    Only one batch of images is read at a time, so memory does not grow with
    the dataset beyond the (N, K) output array. Each batch is copied out of
    the (memory-mapped) images into RAM before the backend runs it
    (``copy_rows=False``: a contiguous run is passed as a view of the map,
    which makes the invoke loop 10-20 % slower). Preprocessing and input
    quantization happen inside the backend (``predict_images``) and are
    included in the timed ``seconds``. With ``logits=True`` the model
    outputs logits and the (float) softmax is applied here, after
    dequantization, outside the timed part.
    """
    from benchmark.batching import read_rows
    indices = np.asarray(indices, np.int64)
    n = indices.size
    probs = None
    spent = 0.0
    for start in range(0, n, batch_size):
        idx = indices[start:start + batch_size]
        batch = read_rows(images, idx) if copy_rows else _rows_view(images, idx)
        t0 = time.perf_counter()
        out = backend.predict_images(batch, preprocess)
        spent += time.perf_counter() - t0
        if logits:
            out = softmax(out)
        if probs is None:
            probs = np.empty((n, out.shape[1]), np.float32)
        probs[start:start + idx.size] = out
        if progress:
            progress(start + idx.size, n)
    if probs is None:
        probs = np.empty((0, backend.output_spec.shape[-1]), np.float32)
    return Predictions(probs=probs, labels=np.asarray(labels)[indices].astype(np.int64),
                       index=indices, seconds=spent)


def _rows_view(images: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``images[idx]``, a contiguous run as a view (no copy out of the memory map)."""
    contiguous = idx.size and idx[-1] - idx[0] == idx.size - 1 and np.all(np.diff(idx) == 1)
    return images[idx[0]:idx[-1] + 1] if contiguous else images[idx]


@dataclass
class VariantResult:
    """Everything measured for one variant; the evaluate stage writes nothing to disk."""

    variant: Variant
    predictions: Predictions
    summary: dict          # classification_summary + calibration
    confusion: np.ndarray  # (K, K) counts, rows = true class
    runtime: dict
    wall_seconds: float
    latency: dict | None = None

    def record(self) -> dict:
        """The variant's entry in results.json (see :class:`benchmark.rundir.VariantRecord`)."""
        p, path = self.predictions, self.variant.path
        rec = dict(self.summary, model_file=str(path), model_bytes=path.stat().st_size,
                   device=self.variant.device, runtime=self.runtime,
                   inference_seconds=round(p.seconds, 4),
                   wall_seconds=round(self.wall_seconds, 4),
                   images_per_second=round(p.images_per_second, 2))
        rec.update(self.variant.record())
        if self.latency is not None:
            rec["latency"] = self.latency
        return rec

    def arrays(self) -> dict:
        """The arrays persisted beside the record (confusion matrix, predictions)."""
        p = self.predictions
        return {"confusion": self.confusion, "probs": p.probs, "labels": p.labels,
                "index": p.index}


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: batching, threads, histogram bins, latency runs.

    ``batch_size`` is the number of images read (and softmaxed) at a time.
    For CPU variants, ``num_threads`` is the total of threads (default: the
    cores), ``workers`` the processes they are split over (None: automatic,
    see :func:`benchmark.batching.choose`), ``cpu_batch`` the batch of the
    model copy (None: automatic, 1: the batch-1 model); ``copy_rows=False``
    reads rows as views of the memory map. ``workers=1, cpu_batch=1,
    copy_rows=False`` is the evaluation as it was before batching. When the
    machine is busy (load average at or above the cores), ``num_threads=1,
    workers=1`` is as fast or faster and takes the least from the others.
    """

    batch_size: int = 64
    num_threads: int | None = None
    workers: int | None = None
    edgetpu_device: str | None = None
    bins: int = 20
    calibration_bins: int = 15
    latency: int = 0
    latency_warmup: int = 10
    seed: int = 0
    cpu_batch: int | None = None
    copy_rows: bool = True


#: Top-k accuracy is reported for models with at least this many classes.
TOP_K, TOP_K_MIN_CLASSES = 5, 10
#: NLL floor of outputs not on an integer grid (float outputs, softmax applied here).
FLOAT_NLL_FLOOR = 1e-12


def summarize(probs: np.ndarray, labels: np.ndarray, *, num_classes: int,
              bins: int = 20, calibration_bins: int = 15,
              output_step: float | None = None) -> tuple[dict, np.ndarray]:
    """The blog's and the paper's metrics of one variant, and its confusion matrix.

    Besides :func:`~benchmark.metrics.classification_summary` and the
    calibration metrics: ``per_class`` (precision, recall, F1, support;
    macro and weighted averages, :func:`~benchmark.metrics.per_class_report`)
    and, with at least :data:`TOP_K_MIN_CLASSES` classes, ``top5_accuracy``.

    NLL: ``output_step`` is the quantization step of a quantized probability
    output (None: float outputs). An int8 model gives exactly 0 to the true
    class of some images; their ``-log p`` is infinite, so ``p`` is floored
    at half a step (``output_step / 2``, the upper edge of the values that
    round to 0: the reported NLL is then a lower bound) instead of
    :data:`FLOAT_NLL_FLOOR`. ``calibration`` records ``nll_floor`` and
    ``nll_zero_true`` (how many images got 0 for their true class).
    """
    from benchmark.metrics import classification_summary, confusion_matrix, per_class_report
    from benchmark.metrics import top_k_accuracy
    from benchmark.metrics.calibration import calibration_summary, negative_log_likelihood
    summary = classification_summary(probs, labels, bins=bins)
    cal = calibration_summary(probs, labels, n_bins=calibration_bins)
    floor = FLOAT_NLL_FLOOR if not output_step else output_step / 2
    labels = np.asarray(labels, np.int64)
    cal["nll_zero_true"] = int(np.sum(probs[np.arange(labels.size), labels] <= 0))
    cal["nll_floor"] = floor
    if floor != FLOAT_NLL_FLOOR:
        cal["nll"] = negative_log_likelihood(probs, labels, eps=floor)
    summary["calibration"] = cal
    pred = probs.argmax(axis=1)
    if num_classes >= TOP_K_MIN_CLASSES:
        summary[f"top{TOP_K}_accuracy"] = top_k_accuracy(labels, probs, k=TOP_K)
    summary["per_class"] = per_class_report(labels, pred, num_classes=num_classes)
    cm = confusion_matrix(labels, pred, num_classes=num_classes)
    return summary, cm


def output_step(variant: Variant, logits: bool) -> float | None:
    """The quantization step of ``variant``'s probability output (None: float outputs).

    None for a logits model (the softmax is applied here in float) and for a
    model file that is not a ``.tflite`` or whose output is not 8-bit.
    """
    path = variant.path
    if logits or path is None or path.suffix != ".tflite" or not path.is_file():
        return None
    from benchmark.tflite_graph import read_graph
    out = read_graph(path).output_tensors()[0]
    if out.dtype.upper() not in ("INT8", "UINT8") or not np.size(out.scale):
        return None
    return float(np.ravel(out.scale)[0]) or None


def evaluate_variant(variant: Variant, dataset, indices: np.ndarray, *,
                     preprocess: PixelTransform, logits: bool,
                     settings: EvalSettings = EvalSettings()) -> VariantResult:
    """Open ``variant`` on its device, run it over ``dataset.images[indices]``, summarize.

    CPU variants (device ``cpu``) follow :func:`benchmark.batching.plan_cpu`:
    a checked batch-N copy of the model and/or worker processes, with
    predictions bit-identical to the batch-1, single-process evaluation;
    their runtime record says which (``batch``, ``workers``,
    ``threads_per_worker``, ``plan``, ``xnnpack``), and ``wall_seconds``
    includes that set-up. Every other device runs as opened, at batch 1.

    Latency (``settings.latency`` > 0): the first invoke is timed on a fresh
    batch-1 interpreter before any inference on it (on the Edge TPU it
    uploads the parameters), the warm invokes after the evaluation pass.
    """
    if variant.device == "cpu":
        p, info, wall, latency = _run_cpu(variant, dataset, indices, preprocess, logits,
                                          settings)
    else:
        from benchmark.backends import make_backend
        backend = make_backend(variant.device, variant.path, num_threads=settings.num_threads,
                               edgetpu_device=settings.edgetpu_device)
        p, info, wall, latency = _run_backend(backend, dataset, indices, preprocess, logits,
                                              settings, settings.batch_size,
                                              desc=f"{variant.name} on {variant.device}")
    summary, cm = summarize(p.probs, p.labels, num_classes=dataset.num_classes,
                            bins=settings.bins, calibration_bins=settings.calibration_bins,
                            output_step=output_step(variant, logits))
    return VariantResult(variant=variant, predictions=p, summary=summary, confusion=cm,
                         runtime=info, wall_seconds=wall, latency=latency)


def _run_backend(backend, dataset, indices, preprocess, logits, settings: EvalSettings,
                 batch_size: int, timed_latency: bool = True, desc: str = "inference"):
    """Evaluate on an opened ``backend``: ``(predictions, info, wall, latency)``.

    With ``timed_latency`` (a batch-1 backend) the latency is measured on it,
    the first invoke before the evaluation pass.
    """
    from benchmark.latency import measure_latency, time_first_invoke
    lat = settings.latency and timed_latency
    with backend:
        first = time_first_invoke(backend, seed=settings.seed) if lat else None
        t0 = time.perf_counter()
        from benchmark.progress import bar
        p = evaluate(backend, dataset.images, dataset.labels, indices,
                     batch_size=batch_size, preprocess=preprocess, logits=logits,
                     copy_rows=settings.copy_rows, progress=bar(desc))
        wall = time.perf_counter() - t0
        info = backend.info()
        if hasattr(backend, "delegated"):
            info["xnnpack"] = backend.delegated()
        latency = (measure_latency(backend, runs=settings.latency,
                                   warmup=settings.latency_warmup, seed=settings.seed,
                                   first_invoke_ms=first) if lat else None)
    return p, info, wall, latency


def _batch1_latency(path, settings: EvalSettings) -> dict | None:
    """Latency of the batch-1 model on a fresh CPU interpreter (None when not asked for)."""
    if not settings.latency:
        return None
    from benchmark.backends import make_backend
    from benchmark.latency import measure_latency, time_first_invoke
    with make_backend("cpu", path, num_threads=settings.num_threads) as b:
        first = time_first_invoke(b, seed=settings.seed)
        return measure_latency(b, runs=settings.latency, warmup=settings.latency_warmup,
                               seed=settings.seed, first_invoke_ms=first)


def _run_cpu(variant: Variant, dataset, indices, preprocess, logits, settings: EvalSettings):
    """A CPU variant on its :class:`~benchmark.batching.CpuPlan`; as :func:`_run_backend`."""
    from dataclasses import replace
    from benchmark.backends.litert_cpu import LiteRTCPUBackend
    from benchmark.batching import drop_pool, plan_cpu, read_rows
    t0 = time.perf_counter()
    indices = np.asarray(indices, np.int64)
    plan = plan_cpu(variant.path, indices.size, num_threads=settings.num_threads,
                    workers=settings.workers, batch=settings.cpu_batch,
                    probe=read_rows(dataset.images, indices[:64]), transform=preprocess)
    if plan.workers > 1 and indices.size:
        try:
            p, info = _run_pool(plan, dataset, indices, preprocess, logits, settings)
        except Exception as e:  # no processes here (limits, sandbox): run in this one
            drop_pool(plan.workers)
            plan = replace(plan, workers=1, threads=settings.num_threads or os.cpu_count() or 1,
                           note=f"{plan.note}; workers failed ({type(e).__name__}: {e}), "
                                "one process")
        else:
            info.update(plan.record())
            return p, info, time.perf_counter() - t0, _batch1_latency(variant.path, settings)
    if plan.batch == 1:
        from benchmark.backends import make_backend
        backend = make_backend("cpu", variant.path, num_threads=plan.threads)
        p, info, _, latency = _run_backend(backend, dataset, indices, preprocess, logits,
                                           settings, settings.batch_size,
                                           desc=f"{variant.name} on cpu")
    else:
        backend = LiteRTCPUBackend(plan.model, num_threads=plan.threads or None,
                                   batch=plan.batch)
        step = plan.batch * max(1, -(-settings.batch_size // plan.batch))
        p, info, _, _ = _run_backend(backend, dataset, indices, preprocess, logits, settings,
                                     step, timed_latency=False, desc=f"{variant.name} on cpu")
        latency = _batch1_latency(variant.path, settings)
    info.update(plan.record())
    return p, info, time.perf_counter() - t0, latency


def _run_pool(plan, dataset, indices: np.ndarray, preprocess, logits, settings: EvalSettings):
    """Shard ``indices`` over :func:`~benchmark.batching.shard_pool`: ``(predictions, info)``.

    ``seconds`` counts from the first chunk sent to the last result back
    (the workers have the model open by then); a logits model gets its
    softmax here, ``settings.batch_size`` rows at a time as in :func:`evaluate`.
    """
    from benchmark.batching import shard_pool
    pool = shard_pool(plan.workers)
    key = (str(plan.model), plan.batch, plan.threads)
    info = pool.open(key)
    n = indices.size
    per = -(-n // (plan.workers * 4))              # about 4 chunks per worker
    chunk = min(8 * plan.batch, max(plan.batch, -(-per // plan.batch) * plan.batch))
    if plan.batch == 1:
        chunk = min(256, max(16, per))
    t0 = time.perf_counter()
    out = pool.predict(key, dataset.images, indices, preprocess, chunk=chunk)
    seconds = time.perf_counter() - t0
    probs = np.empty(out.shape, np.float32)
    for s in range(0, n, settings.batch_size):
        rows = out[s:s + settings.batch_size]
        probs[s:s + rows.shape[0]] = softmax(rows) if logits else rows
    info = dict(info, num_threads=plan.workers * plan.threads)
    labels = np.asarray(dataset.labels)[indices].astype(np.int64)
    return Predictions(probs=probs, labels=labels, index=indices, seconds=seconds), info


def seen_unseen(p: Predictions, fit_rows: np.ndarray, validation_rows: np.ndarray) -> dict:
    """Accuracy on the evaluated images the model was fitted on, held out for validation, or
    never used in training (``seen``, ``validation``, ``unseen``), each with n and a Wilson
    interval. ``p.index`` are dataset rows, as the training rows are."""
    from benchmark.metrics.classification import wilson_interval
    seen = np.isin(p.index, fit_rows)
    val = np.isin(p.index, validation_rows) & ~seen
    right = p.probs.argmax(axis=1) == p.labels
    out = {}
    for name, mask in (("seen", seen), ("validation", val), ("unseen", ~(seen | val))):
        n, c = int(mask.sum()), int(right[mask].sum())
        if n == 0:  # no such images: no accuracy (None, not NaN: NaN != NaN in a JSON diff)
            out[name] = {"n": 0, "n_correct": 0, "accuracy": None, "accuracy_interval": None}
            continue
        lo, hi = wilson_interval(c, n)
        out[name] = {"n": n, "n_correct": c, "accuracy": c / n,
                     "accuracy_interval": {"low": lo, "high": hi, "confidence": 0.95,
                                           "method": "wilson"}}
    return out


def split_metrics(results: dict[str, VariantResult], ds, train_meta: dict) -> dict:
    """Split-level metrics of a run, added to the split's record (and to each variant's).

    - ``training_rows``: how the model's training images were established
      (:func:`benchmark.trainsplit.training_rows`), and each variant's summary
      gets ``training_seen`` (:func:`seen_unseen`) when they were;
    - ``recall_change``: per class, each quantized variant's recall minus its
      float reference's, with the class's n (:func:`~benchmark.metrics.recall_change`).
    """
    from benchmark.metrics import recall_change
    from benchmark.trainsplit import training_rows
    rows, how = training_rows(ds, train_meta)
    out: dict = {"training_rows": {"known": rows is not None, "how": how}}
    for r in results.values():
        if rows is not None:
            r.summary["training_seen"] = seen_unseen(r.predictions, rows.fit, rows.validation)
    ref = results.get("float")
    quantized = [v for v, r in results.items() if r.variant.quantized]
    if ref is not None and quantized:
        t = ref.predictions.labels
        out["recall_change"] = {"reference": "float"}
        for v in quantized:
            q = results[v].predictions
            if not np.array_equal(q.index, ref.predictions.index):
                continue
            out["recall_change"][v] = recall_change(t, ref.predictions.probs.argmax(1),
                                                    q.probs.argmax(1), num_classes=ds.num_classes)
    return out
