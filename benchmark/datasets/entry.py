"""The dataset interface: what a registered dataset declares, and the checks of its options.

A dataset is a :class:`DatasetEntry` in :data:`benchmark.datasets.registry.DATASETS`:
its name, a frozen dataclass of its options (each field typed, with a default
and optionally a range rule), what ``--data-dir`` must be, a cheap check of
the data dir (listing files, never decoding an image) and its loader
``load(request, options) -> Dataset``. :func:`parse_options` turns a plain dict
(from the command line or a config file) into that dataclass, raising
:class:`~benchmark.errors.UsageError` naming the option for anything unknown,
mistyped or out of range.

This module imports nothing heavy: the registry lists names without it, and
the planning stage of a run validates with it before anything is written.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from benchmark.errors import DataError, UsageError

if TYPE_CHECKING:
    from benchmark.datasets.base import Dataset

#: Command-line flag of each per-loader option (config files use the option name).
OPTION_FLAGS = {"roi_crop": "--roi-crop", "class_names": "--class-names",
                "n_sessions": "--synth-sessions", "per_class_per_session": "--synth-per-class"}
#: What ``--on-bad-image`` accepts.
ON_BAD_IMAGE = ("fail", "skip")


def option(default, *, help: str, check: Callable[[Any], bool] | None = None,
           rule: str | None = None, path: bool = False):
    """A field of an options dataclass.

    Parameters
    ----------
    default
        The value when the option is not given.
    help : str
        One line for documentation and messages.
    check : callable, optional
        ``check(value) -> bool``; False raises a UsageError saying ``rule``.
    rule : str, optional
        What a valid value is ("an integer >= 1"), shown when ``check`` fails.
    path : bool
        A file path: a ``str`` field that also accepts ``os.PathLike`` (stored as str).
    """
    return field(default=default, metadata={"help": help, "check": check, "rule": rule,
                                            "path": path})


@dataclass(frozen=True)
class NoOptions:
    """Options of a dataset that takes none."""


@dataclass(frozen=True)
class LoadRequest:
    """Everything but the options that a loader needs (validated by the registry)."""

    name: str
    image_size: int
    seed: int
    cache_dir: Path
    verbose: bool
    data_dir: Path | None
    on_bad_image: str
    num_classes: int | None


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    Attributes
    ----------
    name : str
    load : callable
        ``load(request: LoadRequest, options) -> Dataset``, ``options`` an
        instance of :attr:`options`.
    options : type
        Frozen dataclass of the loader's options (fields made with :func:`option`).
    summary : str
        One line: what the dataset is.
    data_dir : str, optional
        What ``--data-dir`` must be (shown when it is missing); None: the
        dataset takes no data dir (it is rendered).
    check_source : callable, optional
        ``check_source(data_dir: Path, options)``: cheap checks that the data
        dir (and any file an option names) exists and is readable, raising
        DataError; no image is decoded.
    variable_classes : bool
        The class list comes from the data, so ``--num-classes`` applies.
    downloadable : bool
        ``--download`` can fetch the files (:mod:`benchmark.datasets.download`).
    """

    name: str
    load: Callable[[LoadRequest, Any], "Dataset"]
    options: type = NoOptions
    summary: str = ""
    data_dir: str | None = None
    check_source: Callable[[Path, Any], None] | None = None
    variable_classes: bool = False
    downloadable: bool = False


def _flag(key: str) -> str:
    return f" ({OPTION_FLAGS[key]})" if key in OPTION_FLAGS else ""


def _type_ok(value, tp, path: bool) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return any(_type_ok(value, a, path) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str) or (path and isinstance(value, os.PathLike))
    raise TypeError(f"option type {tp!r} is not supported")  # a bug in an options class


def _type_words(tp, path: bool) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
    words = {bool: "true or false", int: "an integer", float: "a number",
             str: "a file path" if path else "a string"}
    return " or ".join(words.get(a, getattr(a, "__name__", str(a))) for a in args)


def option_fields(options_cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """``(field, resolved type)`` of every option of an options dataclass."""
    hints = typing.get_type_hints(options_cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(options_cls)]


def parse_options(entry: DatasetEntry, options: Mapping | None):
    """``entry.options`` built from a dict, every value type- and range-checked.

    Raises
    ------
    UsageError
        An unknown option (listing the known ones), a value of the wrong
        type, or one its rule rejects; the message names the dataset, the
        option and, when there is one, its command-line flag.
    """
    if isinstance(options, entry.options):
        return options
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise UsageError(f"{entry.name} dataset options must be a table of name = value, "
                         f"got {options!r}")
    fields = option_fields(entry.options)
    known = [f.name for f, _ in fields]
    unknown = sorted(set(options) - set(known), key=str)
    if unknown:
        hint = f"known: {', '.join(known)}" if known else f"{entry.name} has none"
        raise UsageError(f"unknown {entry.name} option(s): {', '.join(map(str, unknown))} "
                         f"({hint})")
    values = {}
    for f, tp in fields:
        if f.name not in options:
            continue
        value, meta = options[f.name], f.metadata
        if not _type_ok(value, tp, meta.get("path", False)):
            raise UsageError(f"{entry.name} option {f.name}{_flag(f.name)} must be "
                             f"{_type_words(tp, meta.get('path', False))}, got {value!r}")
        if meta.get("path") and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if value is not None and meta.get("check") and not meta["check"](value):
            raise UsageError(f"{entry.name} option {f.name}{_flag(f.name)} must be "
                             f"{meta['rule']}, got {value!r}")
        values[f.name] = value
    return entry.options(**values)


def check_readable(path: Path) -> None:
    """DataError unless ``path`` (a file, or a folder that can be listed) is readable."""
    mode = os.R_OK | (os.X_OK if path.is_dir() else 0)
    if not os.access(path, mode):
        raise DataError(f"cannot read {path}: permission denied")
