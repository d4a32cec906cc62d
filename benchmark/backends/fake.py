"""A deterministic stand-in backend for tests (no interpreter needed)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from benchmark.backends.base import Backend, TensorSpec


class FakeBackend(Backend):
    """Outputs ``fn(x)``; by default a seeded random linear map followed by softmax.

    Parameters
    ----------
    model_path : ignored (kept for the common constructor signature)
    input_shape : tuple
        Including the batch dimension 1.
    num_classes : int
    fn : callable, optional
        ``fn(x) -> (B, K)`` probabilities.
    seed : int
    """

    name = "fake"

    def __init__(self, model_path=None, *, input_shape=(1, 80, 80, 3), num_classes: int = 30,
                 fn: Callable[[np.ndarray], np.ndarray] | None = None, seed: int = 0):
        self.input_spec = TensorSpec("input", tuple(input_shape), np.dtype(np.float32))
        self.output_spec = TensorSpec("output", (1, num_classes), np.dtype(np.float32))
        if fn is None:
            w = np.random.default_rng(seed).normal(size=(int(np.prod(input_shape[1:])),
                                                         num_classes)).astype(np.float32)

            def fn(x):
                z = x.reshape(x.shape[0], -1).astype(np.float32) @ w
                z -= z.max(axis=1, keepdims=True)
                e = np.exp(z)
                return e / e.sum(axis=1, keepdims=True)
        self.fn = fn
        self.calls = 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(self.fn(np.asarray(x)), dtype=np.float32)
