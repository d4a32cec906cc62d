"""Image preprocessing shared by training, conversion and every backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class PixelTransform:
    """Per-channel affine preprocessing of uint8 images: ``(x * scale - mean) / std``.

    Being a function of each (value, channel) pair alone, it can be tabulated:
    :meth:`table` gives the model-input value of every uint8 value, already
    quantized to the input tensor, which backends use to write inputs straight
    into the interpreter's buffer.
    """

    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = np.asarray(images, np.float32) * np.float32(self.scale)
        if any(self.mean) or any(s != 1.0 for s in self.std):
            x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return x

    def table(self, quantize: Callable[[np.ndarray], np.ndarray], channels: int) -> np.ndarray:
        """``(256, channels)`` array: ``quantize(transform(v))`` of each uint8 value ``v``.

        ``quantize`` maps float model inputs to the input tensor's values
        (identity-cast for float tensors).
        """
        probe = np.repeat(np.arange(256, dtype=np.uint8)[:, None], channels, axis=1)
        return quantize(self(probe))

    def describe(self) -> str:
        s = f"uint8 * {self.scale:.6g}"
        if any(self.mean) or any(v != 1.0 for v in self.std):
            s = f"({s} - mean {list(self.mean)}) / std {list(self.std)}"
        return s
