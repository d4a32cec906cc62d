"""One small generic registry, used for models, datasets, backends and observers.

In the spirit of timm's ``_registry.py``, without module globals that fill
themselves on first use: a :class:`Registry` is created with its built-in
entries given as *lazy references* (``"package.module:attribute"``), so

- listing names (``choices=``, "available: ..." messages) imports nothing;
- looking a name up imports only the module that defines it (the CLI never
  loads TensorFlow or a TFLite runtime just to print ``--help``);
- the defining modules never import the registry back (no import cycles);
- registering a new entry never hides the built-in ones.

Examples
--------
>>> r = Registry("colour", builtins={"red": "builtins:str"})
>>> r.names()
['red']
>>> r.register("blue", 2)
2
>>> r.names(), r.get("blue")
(['blue', 'red'], 2)
>>> r.get("green")
Traceback (most recent call last):
...
benchmark.errors.UsageError: unknown colour 'green'; available: blue, red
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, Mapping, TypeVar

from benchmark.errors import UsageError

T = TypeVar("T")


def resolve(reference: str):
    """The object a ``"module:attribute"`` reference names (imports the module)."""
    module, _, attr = reference.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Names mapped to objects, each given directly or as a lazy reference.

    Parameters
    ----------
    kind : str
        What the entries are ("model", "dataset", ...), used in messages.
    builtins : mapping of str to str, optional
        Built-in entries as ``name -> "module:attribute"`` references,
        resolved (imported) on first lookup.
    option : str, optional
        The command-line option that takes a name, e.g. ``--model``, used in
        the unknown-name message.
    """

    def __init__(self, kind: str, *, builtins: Mapping[str, str] | None = None,
                 option: str | None = None):
        self.kind = kind
        self.option = option
        self._lazy: dict[str, str] = dict(builtins or {})
        self._resolved: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None, *, lazy: str | None = None,
                 replace: bool = False):
        """Add ``name``; usable as ``register(name, obj)`` or as a decorator ``@register(name)``.

        Raises
        ------
        ValueError
            When ``name`` is taken and ``replace`` is False (a programming error).
        """
        if (obj is None) == (lazy is None):
            if obj is None and lazy is None:
                return lambda o: self.register(name, o, replace=replace)
            raise ValueError("register() takes an object or a lazy reference, not both")
        if not replace and name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._resolved.pop(name, None)
        self._lazy.pop(name, None)
        if lazy is not None:
            self._lazy[name] = lazy
        else:
            self._resolved[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests register temporary entries)."""
        self._resolved.pop(name, None)
        self._lazy.pop(name, None)

    def get(self, name: str) -> T:
        """The entry ``name``; :class:`UsageError` listing the known names otherwise."""
        if name in self._resolved:
            return self._resolved[name]
        if name in self._lazy:
            obj = resolve(self._lazy.pop(name))
            self._resolved[name] = obj
            return obj
        raise UsageError(self.unknown_message(name))

    def unknown_message(self, name) -> str:
        opt = f" ({self.option})" if self.option else ""
        return f"unknown {self.kind} {name!r}{opt}; available: {', '.join(self.names())}"

    def names(self) -> list[str]:
        """All registered names, sorted (imports nothing)."""
        return sorted(set(self._lazy) | set(self._resolved))

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, entry)`` pairs, resolving every lazy entry."""
        for name in self.names():
            yield name, self.get(name)

    def filter(self, predicate: Callable[[T], bool]) -> list[str]:
        """Names whose entry satisfies ``predicate`` (resolves every entry)."""
        return [n for n, e in self.items() if predicate(e)]

    def __contains__(self, name) -> bool:
        return name in self._lazy or name in self._resolved

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
