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
from pathlib import Path

from benchmark.backends.litert_cpu import InterpreterBackend
from benchmark.backends.runtime import Runtime, find_runtime
from benchmark.errors import BackendUnavailable, DataError

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
            f"Edge TPU runtime not found: {delegate_library_name()} is not installed "
            "(install libedgetpu1-std from Coral's apt repository, see README 'Edge TPU'), "
            "or use --device cpu")
    return lib


class EdgeTPUBackend(InterpreterBackend):
    """An ``*_edgetpu.tflite`` model on a Coral Edge TPU.

    Parameters
    ----------
    model_path : path
        A model compiled by ``edgetpu_compiler``.
    device : str, optional
        ``usb``, ``pci``, ``usb:0``, ``pci:1``...; default: the first found.
    """

    name = "edgetpu"

    def __init__(self, model_path, *, device: str | None = None, prefer: str | None = None,
                 library: str | None = None):
        model_path = Path(model_path)
        lib = library or check_edgetpu_available()
        if not model_path.is_file():
            raise DataError(f"Edge TPU model not found: {model_path} (compile the int8 model "
                            "with edgetpu_compiler first)")
        if not model_path.name.endswith("_edgetpu.tflite"):
            raise BackendUnavailable(
                f"{model_path.name} is not compiled for the Edge TPU: run edgetpu_compiler on "
                "an int8 model; a float model cannot run on the Edge TPU")
        self.device = device
        self.library = lib
        make_interpreter = _pycoral_make_interpreter() if prefer in (None, "pycoral") else None
        try:
            if make_interpreter is not None:
                # pycoral builds a tflite_runtime interpreter with the delegate itself.
                self.runtime = _pycoral_runtime(make_interpreter)
                interp = make_interpreter(str(model_path), device=device)
            else:
                self.runtime = find_runtime(prefer)
                options = {"device": device} if device else {}
                delegate = self.runtime.load_delegate(lib, options)
                interp = self.runtime.Interpreter(model_path=str(model_path),
                                                  experimental_delegates=[delegate])
        except (ValueError, OSError) as e:
            raise BackendUnavailable(
                f"no Edge TPU device found{f' at {device}' if device else ''} "
                f"({lib} loaded but the delegate failed: {str(e).splitlines()[0]}); "
                "check the USB/PCIe connection and udev permissions") from None
        self._setup(interp, model_path)

    def info(self) -> dict:
        return {"backend": self.name, "runtime": self.runtime.package,
                "runtime_version": self.runtime.version, "library": self.library,
                "device": self.device or "default"}
