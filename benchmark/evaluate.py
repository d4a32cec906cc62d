"""The evaluate stage: streaming batched inference and per-variant results, no file I/O.

:func:`evaluate` feeds a backend batch by batch and collects probabilities;
:func:`evaluate_variant` opens a variant's model on its device, runs it and
returns a :class:`VariantResult` (predictions, metrics, confusion matrix,
runtime, latency). Persisting results is :mod:`benchmark.rundir`'s job.
"""

from __future__ import annotations

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
             logits: bool = False) -> Predictions:
    """Run ``backend`` over ``images[indices]`` in batches.

    Only one batch of images is read at a time, so memory does not grow with
    the dataset beyond the (N, K) output array. Preprocessing and input
    quantization happen inside the backend (``predict_images``) and are
    included in the timed ``seconds``. With ``logits=True`` the model
    outputs logits and the (float) softmax is applied here, after
    dequantization, outside the timed part.
    """
    indices = np.asarray(indices, np.int64)
    n = indices.size
    probs = None
    spent = 0.0
    for start in range(0, n, batch_size):
        idx = indices[start:start + batch_size]
        # A contiguous run of indices is read as a view (no copy out of the memory map).
        contiguous = idx.size and idx[-1] - idx[0] == idx.size - 1 and np.all(np.diff(idx) == 1)
        batch = images[idx[0]:idx[-1] + 1] if contiguous else images[idx]
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
    """How to evaluate: batching, threads, histogram bins, latency runs."""

    batch_size: int = 64
    num_threads: int | None = None
    workers: int | None = None
    edgetpu_device: str | None = None
    bins: int = 20
    calibration_bins: int = 15
    latency: int = 0
    latency_warmup: int = 10
    seed: int = 0


def summarize(probs: np.ndarray, labels: np.ndarray, *, num_classes: int,
              bins: int = 20, calibration_bins: int = 15) -> tuple[dict, np.ndarray]:
    """The blog's and the paper's metrics of one variant, and its confusion matrix."""
    from benchmark.metrics import classification_summary, confusion_matrix
    from benchmark.metrics.calibration import calibration_summary
    summary = classification_summary(probs, labels, bins=bins)
    summary["calibration"] = calibration_summary(probs, labels, n_bins=calibration_bins)
    cm = confusion_matrix(labels, probs.argmax(axis=1), num_classes=num_classes)
    return summary, cm


def evaluate_variant(variant: Variant, dataset, indices: np.ndarray, *,
                     preprocess: PixelTransform, logits: bool,
                     settings: EvalSettings = EvalSettings()) -> VariantResult:
    """Open ``variant`` on its device, run it over ``dataset.images[indices]``, summarize.

    Latency (``settings.latency`` > 0): the first invoke is timed on the fresh
    interpreter before any inference (on the Edge TPU it uploads the
    parameters), the warm invokes after the evaluation pass.
    """
    from benchmark.backends import make_backend
    from benchmark.latency import measure_latency, time_first_invoke

    backend = make_backend(variant.device, variant.path, num_threads=settings.num_threads,
                           edgetpu_device=settings.edgetpu_device)
    with backend:
        first = time_first_invoke(backend, seed=settings.seed) if settings.latency else None
        t0 = time.perf_counter()
        p = evaluate(backend, dataset.images, dataset.labels, indices,
                     batch_size=settings.batch_size, preprocess=preprocess, logits=logits)
        wall = time.perf_counter() - t0
        info = backend.info()
        latency = (measure_latency(backend, runs=settings.latency,
                                   warmup=settings.latency_warmup, seed=settings.seed,
                                   first_invoke_ms=first) if settings.latency else None)
    summary, cm = summarize(p.probs, p.labels, num_classes=dataset.num_classes,
                            bins=settings.bins, calibration_bins=settings.calibration_bins)
    return VariantResult(variant=variant, predictions=p, summary=summary, confusion=cm,
                         runtime=info, wall_seconds=wall, latency=latency)
