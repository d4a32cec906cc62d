"""A deterministic stand-in backend for tests (no interpreter needed)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from benchmark.backends.base import Backend, TensorSpec
from benchmark.backends.edgetpu import EdgeTPUBackend


class FakeBackend(Backend):
    """Outputs ``fn(x)``; by default a seeded random linear map followed by softmax.

    Parameters
    ----------
    model_path : ignored (kept for the common constructor signature)
    input_shape : tuple
        Including the batch dimension 1.
    num_classes : int
    fn : callable, optional
        ``fn(x) -> (B, K)`` probabilities.
    seed : int
    """

    name = "fake"

    def __init__(self, model_path=None, *, input_shape=(1, 80, 80, 3), num_classes: int = 30,
                 fn: Callable[[np.ndarray], np.ndarray] | None = None, seed: int = 0):
        self.input_spec = TensorSpec("input", tuple(input_shape), np.dtype(np.float32))
        self.output_spec = TensorSpec("output", (1, num_classes), np.dtype(np.float32))
        if fn is None:
            w = np.random.default_rng(seed).normal(size=(int(np.prod(input_shape[1:])),
                                                         num_classes)).astype(np.float32)

            def fn(x):
                z = x.reshape(x.shape[0], -1).astype(np.float32) @ w
                z -= z.max(axis=1, keepdims=True)
                e = np.exp(z)
                return e / e.sum(axis=1, keepdims=True)
        self.fn = fn
        self.calls = 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.asarray(self.fn(np.asarray(x)), dtype=np.float32)


# ------------------------------------------------------------------ a fake Edge TPU

#: Failure modes of the fake delegate (what real libedgetpu/TFLite pairings do).
FAKE_FAILURES = ("segv", "abort", "hang", "unsupported", "no-device")
#: The error text real mismatched pairings raise from ``allocate_tensors()``.
UNSUPPORTED_TEXT = ("Internal: Unsupported data type in custom op handler: 0Node number 1 "
                    "(EdgeTpuDelegateForCustomOp) failed to prepare.")


#: Flexbuffer key of the fake's CPU model in the custom op's options (next to the real keys).
FAKE_PAYLOAD_KEY = "fake-cpu-model"


def _table(builder, fields) -> int:
    """One flatbuffer table from ``[(slot, kind, value)]`` (kind: offset, int16, int32, uint64)."""
    builder.StartObject(max(slot for slot, _, _ in fields) + 1)
    for slot, kind, value in fields:
        getattr(builder, {"offset": "PrependUOffsetTRelativeSlot", "int16": "PrependInt16Slot",
                          "int32": "PrependInt32Slot", "uint64": "PrependUint64Slot"}[kind])(
            slot, value, 0)
    return builder.EndObject()


def _fake_dwn1_package(name: str) -> bytes:
    """A minimal ``DWN1`` package (libedgetpu ``executable.fbs``): one STAND_ALONE executable
    with no parameters, so the compiled-model inspector reads the fake as a compiled file."""
    import flatbuffers
    b = flatbuffers.Builder(256)
    b.ForceDefaults(True)
    nm, chip, params = b.CreateString(name), b.CreateString("fake"), b.CreateByteVector(b"")
    b.Finish(_table(b, [(1, "offset", nm), (6, "offset", params), (10, "offset", chip),
                        (13, "int16", 0), (14, "uint64", 0xFA4E)]))
    exe = bytes(b.Output())
    b = flatbuffers.Builder(256)
    s = b.CreateString(exe)
    b.StartVector(4, 1, 4)
    b.PrependUOffsetTRelative(s)
    vec = b.EndVector()
    b.Finish(_table(b, [(0, "offset", vec)]))
    multi = bytes(b.Output())
    b = flatbuffers.Builder(256)
    b.ForceDefaults(True)
    blob, version = b.CreateByteVector(multi), b.CreateString("fake edgetpu_compiler")
    b.Finish(_table(b, [(0, "int32", 14), (1, "offset", blob), (4, "offset", version)]),
             file_identifier=b"DWN1")
    return bytes(b.Output())


def make_fake_compiled(int8_model, out_path=None) -> bytes:
    """A ``*_edgetpu.tflite`` stand-in that really holds an ``edgetpu-custom-op`` node.

    The int8 model's operators are replaced by one ``CUSTOM`` op named
    ``edgetpu-custom-op`` from the model's input to its output. Its custom
    options are a flexbuffer map like the compiler's (``"1"`` version, ``"4"``
    a ``DWN1`` package, :func:`_fake_dwn1_package`) plus the int8 model's
    bytes under :data:`FAKE_PAYLOAD_KEY`, which the fake delegate
    (:class:`FakeEdgeTPUBackend`) runs on the CPU kernels. The input/output
    tensors keep their quantization. Without a delegate the CPU interpreter
    cannot run it (an unresolved custom op), as with a real compiled model.
    Written atomically to ``out_path`` when given.
    """
    from flatbuffers import flexbuffers
    from benchmark.backends.edgetpu import EDGETPU_CUSTOM_OP
    from benchmark.tflite_graph import _model_bytes, pack_model, unpack_model
    buf, _ = _model_bytes(int8_model)
    m, schema = unpack_model(buf)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = EDGETPU_CUSTOM_OP
    code.version = 1
    m.operatorCodes.append(code)
    g = m.subgraphs[0]
    op = schema.OperatorT()
    op.opcodeIndex = len(m.operatorCodes) - 1
    op.inputs, op.outputs = list(g.inputs), list(g.outputs)
    options = flexbuffers.Dumps({"1": 1, "4": _fake_dwn1_package("fake-segment-0"),
                                 FAKE_PAYLOAD_KEY: bytes(buf)})
    op.customOptions = np.frombuffer(bytes(options), np.uint8)
    g.operators = [op]
    data = pack_model(m)
    if out_path is not None:
        from benchmark.results import atomic_write_bytes
        atomic_write_bytes(out_path, data)
    return data


def _payload(model_path) -> bytes:
    """The fake's CPU model in the first ``edgetpu-custom-op`` node's options."""
    from flatbuffers import flexbuffers
    from benchmark.backends.edgetpu import EDGETPU_CUSTOM_OP
    from benchmark.tflite_graph import unpack_model
    m, _ = unpack_model(model_path)
    for op in m.subgraphs[0].operators:
        code = m.operatorCodes[op.opcodeIndex].customCode
        code = code.decode() if isinstance(code, bytes) else code
        if code == EDGETPU_CUSTOM_OP:
            opts = flexbuffers.Loads(bytes(np.asarray(op.customOptions, np.uint8)))
            data = opts.get(FAKE_PAYLOAD_KEY) if isinstance(opts, dict) else None
            if data is not None:
                return bytes(data)
    raise RuntimeError(f"{model_path}: the fake delegate only runs models made by "
                       "make_fake_compiled (this is a real Edge TPU program)")


def _fail(mode: str | None) -> None:
    """Fail the way a real delegate does: crash, abort, hang or raise."""
    import os
    import signal
    import time
    if mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif mode == "abort":
        os.kill(os.getpid(), signal.SIGABRT)
    elif mode == "hang":
        while True:
            time.sleep(3600)
    elif mode == "unsupported":
        raise RuntimeError(UNSUPPORTED_TEXT)
    elif mode == "no-device":
        raise ValueError("Failed to load delegate from libedgetpu.so.1")


class _FakeDelegateInterpreter:
    """The CPU interpreter on the custom op's payload, failing or perturbing as configured."""

    def __init__(self, inner_cls, cfg: dict, *, model_path, experimental_delegates=None, **kw):
        if not experimental_delegates:
            raise RuntimeError("Encountered unresolved custom op: edgetpu-custom-op.")
        self._cfg = cfg
        self._inner = inner_cls(model_content=_payload(model_path), num_threads=1)
        self._out = self._inner.get_output_details()[0]
        self._invokes = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def allocate_tensors(self):
        if self._cfg["fail_at"] == "allocate":
            _fail(self._cfg["fail"])
        return self._inner.allocate_tensors()

    def invoke(self):
        self._invokes += 1
        if self._cfg["fail_at"] == "invoke" and self._invokes > self._cfg["fail_after"]:
            _fail(self._cfg["fail"])
        return self._inner.invoke()

    def get_tensor(self, index):
        out = self._inner.get_tensor(index)
        p = self._cfg["perturb"]
        if index != self._out["index"] or not p:
            return out
        return perturb_lsb(out, lsb=p["lsb"], fraction=p["fraction"],
                           seed=(p.get("seed", 0), self._invokes))


def perturb_lsb(q: np.ndarray, *, lsb: int, fraction: float, seed) -> np.ndarray:
    """``q`` with ``+-lsb`` added to a seeded ``fraction`` of its entries, saturated to the dtype.

    Examples
    --------
    >>> q = np.array([[0, 10, 250, 255]], np.uint8)
    >>> perturb_lsb(q, lsb=3, fraction=1.0, seed=2).astype(int) - q
    array([[ 3,  3, -3, -3]])
    >>> perturb_lsb(q, lsb=3, fraction=1.0, seed=1).astype(int) - q   # 0 - 3 saturates at 0
    array([[ 0, -3,  3, -3]])
    """
    rng = np.random.default_rng(seed)
    hit = rng.random(q.shape) < fraction
    sign = np.where(rng.random(q.shape) < 0.5, -1, 1)
    info = np.iinfo(q.dtype)
    out = q.astype(np.int64) + hit * sign * int(lsb)
    return np.clip(out, info.min, info.max).astype(q.dtype)


class FakeEdgeTPUBackend(EdgeTPUBackend):
    """The real :class:`EdgeTPUBackend` code with a fake libedgetpu and delegate.

    Runs models made by :func:`make_fake_compiled` (the proof check reads the
    real file); ``fail`` (one of :data:`FAKE_FAILURES`) at ``fail_at``
    (``delegate``, ``allocate``, or ``invoke`` after ``fail_after`` invokes)
    makes it crash, abort, hang or raise as real pairings do; ``perturb``
    (``{"lsb": k, "fraction": f, "seed": s}``) moves a seeded share of the
    output integers by ``+-k`` (:func:`perturb_lsb`, reseeded per invoke).
    """

    def __init__(self, model_path, *, device=None, fail: str | None = None,
                 fail_at: str = "allocate", fail_after: int = 0, perturb: dict | None = None,
                 library: str = "libedgetpu.so.1"):
        from functools import partial
        from benchmark.backends.runtime import Runtime, find_runtime
        if fail is not None and fail not in FAKE_FAILURES:
            raise ValueError(f"fail must be one of {FAKE_FAILURES}")
        cfg = {"fail": fail, "fail_at": fail_at, "fail_after": fail_after, "perturb": perturb}
        real = find_runtime()

        def load_delegate(lib, options):
            if cfg["fail_at"] == "delegate":
                _fail(cfg["fail"])
            self.delegate_options = dict(options)
            return "fake-delegate"

        rt = Runtime("fake-" + real.package, real.version,
                     partial(_FakeDelegateInterpreter, real.Interpreter, cfg), load_delegate)
        super().__init__(model_path, device=device, library=library, runtime=rt)

    def info(self) -> dict:
        return dict(super().info(), delegate_options=getattr(self, "delegate_options", None))
