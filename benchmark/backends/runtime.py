"""Pick the TFLite interpreter at run time: ai_edge_litert, tflite_runtime, tensorflow.lite."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from benchmark.cli import quiet_tensorflow
from benchmark.errors import BackendUnavailable

#: (package, module holding the interpreter, attribute path of Interpreter, of load_delegate).
#: For TensorFlow the attributes live on the ``tensorflow`` module (``tf.lite.Interpreter``):
#: the module ``tensorflow.lite`` is the source package and has no ``Interpreter``.
_CANDIDATES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "Interpreter", "load_delegate"),
    ("tflite_runtime", "tflite_runtime.interpreter", "Interpreter", "load_delegate"),
    ("tensorflow", "tensorflow", "lite.Interpreter", "lite.experimental.load_delegate"),
)


def _attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Runtime:
    """The interpreter class and delegate loader of one package."""

    package: str
    version: str
    Interpreter: type
    load_delegate: Callable


def find_runtime(prefer: str | None = None) -> Runtime:
    """The first importable TFLite runtime (``prefer`` restricts to one package).

    Import errors other than "not installed" (e.g. tflite-runtime 2.14 built
    against numpy 1 failing beside numpy 2) make the search move on and are
    reported when nothing works.
    """
    problems = []
    for package, module, interp_attr, delegate_attr in _CANDIDATES:
        if prefer and package != prefer:
            continue
        if package == "tensorflow":
            quiet_tensorflow()
        try:
            mod = importlib.import_module(module)
            interp, load_delegate = _attr(mod, interp_attr), _attr(mod, delegate_attr)
        except ImportError as e:
            problems.append(f"{package}: {e}".splitlines()[0])
            continue
        except Exception as e:  # a broken install (ABI mismatch) raises other errors
            problems.append(f"{package}: {type(e).__name__}: {e}".splitlines()[0])
            continue
        top = importlib.import_module(package)
        return Runtime(package=package, version=str(getattr(top, "__version__", "unknown")),
                       Interpreter=interp, load_delegate=load_delegate)
    raise BackendUnavailable(
        "no TFLite interpreter found (tried ai_edge_litert, tflite_runtime, tensorflow.lite): "
        "pip install ai-edge-litert" + (f" [{'; '.join(problems)}]" if problems else ""))
