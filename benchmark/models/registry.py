"""Model registry in the style of timm: a name maps to a builder and its defaults.

Registering a model imports nothing heavy; Keras is imported only when a
model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmark.paths import models_root
from benchmark.preprocess import PixelTransform


@dataclass(frozen=True)
class ModelEntry:
    """What the harness needs to know about a registered model."""

    name: str
    builder: Callable[..., object]
    default_dataset: str
    input_size: int
    num_classes: int
    description: str
    train_defaults: dict = field(default_factory=dict)
    export_kwargs: dict = field(default_factory=dict)
    preprocess: PixelTransform = PixelTransform()
    #: what the network outputs: ``probs`` (softmax in the graph) or ``logits``
    #: (the harness applies the softmax after dequantizing)
    outputs: str = "probs"
    #: ``load_weights(path, keras_model)`` for pretrained weights given with
    #: ``--weights``; None: the model is trained here (``benchmark.train``)
    load_weights: Callable[..., None] | None = None
    #: what ``--weights`` expects, for error messages
    weights_help: str = ""
    #: training images used to calibrate the int8 activation ranges (at most)
    representative_size: int = 300

    def artifact_dir(self, split: str, root: Path | None = None) -> Path:
        """``<root>/<name>/<split>``: where the trained artifacts of a split live."""
        return Path(root if root is not None else models_root()) / self.name / split

    def build(self, **kwargs):
        """Build the Keras model (imports Keras)."""
        kw = {"num_classes": self.num_classes, "input_size": self.input_size}
        kw.update(kwargs)
        return self.builder(**kw)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def _ensure_builtin() -> None:
    if not _REGISTRY:
        from benchmark.models import signnet
        register_model(signnet.ENTRY)
        register_model(signnet.ENTRY_GTSRB)
        from benchmark.models import cifar_resnet
        for entry in cifar_resnet.ENTRIES:
            register_model(entry)
        from benchmark.models import imagenet
        for entry in imagenet.ENTRIES:
            register_model(entry)


def get_model(name: str) -> ModelEntry:
    """The registered model ``name``; ValueError lists the known names."""
    _ensure_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}") \
            from None


def list_models() -> list[str]:
    _ensure_builtin()
    return sorted(_REGISTRY)
