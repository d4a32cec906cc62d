"""Streaming batched inference: feed a backend batch by batch, collect probabilities."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


import numpy as np

from benchmark.backends.base import Backend
from benchmark.preprocess import PixelTransform


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
