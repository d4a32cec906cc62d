"""Type-check settings against a config dataclass's annotations, naming the setting.

Command-line values arrive typed (argparse ``type=``); values from a TOML or
JSON file arrive as whatever the file says. :func:`check_types` holds file
values to the field's annotation so ``limit = "abc"`` or ``limit = true`` is a
one-line error naming the file and the setting, instead of a TypeError deep in
the run or, worse, ``True`` taken as 1. Range checks (``>= 1``, choices) stay
in each config's ``validate()``, which CLI and file values both go through.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from benchmark.errors import UsageError

_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
          dict: "a table", type(None): "nothing"}


def _accepts(tp: Any, value: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits annotation ``tp``; returns (ok, value converted if needed)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            ok, v = _accepts(arm, value)
            if ok:
                return True, v
        return False, value
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):  # "8,6,4" / "float,int8": split by the config itself
            return True, value
        if not isinstance(value, (list, tuple)):
            return False, value
        inner = args[0] if args else Any
        out = []
        for item in value:
            ok, v = _accepts(inner, item)
            if not ok:
                return False, value
            out.append(v)
        return True, tuple(out)
    if tp is Any:
        return True, value
    if tp is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)), value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is type(None):
        return value is None, value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value


def describe(tp: Any) -> str:
    """Words for an annotation: ``int | None`` -> "an integer or nothing".

    Examples
    --------
    >>> describe(int | None), describe(tuple[int, ...]), describe(bool)
    ('an integer or nothing', 'a list of an integer', 'true or false')
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        return f"a list of {describe(args[0])}" if args else "a list"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def check_types(cls: type, values: dict, *, source: str) -> dict:
    """``values`` checked against the dataclass ``cls``'s field annotations.

    Parameters
    ----------
    cls : dataclass type
        E.g. :class:`benchmark.config.RunConfig`.
    values : dict
        Setting name -> value, as read from a file.
    source : str
        What to name in errors, e.g. ``"config file run.toml"``.

    Returns
    -------
    dict
        The same settings, lists turned into tuples where the field is a tuple.

    Raises
    ------
    UsageError
        ``"<source>: setting 'limit' must be an integer or nothing, got 'abc'"``
        for the first value of the wrong type; unknown settings are named too.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise UsageError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    out = {}
    for name, value in values.items():
        ok, converted = _accepts(hints[name], value)
        if not ok:
            raise UsageError(f"{source}: setting {name!r} must be {describe(hints[name])}, "
                             f"got {value!r}")
        out[name] = converted
    return out
