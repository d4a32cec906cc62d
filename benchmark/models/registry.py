"""The model registry: a name maps to a :class:`~benchmark.models.base.ModelEntry`.

Built-in models are lazy references (``module:attribute``), so listing them
imports nothing and looking one up imports only its module; Keras is imported
only when a model is built. Register your own with ``MODELS.register(name,
entry)``: that never hides the built-in ones.
"""

from __future__ import annotations

from benchmark.models.base import ModelEntry
from benchmark.registry import Registry

_BUILTIN = {
    "signnet": "benchmark.models.signnet:ENTRY",
    "signnet-gtsrb": "benchmark.models.signnet:ENTRY_GTSRB",
    **{f"resnet{d}": f"benchmark.models.cifar_resnet:RESNET{d}" for d in (20, 32, 44, 56)},
    "resnet50": "benchmark.models.imagenet:RESNET50",
    "mobilenetv2": "benchmark.models.imagenet:MOBILENETV2",
    "efficientnet-lite0": "benchmark.models.efficientnet_lite:EFFICIENTNET_LITE0",
}

MODELS: Registry[ModelEntry] = Registry("model", builtins=_BUILTIN, option="--model")


def register_model(entry: ModelEntry) -> ModelEntry:
    """Register ``entry`` under its name (ValueError when the name is taken)."""
    return MODELS.register(entry.name, entry)


def get_model(name: str) -> ModelEntry:
    """The registered model ``name``; :class:`~benchmark.errors.UsageError` lists the known ones."""
    return MODELS.get(name)


def list_models() -> list[str]:
    """Registered model names, sorted (imports no model module)."""
    return MODELS.names()
