"""The backend interface and the quantization adapters every backend shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from benchmark.preprocess import PixelTransform


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
