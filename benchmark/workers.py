"""Starting worker processes safely (shared by the evaluation and dataset-building pools)."""

from __future__ import annotations

import sys
import types
from contextlib import contextmanager


@contextmanager
def hidden_main():
    """Start workers without re-running the caller's ``__main__`` script in them.

    ``spawn`` and ``forkserver`` import the parent's main module in every
    child, so a script without an ``if __name__ == "__main__"`` guard would
    run again there; the workers need nothing from it, so it is swapped for
    an empty module while the processes are started.
    """
    real = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = real
