"""Fakes for the Edge TPU path that fail the way the real thing does (no Coral needed).

:func:`use_fake_edgetpu` makes the plan find a "libedgetpu" and the Edge TPU
child process (:mod:`benchmark.backends.isolated`) open
:class:`benchmark.backends.fake.FakeEdgeTPUBackend` instead of the real
backend: the real EdgeTPUBackend code (proof check, delegate options, error
handling) with a fake delegate that runs the custom op's payload on the CPU
kernels, or crashes, aborts, hangs or raises as configured. The
:func:`compiled_models` copies the shipped SignNet verification
artifacts and adds a compiled model that really contains an
``edgetpu-custom-op`` node (:func:`benchmark.backends.fake.make_fake_compiled`).
"""

from __future__ import annotations

import shutil

from benchmark.backends import edgetpu, isolated
from benchmark.backends.fake import make_fake_compiled
from conftest import ROOT

SIGNNET = ROOT / "models" / "signnet" / "verification"
FAKE_BACKEND = "benchmark.backends.fake:FakeEdgeTPUBackend"


def use_fake_edgetpu(monkeypatch, **fake_kwargs) -> None:
    """Route ``--device edgetpu`` to the fake delegate with ``fake_kwargs`` (fail=, perturb=...)."""
    monkeypatch.setattr(edgetpu, "find_delegate_library", lambda system=None: "libedgetpu.so.1")
    monkeypatch.setattr(isolated, "CHILD_BACKEND", FAKE_BACKEND)
    monkeypatch.setattr(isolated, "CHILD_KWARGS", dict(fake_kwargs))


def compiled_models(tmp_path):
    """A models root with SignNet's verification artifacts and a fake compiled model."""
    root = tmp_path / "models"
    dst = root / "signnet" / "verification"
    dst.mkdir(parents=True)
    for f in SIGNNET.iterdir():
        if f.suffix != ".keras":
            shutil.copy(f, dst / f.name)
    make_fake_compiled(dst / "signnet_int8.tflite", dst / "signnet_int8_edgetpu.tflite")
    return root
