"""The backend interface and the quantization adapters every backend shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and affine quantization of a model input or output.

    ``scale == 0`` means the tensor is not quantized (float).
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    @classmethod
    def from_details(cls, d: dict) -> "TensorSpec":
        """From a TFLite interpreter's ``get_input_details()`` entry."""
        scale, zp = d.get("quantization", (0.0, 0))
        return cls(name=d["name"], shape=tuple(int(x) for x in d["shape"]),
                   dtype=np.dtype(d["dtype"]), scale=float(scale), zero_point=int(zp))


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Map real values to the tensor's integer grid: ``round(x / scale) + zero_point``.

    Uses the tensor's own scale and zero-point, saturating to its dtype's range.
    Float tensors get ``x`` cast to their dtype.
    """
    if not spec.quantized:
        return np.asarray(x, dtype=spec.dtype)
    info = np.iinfo(spec.dtype)
    q = np.rint(np.asarray(x, np.float32) / np.float32(spec.scale)) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Real values of a tensor: ``scale * (q - zero_point)`` as float32."""
    if not spec.quantized:
        return np.asarray(q, dtype=np.float32)
    return (np.float32(spec.scale) * (q.astype(np.int32) - spec.zero_point)).astype(np.float32)


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

    def table(self, spec: "TensorSpec", channels: int) -> np.ndarray:
        """``(256, channels)`` array: input-tensor value of each uint8 value per channel."""
        probe = np.repeat(np.arange(256, dtype=np.uint8)[:, None], channels, axis=1)
        return quantize(self(probe), spec)

    def describe(self) -> str:
        s = f"uint8 * {self.scale:.6g}"
        if any(self.mean) or any(v != 1.0 for v in self.std):
            s = f"({s} - mean {list(self.mean)}) / std {list(self.std)}"
        return s


class Backend(ABC):
    """A loaded model on one runtime.

    ``predict`` takes preprocessed float inputs (the float model's domain) and
    returns the dequantized float outputs; adapters quantize on the way in and
    dequantize on the way out, so metric code never sees integers.
    """

    #: short runtime name recorded in results.json, e.g. ``litert-cpu``
    name: str = "abstract"
    input_spec: TensorSpec
    output_spec: TensorSpec

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Run ``x`` of shape ``(B, *input_shape[1:])``; return ``(B, K)`` float32."""

    def predict_images(self, images: np.ndarray, transform: PixelTransform) -> np.ndarray:
        """Preprocess uint8 ``images`` with ``transform`` and run them."""
        return self.predict(transform(images))

    def info(self) -> dict:
        """JSON-serializable description of the runtime (recorded in results)."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release the runtime (optional)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
