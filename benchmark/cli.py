"""Shared command-line plumbing: one-line errors and exit codes, no tracebacks."""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator

from benchmark.errors import BenchError


#: The program name a command runs under when started as ``edgetpu-bench <command>``.
_PROG: ContextVar[str | None] = ContextVar("edgetpu_bench_prog", default=None)


def prog_name(default: str) -> str:
    """The name to show in usage lines: ``edgetpu-bench <command>`` or ``default``.

    Parsers pass ``prog=prog_name("python -m benchmark.<module>")`` so that
    ``--help`` shows how the command was really started.

    Examples
    --------
    >>> prog_name("python -m benchmark.latency")
    'python -m benchmark.latency'
    >>> with running_as("edgetpu-bench latency"):
    ...     prog_name("python -m benchmark.latency")
    'edgetpu-bench latency'
    """
    return _PROG.get() or default


@contextmanager
def running_as(prog: str) -> Iterator[None]:
    """Within the block, :func:`prog_name` returns ``prog``."""
    token = _PROG.set(prog)
    try:
        yield
    finally:
        _PROG.reset(token)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ logging before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


#: OSErrors that name a file the user gave (or a folder they pointed at): exit code 3.
USER_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
                    FileExistsError)

#: errno of a full or read-only file system (no space, quota, read-only): exit code 3 too.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _debug() -> bool:
    return bool(os.environ.get("EDGETPU_BENCH_DEBUG"))


def describe_os_error(e: OSError) -> str:
    """One line naming the file of an :class:`OSError`: ``PATH: No such file or directory``.

    Examples
    --------
    >>> describe_os_error(FileNotFoundError(2, "No such file or directory", "/x/m.tflite"))
    '/x/m.tflite: No such file or directory'
    >>> describe_os_error(PermissionError("no access"))
    'no access'
    """
    reason = e.strerror or (str(e).splitlines() or [type(e).__name__])[0]
    if e.filename is None:
        return reason
    name = f"{e.filename} -> {e.filename2}" if e.filename2 is not None else f"{e.filename}"
    return f"{name}: {reason}"


def internal_error_line(prog: str, e: BaseException) -> str:
    """The one line printed for an unexpected exception (a bug, not a user error).

    Examples
    --------
    >>> internal_error_line("p", TypeError("bad operand")).split(" (")[0]
    'p: internal error: TypeError: bad operand'
    """
    lines = str(e).strip().splitlines()
    what = f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
    return (f"{prog}: internal error: {what} "
            "(this is a bug; set EDGETPU_BENCH_DEBUG=1 for a traceback)")


def main_wrapper(prog: str, main: Callable[[list[str] | None], int],
                 argv: list[str] | None = None) -> int:
    """Run ``main`` and turn failures into one line on stderr and an exit code.

    - :class:`~benchmark.errors.BenchError` (a user error): ``prog: error: MESSAGE``,
      its ``exit_code`` (2 usage, 3 data, 4 backend);
    - an OSError about a file (:data:`USER_FILE_ERRORS`) or a full / read-only file system
      (:data:`DISK_ERRNOS`): ``prog: error: FILE: REASON``, exit code 3 (what was already
      written is kept; ``benchmark.run --resume`` continues a run);
    - a closed stdout (``| head``): exit code 0; Ctrl-C: exit code 130;
    - any other exception is a bug: ``prog: internal error: TypeName: message (this is a
      bug; ...)``, exit code 1.

    With ``EDGETPU_BENCH_DEBUG`` set, OSErrors and bugs are re-raised (full traceback).
    ``SystemExit`` (argparse's ``--help`` and usage errors) passes through untouched.
    """
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
    except OSError as e:
        if _debug() or not (isinstance(e, USER_FILE_ERRORS) or e.errno in DISK_ERRNOS):
            return _bug(prog, e)
        print(f"{prog}: error: {describe_os_error(e)}", file=sys.stderr)
        return 3
    except Exception as e:
        return _bug(prog, e)


def _bug(prog: str, e: Exception) -> int:
    """An unexpected exception: re-raised under ``EDGETPU_BENCH_DEBUG``, else one line, 1."""
    if _debug():
        raise e
    print(internal_error_line(prog, e), file=sys.stderr)
    return 1


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
