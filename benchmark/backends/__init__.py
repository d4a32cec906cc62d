"""Runtimes behind one small interface (:class:`benchmark.backends.base.Backend`).

:data:`BACKENDS` maps a device name to its backend class, given lazily, so
importing this package (or listing the names for ``--device`` choices) loads
no interpreter, delegate or TensorFlow; :func:`make_backend` opens a model on
one of them.
"""

from __future__ import annotations

from benchmark.registry import Registry

#: Device name -> backend class (lazy references, resolved on first use).
BACKENDS: Registry = Registry("device", option="--device", builtins={
    "cpu": "benchmark.backends.litert_cpu:LiteRTCPUBackend",
    # The Edge TPU runs in a child process (a delegate crash must not end the run).
    "edgetpu": "benchmark.backends.isolated:IsolatedEdgeTPUBackend",
    "keras": "benchmark.backends.keras_float:KerasFloatBackend",
    "fake": "benchmark.backends.fake:FakeBackend",
})


def _constructor_kwargs(device: str, num_threads, edgetpu_device, kwargs: dict) -> dict:
    """Keyword arguments of ``device``'s backend class for :func:`make_backend`'s options."""
    if device == "cpu":
        return {"num_threads": num_threads}
    if device == "edgetpu":
        return dict(kwargs, device=edgetpu_device)
    if device == "keras":
        return {}
    if device == "fake":
        return dict(kwargs)
    # A registered backend: its own keywords, plus the common options that were given.
    extra = {"num_threads": num_threads, "device": edgetpu_device}
    return dict(kwargs, **{k: v for k, v in extra.items() if v is not None})


def make_backend(device: str, model_path, *, num_threads: int | None = None,
                 edgetpu_device: str | None = None, **kwargs):
    """Open ``model_path`` on ``device`` (a :data:`BACKENDS` name).

    Parameters
    ----------
    device : str
        ``cpu`` (gets ``num_threads``), ``edgetpu`` (gets ``device=edgetpu_device``
        and ``kwargs``; the backend runs in a child process, see
        :mod:`benchmark.backends.isolated`), ``keras`` (the path only), ``fake`` (``kwargs``), or a
        name registered in :data:`BACKENDS` (gets ``kwargs`` plus ``num_threads``
        and ``device=edgetpu_device`` when those are not None).
    model_path : str or Path
        The model file.

    Raises
    ------
    UsageError
        For an unknown device (the message lists the known ones).
    """
    cls = BACKENDS.get(device)
    return cls(model_path, **_constructor_kwargs(device, num_threads, edgetpu_device, kwargs))
