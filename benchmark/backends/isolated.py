"""The Edge TPU in a child process: a delegate crash, abort or hang cannot take the run down.

libedgetpu is native code built against one TFLite revision; a mismatched
pairing segfaults or aborts inside ``allocate_tensors()`` or ``invoke()``, and
an unplugged USB Accelerator can hang an invoke. :class:`IsolatedBackend`
opens the real backend (:class:`~benchmark.backends.edgetpu.EdgeTPUBackend`)
in a ``spawn`` child process and talks to it over one
:func:`multiprocessing.Pipe`: every call is a ``(command, arguments)`` message
answered by ``("ok", value)`` or ``("error", details)``. A child that dies
(a signal), answers nothing within the timeout, or raises becomes one
:class:`EdgeTPUFailure` line naming the stage and the likely cause.

The timeout of each call is ``$EDGETPU_BENCH_TPU_TIMEOUT`` seconds (default
:data:`DEFAULT_TIMEOUT_S`); starting the child (imports) gets
:data:`STARTUP_TIMEOUT_S`.
"""

from __future__ import annotations

import importlib
import os
import signal
import time
from pathlib import Path

from benchmark.backends.base import Backend
from benchmark.errors import BackendUnavailable, BenchError

ENV_TIMEOUT = "EDGETPU_BENCH_TPU_TIMEOUT"
#: Seconds one call (open, a batch of invokes, latency runs) may take in the child.
DEFAULT_TIMEOUT_S = 120.0
#: Seconds the child may take to start (interpreter imports) before it is declared hung.
STARTUP_TIMEOUT_S = 300.0
#: The backend the child opens, ``"module:Class"``, and extra keywords for it. Tests point
#: these at :class:`benchmark.backends.fake.FakeEdgeTPUBackend`; the child imports them.
CHILD_BACKEND = "benchmark.backends.edgetpu:EdgeTPUBackend"
CHILD_KWARGS: dict = {}


class EdgeTPUFailure(BackendUnavailable):
    """The Edge TPU child process crashed, hung or failed (exit code 4)."""

    def __init__(self, message: str, *, stage: str = "", cause: str = "", signal_name=None):
        super().__init__(message)
        self.stage, self.cause, self.signal_name = stage, cause, signal_name


def timeout_seconds() -> float:
    """``$EDGETPU_BENCH_TPU_TIMEOUT`` (a positive number) or :data:`DEFAULT_TIMEOUT_S`."""
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        from benchmark.errors import UsageError
        raise UsageError(f"${ENV_TIMEOUT}={raw!r}: expected a positive number of seconds")
    return value


def _resolve(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _error_details(e: BaseException) -> dict:
    cls = type(e)
    return {"cls": f"{cls.__module__}:{cls.__qualname__}", "type": cls.__name__,
            "bench": isinstance(e, BenchError), "message": " ".join(str(e).split())}


def _serve(conn, backend) -> None:
    """Answer the parent's commands until ``close`` (or the pipe closes)."""
    from benchmark import latency
    handlers = {
        "predict": backend.predict,
        "predict_images": backend.predict_images,
        "first_invoke": lambda seed: latency.time_first_invoke(backend, seed=seed),
        "latency": lambda kw: latency.measure_latency(backend, **kw),
    }
    while True:
        try:
            cmd, args = conn.recv()
        except EOFError:
            return
        if cmd == "close":
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", handlers[cmd](*args)))
        except Exception as e:
            conn.send(("error", _error_details(e)))


def _device_used(backend) -> dict | None:
    """The device libedgetpu lists for the backend's ``device`` (:func:`devices.device_used`)."""
    library = getattr(backend, "library", None)
    if library is None:
        return None
    from benchmark import devices
    return devices.device_used(library, getattr(backend, "device", None))


def child_main(conn) -> None:
    """The child process: open the backend the parent names, report its specs, serve calls."""
    try:
        target, model_path, kwargs = conn.recv()
        cls = _resolve(target)
        conn.send(("started", os.getpid()))
        backend = cls(model_path, **kwargs)
        t = time.perf_counter()
        info = dict(backend.info(), device_used=_device_used(backend))
        conn.send(("ok", (backend.input_spec, backend.output_spec, info,
                          time.perf_counter() - t)))
    except Exception as e:
        conn.send(("error", _error_details(e)))
        return
    with backend:
        _serve(conn, backend)


def _signal_name(exitcode: int | None) -> str | None:
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


class IsolatedBackend(Backend):
    """A backend that lives in a child process; the calls go over a pipe.

    Parameters
    ----------
    model_path : path
    target : str, optional
        ``"module:Class"`` of the backend to open in the child (default
        :data:`CHILD_BACKEND`); ``kwargs`` go to it (after :data:`CHILD_KWARGS`).
    timeout : float, optional
        Seconds per call (default :func:`timeout_seconds`).

    Raises
    ------
    EdgeTPUFailure
        When the child dies, hangs or fails with an error that is not a
        :class:`~benchmark.errors.BenchError`; a ``BenchError`` raised in the
        child is raised again here as the same class and message.
    """

    name = "edgetpu"

    def __init__(self, model_path, *, target: str | None = None, timeout: float | None = None,
                 **kwargs):
        self.model_path = Path(model_path)
        self.target = target or CHILD_BACKEND
        self.timeout = timeout if timeout is not None else timeout_seconds()
        self._closed = False
        self._start(dict(CHILD_KWARGS, **kwargs))
        try:
            self._receive("starting the Edge TPU process", STARTUP_TIMEOUT_S, expect="started")
            self.input_spec, self.output_spec, self._info, _ = self._receive(
                "loading the delegate and allocating the model", self.timeout)
        except BaseException:
            self._kill()
            raise

    def _start(self, kwargs: dict) -> None:
        """Start ``python -m benchmark.backends.isolated FD`` on one end of a socket pair.

        A subprocess rather than ``multiprocessing``: nothing of the parent's
        ``__main__`` is re-run in the child.
        """
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection
        mine, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        with theirs:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "benchmark.backends.isolated", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        self._conn = Connection(mine.detach())
        self._conn.send((self.target, str(self.model_path), kwargs))

    # -------------------------------------------------------------- transport

    def _receive(self, stage: str, timeout: float, expect: str = "ok"):
        if not self._conn.poll(timeout):
            self._kill()
            raise self._failure(stage, f"no answer within {timeout:g} s (hung)", hung=True)
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            code = self._wait(5)
            sig = _signal_name(code)
            how = f"was killed by {sig}" if sig else f"exited with code {code}"
            self._closed = True
            raise self._failure(stage, f"the child process {how}", signal_name=sig)
        if kind == "error":
            raise self._error(stage, payload)
        if kind != expect:
            raise RuntimeError(f"edgetpu child: expected {expect!r}, got {kind!r}")
        return payload

    def _call(self, stage: str, cmd: str, *args):
        if self._closed:
            raise EdgeTPUFailure(f"Edge TPU: the child process is gone (while {stage})",
                                 stage=stage)
        try:
            self._conn.send((cmd, args))
        except (BrokenPipeError, OSError):
            pass   # the child died: _receive reports how
        return self._receive(stage, self.timeout)

    def _failure(self, stage: str, what: str, *, hung: bool = False,
                 signal_name=None) -> EdgeTPUFailure:
        from benchmark.backends.edgetpu import failure_cause
        if hung:
            cause = ("the device was unplugged or hung (replug it; check dmesg for USB "
                     "resets)" if stage == "invoking" else
                     "the delegate hung opening the device: device unplugged, or a runtime "
                     "pairing fault")
        else:
            cause = failure_cause(what, "invoking" if stage == "invoking" else stage)
        return EdgeTPUFailure(f"Edge TPU failed while {stage} ({self.model_path.name}): {what}; "
                              f"likely cause: {cause}", stage=stage, cause=cause,
                              signal_name=signal_name)

    def _error(self, stage: str, d: dict) -> BenchError:
        if d["bench"]:
            try:
                cls = _resolve(d["cls"])
            except (ImportError, AttributeError):
                cls = BackendUnavailable
            e = cls(d["message"])
            if isinstance(e, BenchError):
                return e
        return self._failure(stage, f"{d['type']}: {d['message'][:300]}")

    def _wait(self, seconds: float) -> int | None:
        import subprocess
        try:
            return self._proc.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._wait(5)
        self._closed = True
        self._conn.close()

    # -------------------------------------------------------------- backend interface

    def predict(self, x):
        return self._call("invoking", "predict", x)

    def predict_images(self, images, transform):
        return self._call("invoking", "predict_images", images, transform)

    def time_first_invoke(self, *, seed: int = 0) -> float:
        """:func:`benchmark.latency.time_first_invoke` in the child."""
        return self._call("invoking", "first_invoke", seed)

    def measure_latency(self, **kw) -> dict:
        """:func:`benchmark.latency.measure_latency` in the child."""
        return self._call("invoking", "latency", kw)

    def info(self) -> dict:
        return dict(self._info, isolation="child process")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.send(("close", ()))
            if self._conn.poll(10):
                self._conn.recv()
        except (EOFError, OSError):
            pass
        if self._wait(10) is None:
            self._proc.kill()
            self._wait(5)
        self._conn.close()


class IsolatedEdgeTPUBackend(IsolatedBackend):
    """:class:`~benchmark.backends.edgetpu.EdgeTPUBackend` in a child process (``edgetpu``).

    ``device`` is validated here (a UsageError before any process starts).
    """

    def __init__(self, model_path, *, device: str | None = None, **kwargs):
        from benchmark.backends.edgetpu import parse_device_spec
        super().__init__(model_path, device=parse_device_spec(device), **kwargs)


if __name__ == "__main__":
    import sys
    from multiprocessing.connection import Connection
    child_main(Connection(int(sys.argv[1])))
