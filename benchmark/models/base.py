"""What the harness knows about a model: :class:`ModelEntry` (imports nothing heavy).

Model modules define entries with it; :mod:`benchmark.models.registry` lists
them by lazy reference, so neither imports the other back.
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
    #: the int8 graph may hold ops outside convert.INT8_ALLOWED_OPS (models given by path)
    any_ops: bool = False

    def artifact_dir(self, split: str, root: Path | None = None) -> Path:
        """``<root>/<name>/<split>``: where the trained artifacts of a split live."""
        return Path(root if root is not None else models_root()) / self.name / split

    def build(self, **kwargs):
        """Build the Keras model (imports Keras)."""
        kw = {"num_classes": self.num_classes, "input_size": self.input_size}
        kw.update(kwargs)
        return self.builder(**kw)
