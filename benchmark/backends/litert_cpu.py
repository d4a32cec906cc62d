"""The TFLite / LiteRT interpreter on the CPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmark.backends.base import Backend, TensorSpec, dequantize, quantize
from benchmark.preprocess import PixelTransform
from benchmark.backends.runtime import find_runtime
from benchmark.errors import BackendUnavailable, DataError, UsageError

#: ``--cpu-kernels`` choices -> the interpreter's ``OpResolverType`` member: ``xnnpack``
#: (the builtin kernels with the default XNNPACK delegate, the interpreter's default),
#: ``builtin`` (the optimized builtin kernels, no default delegate), ``reference``
#: (the reference kernels, no delegate).
CPU_KERNELS = {"xnnpack": "AUTO", "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
               "reference": "BUILTIN_REF"}
#: Environment variable holding the default kernels (``benchmark.run --cpu-kernels`` sets it,
#: so worker processes and batched copies open their interpreters on the same kernels).
KERNELS_ENV = "EDGETPU_BENCH_CPU_KERNELS"


def default_kernels() -> str:
    """The CPU kernels a backend opened without ``kernels`` uses (``$EDGETPU_BENCH_CPU_KERNELS``
    or ``xnnpack``)."""
    return os.environ.get(KERNELS_ENV) or "xnnpack"


def op_resolver(runtime, kernels: str):
    """The ``experimental_op_resolver_type`` value selecting ``kernels`` in ``runtime``.

    Raises
    ------
    UsageError
        For a name not in :data:`CPU_KERNELS`.
    BackendUnavailable
        When the runtime's interpreter module has no ``OpResolverType``.
    """
    import sys

    if kernels not in CPU_KERNELS:
        raise UsageError(f"--cpu-kernels must be one of {', '.join(CPU_KERNELS)}, "
                         f"got {kernels!r}")
    mod = sys.modules.get(runtime.Interpreter.__module__)
    enum = getattr(mod, "OpResolverType", None)
    if enum is None:
        raise BackendUnavailable(f"{runtime.package} {runtime.version} cannot select CPU "
                                 "kernels (no OpResolverType); use --cpu-kernels xnnpack")
    return getattr(enum, CPU_KERNELS[kernels])


def open_interpreter(runtime, model_path=None, *, model_content: bytes | None = None,
                     num_threads: int = 1, kernels: str = "xnnpack",
                     preserve_all_tensors: bool = False):
    """A TFLite interpreter of ``runtime`` on ``kernels`` (not yet allocated).

    ``preserve_all_tensors`` keeps every intermediate tensor readable after
    ``invoke()`` (``experimental_preserve_all_tensors``); with the XNNPACK
    delegate the delegated tensors are not written, so pass ``builtin`` or
    ``reference`` kernels to read them.
    """
    kwargs = {"num_threads": num_threads}
    if kernels != "xnnpack":
        kwargs["experimental_op_resolver_type"] = op_resolver(runtime, kernels)
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    where = model_path if model_path is not None else "model bytes"
    try:
        if model_content is not None:
            return runtime.Interpreter(model_content=model_content, **kwargs)
        return runtime.Interpreter(model_path=str(model_path), **kwargs)
    except ValueError as e:
        raise DataError(f"cannot load {where}: {str(e).splitlines()[0]}") from None


def _first_line(e: Exception) -> str:
    """The interpreter's message in one line (TFLite joins several reports without breaks)."""
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."


class InterpreterBackend(Backend):
    """Shared loop for interpreter-based backends (CPU and Edge TPU).

    A model with a fixed batch of 1 (``batch == 1``): ``predict`` quantizes
    the whole batch at once, invokes once per sample writing into the
    interpreter's input buffer, and dequantizes all outputs at once. With
    ``batch`` N > 1 (a variable-batch copy of the model, see
    :mod:`benchmark.batching`), the input is resized to N and each invoke
    runs N samples; a short last chunk leaves the rest of the buffer as it
    was and its outputs are dropped (samples do not interact).
    """

    name = "litert"
    batch: int = 1

    def _setup(self, interpreter, model_path: Path, batch: int = 1) -> None:
        self.model_path = Path(model_path)
        self.interpreter = interpreter
        if batch != 1:
            d = interpreter.get_input_details()
            if len(d) == 1:
                interpreter.resize_tensor_input(d[0]["index"], [batch, *d[0]["shape"][1:]])
        self.batch = batch
        try:
            interpreter.allocate_tensors()
        except RuntimeError as e:  # a model its kernels reject (damaged or unsupported)
            raise DataError(f"{model_path}: the TFLite interpreter cannot prepare this model: "
                            f"{_first_line(e)}") from None
        ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise DataError(f"{model_path}: expected one input and one output tensor, "
                            f"got {len(ins)} and {len(outs)}")
        self.input_spec = TensorSpec.from_details(ins[0])
        self.output_spec = TensorSpec.from_details(outs[0])
        self._in_index = ins[0]["index"]
        self._table_key = None
        self._out_index = outs[0]["index"]
        if self.input_spec.shape[0] != batch or self.output_spec.shape[0] != batch:
            raise DataError(f"{model_path}: input batch must be fixed at {batch}, "
                            f"got shapes {self.input_spec.shape} -> {self.output_spec.shape}")

    def predict_images(self, images: np.ndarray, transform: PixelTransform) -> np.ndarray:
        """Write each image straight into the input buffer through a lookup table.

        The table maps every uint8 value to the (quantized) model-input value,
        so preprocessing and quantization cost one pass per image and no
        intermediate float batch is built; the result is identical to
        ``predict(transform(images))``.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.shape[1:] != self.input_spec.shape[1:]:
            return super().predict_images(images, transform)
        channels = images.shape[-1]
        key = (transform, channels)
        if self._table_key != key:
            self._table = self._input_path(transform, channels)
            self._table_key = key
        if self.batch != 1:
            return self._predict_images_batched(images)
        mode, table, scale = self._table
        n = images.shape[0]
        raw = np.empty((n,) + self.output_spec.shape[1:], dtype=self.output_spec.dtype)
        it = self.interpreter
        tensor, invoke, get_tensor = it.tensor, it.invoke, it.get_tensor
        in_idx, out_idx = self._in_index, self._out_index
        chan = np.arange(channels)
        for i in range(n):
            buf = tensor(in_idx)()[0]
            if mode == "copy":
                buf[...] = images[i]
            elif mode == "scale":
                np.multiply(images[i], scale, out=buf, casting="unsafe")
            elif mode == "lookup":
                np.take(table, images[i], out=buf)
            else:
                buf[...] = table[images[i], chan]
            del buf  # no reference into the interpreter may live across invoke()
            invoke()
            raw[i] = get_tensor(out_idx)[0]
        return dequantize(raw, self.output_spec)

    def _predict_images_batched(self, images: np.ndarray) -> np.ndarray:
        """:meth:`predict_images` on a batch-N interpreter: N images per invoke."""
        mode, table, scale = self._table
        n, b = images.shape[0], self.batch
        raw = np.empty((n,) + self.output_spec.shape[1:], dtype=self.output_spec.dtype)
        it = self.interpreter
        in_idx, out_idx = self._in_index, self._out_index
        chan = np.arange(images.shape[-1])
        for s in range(0, n, b):
            x = images[s:s + b]
            m = x.shape[0]
            buf = it.tensor(in_idx)()[:m]
            if mode == "copy":
                buf[...] = x
            elif mode == "scale":
                np.multiply(x, scale, out=buf, casting="unsafe")
            elif mode == "lookup":
                np.take(table, x, out=buf)
            else:
                buf[...] = table[x, chan]
            del buf  # no reference into the interpreter may live across invoke()
            it.invoke()
            raw[s:s + m] = it.get_tensor(out_idx)[:m]
        return dequantize(raw, self.output_spec)

    def _input_path(self, transform: PixelTransform, channels: int):
        """How to write a uint8 image into the input: ``(mode, table, scale)``.

        ``copy`` when the quantized input is the raw pixel value, ``scale`` when
        it is a float32 multiple of it (one multiply per image is ~4x faster than
        a table lookup and gives identical floats), ``lookup`` when all channels
        share one table, ``per_channel`` otherwise.
        """
        table = transform.table(lambda x: quantize(x, self.input_spec), channels)
        scale = np.float32(transform.scale)
        if not np.all(table == table[:, :1]):
            return "per_channel", table, scale
        table = table[:, 0].copy()
        if table.dtype == np.uint8 and np.array_equal(table, np.arange(256, dtype=np.uint8)):
            return "copy", table, scale
        if table.dtype == np.float32 and np.array_equal(
                table, np.arange(256, dtype=np.float32) * scale):
            return "scale", table, scale
        return "lookup", table, scale

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        expect = self.input_spec.shape[1:]
        if x.shape[1:] != expect:
            raise DataError(f"{self.model_path}: the model takes inputs of shape "
                            f"{list(expect)} but the data has {list(x.shape[1:])} (check the "
                            "model's input size against the dataset's images)")
        q = quantize(x, self.input_spec)
        n, b = q.shape[0], self.batch
        raw = np.empty((n,) + self.output_spec.shape[1:], dtype=self.output_spec.dtype)
        it = self.interpreter
        set_tensor, invoke, get_tensor = it.set_tensor, it.invoke, it.get_tensor
        in_idx, out_idx = self._in_index, self._out_index
        for i in range(0, n, b):
            chunk = q[i:i + b]
            m = chunk.shape[0]
            if m < b:
                chunk = np.concatenate([chunk, np.zeros((b - m,) + chunk.shape[1:], q.dtype)])
            set_tensor(in_idx, chunk)
            invoke()
            raw[i:i + m] = get_tensor(out_idx)[:m]
        return dequantize(raw, self.output_spec)


class LiteRTCPUBackend(InterpreterBackend):
    """A ``.tflite`` model on the CPU interpreter (XNNPACK, the default delegate, float and int8).

    ``num_threads`` defaults to the number of cores; on a busy machine (load
    average at or above the core count) ``num_threads=1`` is as fast or faster,
    since extra threads wait for cores other processes hold. ``batch`` > 1
    needs a variable-batch model (:func:`benchmark.batching.batched_model`).
    """

    name = "litert-cpu"

    def __init__(self, model_path, *, num_threads: int | None = None, prefer: str | None = None,
                 batch: int = 1, kernels: str | None = None):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise DataError(f"model file not found: {model_path}")
        if model_path.name.endswith("_edgetpu.tflite"):
            raise BackendUnavailable(
                f"{model_path.name} is compiled for the Edge TPU (edgetpu-custom-op) and cannot "
                "run on the CPU interpreter; use the uncompiled int8 model or --device edgetpu")
        self.runtime = find_runtime(prefer)
        self.num_threads = num_threads or os.cpu_count() or 1
        self.kernels = kernels = kernels or default_kernels()
        interp = open_interpreter(self.runtime, model_path, num_threads=self.num_threads,
                                  kernels=kernels)
        self._setup(interp, model_path, batch)

    def delegated(self) -> bool:
        """True when the interpreter runs a delegate node (XNNPACK, the CPU default)."""
        ops = self.interpreter._get_ops_details()
        return any(d.get("op_name") == "DELEGATE" for d in ops)

    def kernels_ran(self) -> str:
        """Which CPU kernels run the model: ``xnnpack`` when a delegate node runs, else
        ``builtin`` or ``reference`` (as selected)."""
        if self.kernels == "reference":
            return "reference"
        return "xnnpack" if self.delegated() else "builtin"

    def info(self) -> dict:
        return {"backend": self.name, "runtime": self.runtime.package,
                "runtime_version": self.runtime.version, "num_threads": self.num_threads,
                "cpu_kernels": self.kernels_ran()}
