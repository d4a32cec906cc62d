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


#: Named normalisations (``--preprocess`` / ``preset`` in model.toml): scale, mean, std.
PRESETS: dict[str, tuple[float, tuple[float, ...], tuple[float, ...]]] = {
    "unit": (1 / 255, (0.0,), (1.0,)),                       # [0, 1], SignNet
    "signed": (1 / 127.5, (1.0,), (1.0,)),                   # [-1, 1], MobileNet, EfficientNet
    "raw": (1.0, (0.0,), (1.0,)),                            # 0..255 as floats
    "imagenet": (1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # torchvision
}
RESIZE_METHODS = ("bilinear",)
CHANNEL_ORDERS = ("rgb", "bgr")
LAYOUTS = ("nhwc", "nchw")


@dataclass(frozen=True)
class Preprocessing:
    """How a model's input is made from an image, declared (flags, model.toml, metadata).

    The dataset loaders decode each image to RGB and resize it bilinearly to a
    square of :meth:`load_size`; a ``crop`` < 1 then keeps the centre
    ``input_size`` square of it (``crop = input_size / load_size``, e.g. 0.875
    for 224 of 256), ``channel_order = "bgr"`` reverses the channels, and the
    :class:`PixelTransform` ``(x * scale - mean) / std`` makes the float
    input. ``layout`` must be ``nhwc`` (channels last, what TFLite runs).

    >>> p = Preprocessing(input_size=224, crop=0.875)
    >>> p.load_size(), p.offset()
    (256, 16)
    """

    input_size: int
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    resize: str = "bilinear"
    crop: float = 1.0
    channel_order: str = "rgb"
    layout: str = "nhwc"
    #: where the declaration came from (flags, a TOML file, metadata), for results.json
    source: str = "model"

    def transform(self) -> PixelTransform:
        return PixelTransform(scale=self.scale, mean=self.mean, std=self.std)

    def load_size(self) -> int:
        """The side the loader resizes to before the centre crop."""
        return self.input_size if self.crop >= 1 else int(round(self.input_size / self.crop))

    def offset(self) -> int:
        return (self.load_size() - self.input_size) // 2

    def is_identity_view(self) -> bool:
        """True when the loaded images are the model's input images as they are."""
        return self.load_size() == self.input_size and self.channel_order == "rgb"

    def view(self, images: np.ndarray) -> np.ndarray:
        """The centre-cropped, channel-ordered view of loaded images (no copy)."""
        o, n = self.offset(), self.input_size
        out = images[:, o:o + n, o:o + n, :] if self.load_size() != n else images
        return out[..., ::-1] if self.channel_order == "bgr" else out

    def view_key(self) -> str:
        """What :meth:`view` does, for cache keys (empty when it does nothing)."""
        if self.is_identity_view():
            return ""
        return f"crop{self.input_size}of{self.load_size()}-{self.channel_order}"

    def record(self) -> dict:
        """The declaration as stored in results.json."""
        return {"input_size": self.input_size, "resize": self.resize, "crop": self.crop,
                "load_size": self.load_size(), "scale": self.scale, "mean": list(self.mean),
                "std": list(self.std), "channel_order": self.channel_order,
                "layout": self.layout, "source": self.source,
                "transform": self.transform().describe()}
