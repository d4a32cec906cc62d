"""ImageNet ResNet50 and MobileNetV2 from ``keras.applications``, with your weights file.

Both networks are built by ``keras.applications`` with ``weights=None`` (nothing
is ever downloaded) and ``classifier_activation=None``, so they output the
1000 logits and the harness applies the softmax after dequantizing. The
weights come from ``--weights FILE``: the Keras ImageNet weights as Keras
distributes them (``resnet50_weights_tf_dim_ordering_tf_kernels.h5``,
``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5``; the full
models with the classifier, not the ``_notop`` files), or a Keras 3
``.weights.h5`` or ``.keras`` file of the same ``keras.applications``
architecture.

Preprocessing is Keras' own per model, written as a per-channel affine
:class:`~benchmark.preprocess.PixelTransform` of the uint8 RGB image:

- MobileNetV2, Keras ``"tf"`` mode: ``x / 127.5 - 1``.
- ResNet50, Keras ``"caffe"`` mode: RGB -> BGR, then subtract the BGR means
  (103.939, 116.779, 123.68), no scaling.

A PixelTransform cannot reorder channels, so the ResNet50 entry keeps RGB
input, subtracts the means in RGB order (123.68, 116.779, 103.939), and after
loading the weights reverses the input-channel axis of the first
convolution's kernel (``conv1_conv``, shape (7, 7, 3, 64) ->
``kernel[:, :, ::-1, :]``). Channel ``c`` of the RGB input then meets the
kernel slice the original network applies to BGR channel ``2 - c``, which is
the same pixel value, so the model computes exactly what the original
computes on ``preprocess_input`` (the zero padding before ``conv1_conv`` is
zero in both). The flipped kernel is part of the converted ``.tflite`` files;
a weights file is never changed.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

from benchmark.errors import DataError
from benchmark.models.base import ModelEntry
from benchmark.preprocess import PixelTransform

INPUT_SIZE = 224
NUM_CLASSES = 1000
#: Keras ``"caffe"`` mode means, in RGB order (Keras lists them as BGR 103.939, 116.779, 123.68).
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
#: Layer whose kernel gets its input channels reversed (RGB input into a BGR-trained network).
RESNET50_FIRST_CONV = "conv1_conv"
#: The file names Keras distributes, shown in error messages.
KERAS_FILES = {"resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
               "mobilenetv2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"}


def _build(family: str, *, num_classes: int, input_size: int, batch_size: int | None):
    import keras

    inp = keras.Input((input_size, input_size, 3), batch_size=batch_size, name="image")
    ctor = {"resnet50": keras.applications.ResNet50,
            "mobilenetv2": keras.applications.MobileNetV2}[family]
    return ctor(weights=None, input_tensor=inp, classes=num_classes,
                classifier_activation=None)


def build_resnet50(*, num_classes: int = NUM_CLASSES, input_size: int = INPUT_SIZE,
                   batch_size: int | None = None):
    """``keras.applications.ResNet50`` without weights, logits output.

    Parameters
    ----------
    num_classes : int
    input_size : int
        Side of the square RGB input (224 for the ImageNet weights).
    batch_size : int or None
        Fixed batch dimension (1 for the export graph).
    """
    return _build("resnet50", num_classes=num_classes, input_size=input_size,
                  batch_size=batch_size)


def build_mobilenetv2(*, num_classes: int = NUM_CLASSES, input_size: int = INPUT_SIZE,
                      batch_size: int | None = None):
    """``keras.applications.MobileNetV2`` (alpha 1.0) without weights, logits output.

    Parameters
    ----------
    num_classes : int
    input_size : int
        Side of the square RGB input (224 for the ImageNet weights).
    batch_size : int or None
        Fixed batch dimension (1 for the export graph).
    """
    return _build("mobilenetv2", num_classes=num_classes, input_size=input_size,
                  batch_size=batch_size)


def _hdf5_layout(path: Path) -> str:
    """``"legacy"`` (Keras 2 ``.h5``: ``layer_names``), ``"keras3"`` (``.weights.h5``) or ``"?"``.

    Raises
    ------
    DataError
        The file is not HDF5.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs or "model_weights" in f:
                return "legacy"
            if "vars" in f or "layers" in f:
                return "keras3"
            return "?"
    except OSError as e:
        raise DataError(f"cannot read weights {path}: not an HDF5 file "
                        f"({str(e).splitlines()[0]})") from None


def load_keras_weights(path: str | Path, model, family: str) -> None:
    """Load a Keras ImageNet weights file into ``model`` (built by this module).

    Parameters
    ----------
    path : path
        ``.h5`` in the layout Keras distributes (or a whole model saved as
        ``.h5``), a Keras 3 ``.weights.h5``, or a Keras 3 ``.keras`` model
        (only its weights are used).
    model : keras.Model
    family : {"resnet50", "mobilenetv2"}
        ResNet50 gets its first convolution's input channels reversed after
        loading (see the module docstring).

    Raises
    ------
    DataError
        Missing file, not HDF5 (or zip for ``.keras``), a suffix that does
        not match the layout inside, or weights of another architecture or
        class count, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"weights file not found: {path}")
    name = path.name.lower()
    if not name.endswith((".h5", ".hdf5", ".keras")):
        raise DataError(f"{family} weights must be a Keras .h5, .weights.h5 or .keras file "
                        f"(e.g. {KERAS_FILES[family]}), got {path.name}")
    if not name.endswith(".keras"):
        layout = _hdf5_layout(path)
        keras3_name = name.endswith(".weights.h5")
        if layout == "legacy" and keras3_name:
            raise DataError(f"{path} holds Keras 2 .h5 weights but is named .weights.h5 (the "
                            "Keras 3 format): rename it to end in plain .h5")
        if layout == "keras3" and not keras3_name:
            raise DataError(f"{path} holds Keras 3 weights: rename it to end in .weights.h5")
    try:
        with warnings.catch_warnings():
            # Keras 3 warns once per unmatched sub-container before raising its ValueError.
            warnings.filterwarnings("ignore", message="Skipping nested container")
            model.load_weights(path)
    except ValueError as e:
        first = str(e).strip().splitlines()[0]
        raise DataError(f"{path.name} does not fit {family} with {model.output_shape[-1]} "
                        f"classes ({first}); expected the full ImageNet weights like "
                        f"{KERAS_FILES[family]}, not _notop") from None
    except zipfile.BadZipFile as e:
        raise DataError(f"cannot read {path}: not a .keras (zip) file ({e})") from None
    if family == "resnet50":
        flip_first_conv(model)


def flip_first_conv(model) -> None:
    """Reverse the input-channel axis of ``conv1_conv``'s kernel: BGR-trained -> RGB input."""
    layer = model.get_layer(RESNET50_FIRST_CONV)
    weights = layer.get_weights()
    weights[0] = weights[0][:, :, ::-1, :].copy()
    layer.set_weights(weights)


def _resnet50_weights(path, model) -> None:
    load_keras_weights(path, model, "resnet50")


def _mobilenetv2_weights(path, model) -> None:
    load_keras_weights(path, model, "mobilenetv2")


RESNET50 = ModelEntry(
    name="resnet50",
    builder=build_resnet50,
    default_dataset="imagenet",
    input_size=INPUT_SIZE,
    num_classes=NUM_CLASSES,
    description="keras.applications ResNet50 for ImageNet (your Keras weights via --weights)",
    preprocess=PixelTransform(scale=1.0, mean=CAFFE_MEAN_RGB, std=(1.0, 1.0, 1.0)),
    outputs="logits",
    load_weights=_resnet50_weights,
    weights_help="Keras ImageNet weights, e.g. resnet50_weights_tf_dim_ordering_tf_kernels.h5",
    representative_size=500,
)

MOBILENETV2 = ModelEntry(
    name="mobilenetv2",
    builder=build_mobilenetv2,
    default_dataset="imagenet",
    input_size=INPUT_SIZE,
    num_classes=NUM_CLASSES,
    description="keras.applications MobileNetV2 (alpha 1.0) for ImageNet (your Keras weights "
                "via --weights)",
    preprocess=PixelTransform(scale=1 / 127.5, mean=(1.0, 1.0, 1.0), std=(1.0, 1.0, 1.0)),
    outputs="logits",
    load_weights=_mobilenetv2_weights,
    weights_help="Keras ImageNet weights, e.g. "
                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
    representative_size=500,
)

ENTRIES = (RESNET50, MOBILENETV2)
