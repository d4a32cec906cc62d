"""The Edge TPU: the libedgetpu delegate loaded into the TFLite interpreter.

Nothing here is imported or loaded until a backend is created. The delegate
library is looked up *before* ``load_delegate`` is called, because calling it
without the library raises and then prints an "Exception ignored in
Delegate.__del__" traceback from the interpreter package.
"""

from __future__ import annotations

import ctypes.util
import glob
import platform
import re
import time
from pathlib import Path

from benchmark.backends.litert_cpu import InterpreterBackend
from benchmark.backends.runtime import Runtime, find_runtime
from benchmark.errors import BackendUnavailable, DataError, UsageError

#: Delegate library file per platform (as in pycoral.utils.edgetpu).
EDGETPU_SHARED_LIB = {
    "Linux": "libedgetpu.so.1",
    "Darwin": "libedgetpu.1.dylib",
    "Windows": "edgetpu.dll",
}

_SEARCH_GLOBS = {
    "Linux": ("/usr/lib/*/libedgetpu.so.1*", "/usr/lib/libedgetpu.so.1*",
              "/usr/local/lib/libedgetpu.so.1*"),
    "Darwin": ("/usr/local/lib/libedgetpu.1*.dylib", "/opt/homebrew/lib/libedgetpu.1*.dylib"),
    "Windows": (),
}


def _pycoral_make_interpreter():
    """``pycoral.utils.edgetpu.make_interpreter`` when Google's pycoral is installed, else None.

    The PyPI package named ``pycoral`` is an unrelated project; only the one
    that has ``pycoral.utils.edgetpu`` counts.
    """
    try:
        from pycoral.utils.edgetpu import make_interpreter
    except ImportError:
        return None
    return make_interpreter


def _pycoral_runtime(make_interpreter) -> Runtime:
    """Describe pycoral as the runtime (it builds its own interpreter and delegate)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("pycoral")
    except PackageNotFoundError:  # a source checkout on the path has no metadata
        v = "unknown"
    return Runtime(package="pycoral", version=v, Interpreter=make_interpreter,
                   load_delegate=None)


_DEVICE_SPEC = re.compile(r"^(usb|pci)?(:[0-9]+)?$")


def parse_device_spec(spec: str | None, option: str = "--edgetpu-device") -> str | None:
    """Validate an Edge TPU device string (libedgetpu's ``device`` option).

    Valid: ``usb``, ``usb:N``, ``pci``, ``pci:N``, ``:N`` (the N-th device of
    any type), or None (the first found).

    Examples
    --------
    >>> parse_device_spec("usb:0"), parse_device_spec(":1"), parse_device_spec(None)
    ('usb:0', ':1', None)

    Raises
    ------
    UsageError
        For anything else, naming ``option``.
    """
    if spec is None:
        return None
    s = str(spec).strip()
    if not s or not _DEVICE_SPEC.match(s):
        raise UsageError(f"{option} {spec!r}: expected usb, usb:N, pci, pci:N or :N "
                         "(N = device index, from 0)")
    return s


def _ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


def delegate_library_name(system: str | None = None) -> str:
    """The delegate library's file name on ``system`` (default: this platform)."""
    system = system or platform.system()
    try:
        return EDGETPU_SHARED_LIB[system]
    except KeyError:
        raise BackendUnavailable(f"the Edge TPU runtime is not available for {system}") from None


def find_delegate_library(system: str | None = None) -> str | None:
    """Path or loadable name of libedgetpu when installed, else None."""
    system = system or platform.system()
    name = delegate_library_name(system)
    for pattern in _SEARCH_GLOBS.get(system, ()):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    if ctypes.util.find_library("edgetpu"):
        return name
    return None


def check_edgetpu_available() -> str:
    """Return the delegate library, or raise a one-line BackendUnavailable."""
    lib = find_delegate_library()
    if lib is None:
        raise BackendUnavailable(
            f"Edge TPU runtime not found: {delegate_library_name()} is not installed; "
            f"{install_hint()}, or use --device cpu")
    return lib


def install_hint() -> str:
    """What to install for the Edge TPU: a matched libedgetpu/interpreter pair.

    Not "any libedgetpu": Coral's own ``libedgetpu1-std`` 16.0 is known-bad with
    the default interpreter (``ai_edge_litert``, :mod:`benchmark.backends.pairing`).
    """
    return ("install a matched libedgetpu/interpreter pair with tools/pi/setup.sh "
            "(docs/edge-tpu.md, 'Runtime pairing')")


#: The custom op edgetpu_compiler folds every mapped op into (its payload is the TPU program).
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"


class NotCompiledError(DataError):
    """An ``*_edgetpu.tflite`` without any ``edgetpu-custom-op`` node (it would run on the CPU)."""


def source_model(compiled: Path) -> Path | None:
    """The uncompiled twin of ``X_edgetpu.tflite`` (``X.tflite`` beside it), when present."""
    name = Path(compiled).name
    if not name.endswith("_edgetpu.tflite"):
        return None
    src = Path(compiled).with_name(name[:-len("_edgetpu.tflite")] + ".tflite")
    return src if src.is_file() else None


def _compiled_ops(model_path: Path) -> tuple[int, list[str], dict]:
    """``(edgetpu-custom-op nodes, the other ops, what the packages say)`` of a compiled model.

    Read by :func:`benchmark.compile.inspect.inspect_compiled` (the custom ops'
    ``DWN1`` packages: on-chip / off-chip parameter bytes, caching tokens,
    pipeline segment, minimum runtime version).
    """
    from benchmark.compile.inspect import inspect_compiled
    info = inspect_compiled(model_path)
    d = info.to_dict()
    extra = {k: d[k] for k in ("on_chip_parameter_bytes", "off_chip_parameter_bytes",
                               "caching_tokens", "pipeline_segment", "cocompiled_with")}
    extra["min_runtime_version"] = max((p.min_runtime_version for p in info.packages),
                                       default=None)
    return info.custom_ops, list(info.cpu_op_list), extra


def tpu_proof(model_path, source=None) -> dict:
    """What the compiled file says will run on the Edge TPU; refuse a model that has no TPU op.

    Parameters
    ----------
    model_path : path
        The model handed to the delegate.
    source : path, optional
        Its uncompiled twin (default: :func:`source_model`); gives ``ops_delegated``
        = ops of the source - ops left in the compiled file.

    Returns
    -------
    dict
        ``edgetpu_custom_ops`` (nodes), ``tpu_segments`` (the same count: each
        node is one TPU program), ``cpu_ops`` (ops left on the CPU, in file
        order), ``cpu_op_count``, ``ops_delegated`` (None without the source)
        and ``source_model``; from the custom ops' packages
        ``on_chip_parameter_bytes``, ``off_chip_parameter_bytes``,
        ``caching_tokens``, ``pipeline_segment``, ``cocompiled_with`` and
        ``min_runtime_version``.

    Raises
    ------
    NotCompiledError
        When the file has no ``edgetpu-custom-op`` node: a CPU model (renamed or
        compiled with nothing mapped) would run entirely on the CPU.
    """
    model_path = Path(model_path)
    custom, cpu, extra = _compiled_ops(model_path)
    if custom == 0:
        raise NotCompiledError(
            f"{model_path}: no {EDGETPU_CUSTOM_OP} node ({len(cpu)} ops, all on the CPU): "
            "not compiled by edgetpu_compiler (a renamed CPU model?); it would run on the CPU "
            "and be reported as the Edge TPU - compile the int8 model with edgetpu_compiler")
    source = Path(source) if source is not None else source_model(model_path)
    delegated = None
    if source is not None:
        from benchmark.tflite_graph import read_graph
        delegated = len(read_graph(source).operators) - len(cpu)
    return {"edgetpu_custom_ops": custom, "tpu_segments": custom, "cpu_ops": cpu,
            "cpu_op_count": len(cpu), "ops_delegated": delegated,
            "source_model": str(source) if source is not None else None, **extra}


#: Keys of the compiler's parameter-memory figures (benchmark.compile.logparse).
_MEMORY_KEYS = ("on_chip_used_bytes", "on_chip_remaining_bytes", "off_chip_used_bytes")


def _find_keys(obj, keys) -> dict:
    """The first value of each of ``keys`` anywhere in a nested JSON object."""
    found = {}
    stack = [obj]
    while stack:
        o = stack.pop(0)
        if isinstance(o, dict):
            found.update({k: o[k] for k in keys if k in o and k not in found})
            stack += list(o.values())
        elif isinstance(o, list):
            stack += o
    return found


def compile_memory(model: Path) -> dict | None:
    """The compiler's on-chip / off-chip parameter figures for a compiled model, if saved beside.

    Looks next to ``X_edgetpu.tflite`` for ``X_compile.json`` (``benchmark.compile``),
    then ``X_compile_console.log`` (the compiler's console output); None when
    neither is there or neither has the figures.
    """
    model = Path(model)
    if not model.name.endswith("_edgetpu.tflite"):
        return None
    stem = model.name[:-len("_edgetpu.tflite")]
    js = model.with_name(f"{stem}_compile.json")
    log = model.with_name(f"{stem}_compile_console.log")
    found, source = {}, None
    if js.is_file():
        from benchmark.results import read_json_file
        found, source = _find_keys(read_json_file(js, "compile record"), _MEMORY_KEYS), js
    if not found and log.is_file():
        from benchmark.compile.logparse import parse_compiler_output
        r = parse_compiler_output(log.read_bytes())
        found, source = {k: r[k] for k in _MEMORY_KEYS if r.get(k) is not None}, log
    return dict(found, source=str(source)) if found else None


def failure_cause(text: str, stage: str = "") -> str:
    """The likely cause of an Edge TPU failure, from its message and the stage it happened in."""
    t = text.lower()
    crashed = "sigsegv" in t or "sigabrt" in t or "killed by" in t
    if "unsupported data type in custom op handler" in t or "failed to prepare" in t \
            or (crashed and stage != "invoking"):
        return ("runtime pairing: libedgetpu was built against another TFLite than this "
                "interpreter (install a matched libedgetpu/interpreter pair, see docs/edge-tpu.md)")
    if "permission" in t or "access denied" in t:
        return ("permissions: add the user to the plugdev (USB) or apex (PCIe) group and "
                "install Coral's udev rules")
    if "failed to load delegate" in t or "no edge tpu device" in t:
        return ("no device or no access: the Edge TPU is unplugged, not enumerated, or the user "
                "lacks permission (udev rules, plugdev/apex group)")
    if stage == "invoking":
        return "the device was unplugged or reset mid-run (USB abort), or a runtime pairing fault"
    return "runtime pairing, device unplugged, or permissions"


def _recorded_pairing(library: str, runtime: Runtime):
    """The pairing verdict of pycoral's own interpreter, for the record only.

    pycoral builds its interpreter and delegate itself (its ``tflite_runtime``
    pin is its own choice), so nothing is refused or switched here.
    """
    from benchmark.backends.pairing import detect_library, interpreter_of, judge
    return judge(detect_library(library), interpreter_of(runtime))


class EdgeTPUBackend(InterpreterBackend):
    """An ``*_edgetpu.tflite`` model on a Coral Edge TPU.

    Before the delegate is loaded the model is read (:func:`tpu_proof`): a
    file without an ``edgetpu-custom-op`` node is refused. Failures of the
    delegate (``load_delegate``, ``allocate_tensors``) are one-line
    :class:`BackendUnavailable` errors naming the likely cause. A crash of
    libedgetpu kills the process: the pipeline runs this backend in a child
    process (:mod:`benchmark.backends.isolated`).

    Parameters
    ----------
    model_path : path
        A model compiled by ``edgetpu_compiler``.
    device : str, optional
        ``usb``, ``pci``, ``usb:0``, ``pci:1``, ``:0``...; default: the first found.
    prefer : str, optional
        The interpreter package (``pycoral``, ``ai_edge_litert``, ``tflite_runtime``...).
    library : str, optional
        The libedgetpu to load (default: the installed one).
    runtime : Runtime, optional
        The interpreter and ``load_delegate`` to use (default: :func:`find_runtime`).
    """

    name = "edgetpu"

    def __init__(self, model_path, *, device: str | None = None, prefer: str | None = None,
                 library: str | None = None, runtime: Runtime | None = None):
        model_path = Path(model_path)
        self.device = parse_device_spec(device)
        if not model_path.is_file():
            raise DataError(f"Edge TPU model not found: {model_path} (compile the int8 model "
                            "with edgetpu_compiler first)")
        if not model_path.name.endswith("_edgetpu.tflite"):
            raise BackendUnavailable(
                f"{model_path.name} is not compiled for the Edge TPU: run edgetpu_compiler on "
                "an int8 model; a float model cannot run on the Edge TPU")
        self.proof = tpu_proof(model_path)
        self.library = library or check_edgetpu_available()
        self.open_ms: dict[str, float] = {}
        self.pairing = None   # the pairing verdict (benchmark.backends.pairing.Verdict)
        interp = self._open(model_path, prefer, runtime)
        t0 = time.perf_counter()
        try:   # allocated here first: a delegate that fails to prepare is not a bad model file
            interp.allocate_tensors()
        except RuntimeError as e:   # the delegate failed to prepare its node
            raise BackendUnavailable(self._failure("allocate_tensors() failed", e)) from None
        self.open_ms["allocate_ms"] = _ms_since(t0)
        self._setup(interp, model_path)

    def _failure(self, what: str, e: BaseException) -> str:
        msg = " ".join(str(e).split()) or type(e).__name__
        return (f"Edge TPU: {what} ({type(e).__name__}: {msg[:300]}) with {self.library} and "
                f"{self.runtime.package} {self.runtime.version}; likely cause: "
                f"{failure_cause(msg)}")

    def _open(self, model_path: Path, prefer: str | None, runtime: Runtime | None):
        """The interpreter with the Edge TPU delegate (pycoral's when installed)."""
        make_interpreter = (_pycoral_make_interpreter()
                            if runtime is None and prefer in (None, "pycoral") else None)
        device = self.device
        try:
            if make_interpreter is not None:
                # pycoral builds a tflite_runtime interpreter with the delegate itself.
                self.runtime = _pycoral_runtime(make_interpreter)
                self.pairing = _recorded_pairing(self.library, self.runtime)
                t0 = time.perf_counter()
                interp = make_interpreter(str(model_path), device=device)
                self.open_ms["delegate_ms"] = _ms_since(t0)   # delegate + interpreter
                return interp
            self.runtime = runtime or find_runtime(prefer)
            from benchmark.backends.pairing import check_pairing   # refuses a known-bad pair
            self.runtime, self.pairing = check_pairing(
                self.runtime, prefer=prefer or (runtime and runtime.package), library=self.library)
            options = {"device": device} if device else {}
            t0 = time.perf_counter()
            delegate = self.runtime.load_delegate(self.library, options)
            self.open_ms["delegate_ms"] = _ms_since(t0)
            t0 = time.perf_counter()
            interp = self.runtime.Interpreter(model_path=str(model_path),
                                              experimental_delegates=[delegate])
            self.open_ms["interpreter_ms"] = _ms_since(t0)
            return interp
        except (ValueError, OSError) as e:
            raise BackendUnavailable(
                f"no Edge TPU device found{f' at {device}' if device else ''} "
                f"({self.library} loaded but the delegate failed: {str(e).splitlines()[0]}); "
                f"likely cause: {failure_cause(str(e))}") from None
        except RuntimeError as e:
            raise BackendUnavailable(self._failure("loading the delegate failed", e)) from None

    def info(self) -> dict:
        out = self.output_spec
        return {"backend": self.name, "runtime": self.runtime.package,
                "runtime_version": self.runtime.version, "library": self.library,
                "device": self.device or "default",
                "tpu": dict(self.proof), "open_ms": dict(self.open_ms),
                "pairing": self.pairing.as_dict() if self.pairing is not None else None,
                "compile_memory": compile_memory(self.model_path),
                "output_quantization": {"scale": out.scale, "zero_point": out.zero_point,
                                        "dtype": str(out.dtype)}}
