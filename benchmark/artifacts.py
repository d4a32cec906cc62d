"""The records next to a model's files: ``train_meta.json`` and ``convert_meta.json``.

:class:`TrainMeta` is written by ``benchmark.train`` (a model trained here)
and by :func:`benchmark.convert.convert_pretrained` (``source="pretrained"``:
weights from elsewhere, so no training seed, hyperparameters or time).
:class:`ConvertMeta` is written by :func:`benchmark.convert.convert_keras`.
Read them only through :func:`read_train_meta` and :func:`read_convert_meta`:
a missing file, bad JSON, a missing key or a value of the wrong type is a
:class:`~benchmark.errors.DataError` naming the file.

``to_json()`` gives exactly the dict that was (or would be) written, keys in
the same order; keys a reader does not know (``source_model``, added by
``benchmark.run`` for a re-conversion) are kept in ``extra`` and written back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import DataError

#: Keys of a train_meta.json in the order they are written; pretrained-only and
#: trained-only keys are written only when set.
_TRAIN_ORDER = ("model", "dataset", "split", "source", "weights", "weights_sha256",
                "dataset_meta", "dataset_options", "data_dir", "num_classes", "class_names",
                "input_size", "preprocessing", "n_train", "n_eval", "seed", "data_seed",
                "hyperparameters", "train_seconds", "environment")
_TRAIN_OPTIONAL = frozenset({"source", "weights", "weights_sha256", "dataset_options", "seed",
                             "hyperparameters", "train_seconds"})
_CONVERT_ORDER = ("io_type", "representative_size", "seed", "act_observer",
                  "activation_ranges", "export_max_abs_diff", "variants", "keras_sha256",
                  "environment")
_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "dict": (dict,),
          "list": (list,), "any": (object,)}


def _kind(f: dataclasses.Field) -> str:
    return f.metadata.get("kind", "any")


def _req(kind: str, **kw):
    return field(metadata={"kind": kind}, **kw)


def _opt(kind: str, default=None):
    return field(default=default, metadata={"kind": kind, "optional": True})


@dataclass(frozen=True)
class TrainMeta:
    """What a split's model was made from (``train_meta.json``).

    ``source`` is ``"pretrained"`` for converted pretrained weights (then
    ``weights`` and ``weights_sha256`` are set and ``seed``,
    ``hyperparameters`` and ``train_seconds`` are None), None for a model
    trained here. ``dataset_options`` is None in records older than that key
    (see :func:`benchmark.datasets.registry.trained_dataset_options`).
    """

    model: str = _req("str")
    dataset: str = _req("str")
    split: str = _req("str")
    dataset_meta: dict = _req("dict")
    num_classes: int = _req("int")
    class_names: list = _req("list")
    input_size: int = _req("int")
    preprocessing: Any = _req("any")
    n_train: int = _req("int")
    n_eval: int = _req("int")
    data_seed: int = _req("int")
    environment: dict = _req("dict")
    data_dir: str | None = _opt("str")
    dataset_options: dict | None = _opt("dict")
    seed: int | None = _opt("int")
    hyperparameters: dict | None = _opt("dict")
    train_seconds: float | None = _opt("float")
    source: str | None = _opt("str")
    weights: str | None = _opt("str")
    weights_sha256: str | None = _opt("str")
    extra: dict = field(default_factory=dict)
    #: read from a file: the optional keys it did not have (exactly those are not written
    #: back); None (a new record): optional keys whose value is None are not written
    absent: frozenset | None = field(default=None, repr=False, compare=False)

    @property
    def pretrained(self) -> bool:
        return self.source == "pretrained"

    @classmethod
    def from_json(cls, data: dict, *, path: str | Path = "train_meta.json") -> "TrainMeta":
        """The record of a parsed ``train_meta.json``; DataError naming ``path`` if malformed."""
        meta = cls(**_fields_from(cls, data, path, _TRAIN_ORDER))
        need = ("weights", "weights_sha256") if meta.pretrained else ("seed",)
        missing = [k for k in need if getattr(meta, k) is None]
        if missing:
            what = "pretrained" if meta.pretrained else "trained"
            raise DataError(f"{path}: a {what} model's record has no {', '.join(missing)}")
        return meta

    def to_json(self) -> dict:
        """The dict written to ``train_meta.json`` (same keys, same order as ever)."""
        return _to_json(self, _TRAIN_ORDER, _TRAIN_OPTIONAL)


@dataclass(frozen=True)
class ConvertMeta:
    """How a split's TFLite models were converted (``convert_meta.json``).

    ``act_observer`` is None in records older than the observers (min-max
    ranges: see :attr:`observer`).
    """

    io_type: str = _req("str")
    representative_size: int = _req("int")
    seed: int = _req("int")
    export_max_abs_diff: float = _req("float")
    variants: dict = _req("dict")
    environment: dict = _req("dict")
    act_observer: str | None = _opt("str")
    activation_ranges: dict | None = _opt("dict")
    #: SHA-256 of the .keras converted (None in records older than the key, and for
    #: conversions of pretrained weights)
    keras_sha256: str | None = _opt("str")
    extra: dict = field(default_factory=dict)
    #: read from a file: the optional keys it did not have (exactly those are not written
    #: back); None (a new record): optional keys whose value is None are not written
    absent: frozenset | None = field(default=None, repr=False, compare=False)

    @property
    def observer(self) -> str:
        """The activation observer, ``minmax`` for records older than the key."""
        return self.act_observer or "minmax"

    @classmethod
    def from_json(cls, data: dict, *, path: str | Path = "convert_meta.json") -> "ConvertMeta":
        """The record of a parsed ``convert_meta.json``; DataError naming ``path`` if malformed."""
        return cls(**_fields_from(cls, data, path, _CONVERT_ORDER))

    def to_json(self) -> dict:
        """The dict written to ``convert_meta.json``."""
        # act_observer and activation_ranges are written even when None (as null)
        return _to_json(self, _CONVERT_ORDER, frozenset({"keras_sha256"}))


def _fields_from(cls, data, path, order) -> dict:
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    values: dict = {"extra": {k: v for k, v in data.items() if k not in order}}
    absent = set()
    for f in dataclasses.fields(cls):
        if "kind" not in f.metadata:
            continue
        if f.name not in data:
            if not f.metadata.get("optional"):
                raise DataError(f"{path}: missing key {f.name!r} (not a complete record; "
                                "re-create it with the command that writes it)")
            absent.add(f.name)
            continue
        value = data[f.name]
        if not _type_ok(value, f):
            raise DataError(f"{path}: {f.name!r} is {json.dumps(value)[:60]}, expected "
                            f"{'/'.join(t.__name__ for t in _TYPES[_kind(f)])}")
        values[f.name] = value
    values["absent"] = frozenset(absent)
    return values


def _type_ok(value, f: dataclasses.Field) -> bool:
    kind = _kind(f)
    if kind == "any" or (value is None and f.metadata.get("optional")):
        return True
    types = _TYPES[kind]
    return isinstance(value, types) and not isinstance(value, bool)


def _to_json(rec, order, omit_none) -> dict:
    out = {}
    for k in order:
        v = getattr(rec, k)
        if (k in rec.absent) if rec.absent is not None else (v is None and k in omit_none):
            continue
        out[k] = v
    out.update(rec.extra)
    return out


def _read(path: str | Path, what: str):
    from benchmark.results import read_text_file
    text = read_text_file(path, what)
    try:
        return json.loads(text)
    except ValueError as e:
        raise DataError(f"{what} {path} is not valid JSON: {e}") from None


def read_train_meta(path: str | Path) -> TrainMeta:
    """The :class:`TrainMeta` in ``path``; DataError naming the file if missing or malformed."""
    return TrainMeta.from_json(_read(path, "train record"), path=path)


def read_convert_meta(path: str | Path) -> ConvertMeta:
    """The :class:`ConvertMeta` in ``path``; DataError naming the file if missing or malformed."""
    return ConvertMeta.from_json(_read(path, "conversion record"), path=path)
