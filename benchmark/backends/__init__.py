"""Runtimes behind one small interface (:class:`benchmark.backends.base.Backend`)."""

from __future__ import annotations


def make_backend(device: str, model_path, *, num_threads: int | None = None,
                 edgetpu_device: str | None = None, **kwargs):
    """Open ``model_path`` on ``device`` (``cpu``, ``edgetpu``, ``keras`` or ``fake``)."""
    if device == "cpu":
        from benchmark.backends.litert_cpu import LiteRTCPUBackend
        return LiteRTCPUBackend(model_path, num_threads=num_threads)
    if device == "edgetpu":
        from benchmark.backends.edgetpu import EdgeTPUBackend
        return EdgeTPUBackend(model_path, device=edgetpu_device, **kwargs)
    if device == "keras":
        from benchmark.backends.keras_float import KerasFloatBackend
        return KerasFloatBackend(model_path)
    if device == "fake":
        from benchmark.backends.fake import FakeBackend
        return FakeBackend(model_path, **kwargs)
    raise ValueError(f"unknown device {device!r}")
