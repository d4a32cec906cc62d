"""Shared command-line plumbing: one-line errors and exit codes, no tracebacks."""

from __future__ import annotations

import os
import sys
from typing import Callable

from benchmark.errors import BenchError


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ logging before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def main_wrapper(prog: str, main: Callable[[list[str] | None], int],
                 argv: list[str] | None = None) -> int:
    """Run ``main`` and turn expected failures into ``prog: error: ...`` + exit code."""
    try:
        return main(argv)
    except BenchError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into `head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("EDGETPU_BENCH_DEBUG"):
            raise
        print(f"{prog}: error: {e} (set EDGETPU_BENCH_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return 2


def require_tensorflow(what: str):
    """Import TensorFlow or raise a one-line error naming the ``train`` extra."""
    quiet_tensorflow()
    try:
        import tensorflow as tf
    except ImportError:
        from benchmark.errors import BackendUnavailable
        raise BackendUnavailable(
            f"{what} needs TensorFlow: pip install -e '.[train]' (or make train-deps)") from None
    return tf
