"""The trained Keras model itself (float32, batched), when TensorFlow/Keras is installed.

The reference the ``.tflite`` float model should match; useful to see whether
the float TFLite conversion changed anything before blaming quantization.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.backends.base import Backend, TensorSpec
from benchmark.errors import BackendUnavailable, DataError


class KerasFloatBackend(Backend):
    """A ``.keras`` model run with ``model(x, training=False)`` on whole batches."""

    name = "keras-float"

    def __init__(self, model_path, **_ignored):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise DataError(f"model file not found: {model_path}")
        from benchmark.cli import quiet_tensorflow
        quiet_tensorflow()
        try:
            import keras
        except ImportError:
            raise BackendUnavailable("the Keras backend needs TensorFlow/Keras: "
                                     "pip install -e '.[train]'") from None
        self.keras_version = keras.__version__
        self.model = keras.models.load_model(model_path, compile=False)
        shape = (1,) + tuple(int(d) for d in self.model.input_shape[1:])
        self.input_spec = TensorSpec("input", shape, np.dtype(np.float32))
        self.output_spec = TensorSpec("output", (1, int(self.model.output_shape[-1])),
                                      np.dtype(np.float32))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(np.asarray(x, np.float32), training=False), np.float32)

    def info(self) -> dict:
        return {"backend": self.name, "runtime": "keras", "runtime_version": self.keras_version}
