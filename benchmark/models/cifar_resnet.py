"""CIFAR ResNets (He et al. 2016, CIFAR variant) that load PyTorch state dicts.

ResNet-(6n+2): 3x3 conv 16 -> BN -> ReLU, three stages of n basic blocks at
16 / 32 / 64 channels (the first block of stages 2 and 3 has stride 2 and a
1x1 conv + BN projection shortcut), global average pool, fully connected
layer. n = 3, 5, 7, 9 gives ResNet20/32/44/56.

The Keras layers are named after the PyTorch modules (``layer2.0.conv1`` ->
``layer2_0_conv1``) so a state dict of the ``chenyaofo/pytorch-cifar-models``
layout loads key by key. PyTorch pads a stride-2 3x3 convolution by one pixel
on every side, Keras ``padding="same"`` pads (0, 1) on even inputs, so stride-2
convolutions get an explicit ``ZeroPadding2D(1)`` (a PAD op in TFLite, which
the Edge TPU supports). BatchNorm layers stay separate in Keras; the TFLite
converter folds them into the convolutions.

The model outputs logits (the harness applies the softmax), as in the paper,
whose quantized models quantize the logits and take the softmax in float.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.errors import DataError
from benchmark.models.base import ModelEntry
from benchmark.preprocess import PixelTransform

#: Blocks per stage of each depth.
DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9}
WIDTHS = (16, 32, 64)
BN_EPS = 1e-5
#: Training-time normalization of the pretrained weights (their README).
CIFAR100_MEAN = (0.5070, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def build_cifar_resnet(*, depth: int = 20, num_classes: int = 100, input_size: int = 32,
                       batch_size: int | None = None):
    """Build a CIFAR ResNet as a Keras functional model (logits output).

    Parameters
    ----------
    depth : {20, 32, 44, 56}
    num_classes : int
    input_size : int
        Side of the square, normalized RGB input.
    batch_size : int or None
        Fixed batch dimension (1 for the export graph).
    """
    import keras
    from keras import layers

    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {sorted(DEPTHS)}, got {depth}")

    def conv(x, filters, kernel, stride, name):
        if stride == 2 and kernel == 3:
            x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
            return layers.Conv2D(filters, kernel, strides=2, padding="valid", use_bias=False,
                                 name=name)(x)
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                             name=name)(x)

    def bn(x, name):
        return layers.BatchNormalization(epsilon=BN_EPS, name=name)(x)

    inp = keras.Input((input_size, input_size, 3), batch_size=batch_size, name="image")
    x = layers.ReLU(name="relu")(bn(conv(inp, WIDTHS[0], 3, 1, "conv1"), "bn1"))
    in_ch = WIDTHS[0]
    for stage, width in enumerate(WIDTHS, start=1):
        for b in range(DEPTHS[depth]):
            stride = 2 if stage > 1 and b == 0 else 1
            p = f"layer{stage}_{b}"
            y = layers.ReLU(name=f"{p}_relu1")(bn(conv(x, width, 3, stride, f"{p}_conv1"),
                                                  f"{p}_bn1"))
            y = bn(conv(y, width, 3, 1, f"{p}_conv2"), f"{p}_bn2")
            if stride != 1 or in_ch != width:
                x = bn(conv(x, width, 1, stride, f"{p}_downsample_0"), f"{p}_downsample_1")
            x = layers.ReLU(name=f"{p}_relu2")(layers.Add(name=f"{p}_add")([x, y]))
            in_ch = width
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    out = layers.Dense(num_classes, name="fc")(x)
    return keras.Model(inp, out, name=f"cifar_resnet{depth}")


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state dict, from ``.npz`` (no PyTorch needed) or ``.pt(h)``.

    ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``
    when PyTorch is installed; a ``{"state_dict": ...}`` wrapper and a
    ``module.`` prefix (DataParallel) are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"weights file not found: {path}")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                state = {k: np.asarray(z[k]) for k in z.files}
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read weights {path}: {e}") from None
    elif path.suffix in (".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise DataError(f"reading {path.name} needs PyTorch (pip install torch); "
                            "or pass the same state dict as .npz") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for corrupt/foreign files
            raise DataError(f"cannot read weights {path}: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict):
            raise DataError(f"{path} does not hold a state dict (got {type(obj).__name__})")
        state = {k: v.detach().cpu().numpy() for k, v in obj.items() if hasattr(v, "detach")}
    else:
        raise DataError(f"weights must be a .npz or .pt/.pth file, got {path.name}")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_pytorch_weights(model, state: dict[str, np.ndarray]) -> None:
    """Copy a PyTorch CIFAR-ResNet state dict into ``model`` (built by :func:`build_cifar_resnet`).

    Every weight-carrying Keras layer must find its tensors and every
    state-dict tensor must be used (``num_batches_tracked`` aside); shapes are
    checked. Raises DataError naming the first mismatch.
    """
    used = set()

    def take(key, shape=None):
        if key not in state:
            raise DataError(f"weights file has no {key!r} (is it a CIFAR ResNet of depth "
                            f"{model.name.removeprefix('cifar_resnet')}?)")
        used.add(key)
        v = np.asarray(state[key], np.float32)
        if shape is not None and v.shape != tuple(shape):
            raise DataError(f"{key!r} has shape {v.shape}, the model expects {tuple(shape)}")
        return v

    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = _torch_prefix(layer.name)
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            layer.set_weights([take(f"{prefix}.weight", (cout, cin, kh, kw))
                               .transpose(2, 3, 1, 0)])
        elif kind == "BatchNormalization":
            c = layer.gamma.shape[0]
            layer.set_weights([take(f"{prefix}.{k}", (c,)) for k in
                               ("weight", "bias", "running_mean", "running_var")])
        elif kind == "Dense":
            cin, cout = layer.kernel.shape
            layer.set_weights([take(f"{prefix}.weight", (cout, cin)).T,
                               take(f"{prefix}.bias", (cout,))])
        else:
            raise DataError(f"no PyTorch mapping for layer {layer.name} ({kind})")
    unused = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked"))
    if unused:
        raise DataError(f"weights file has {len(unused)} tensors the model does not use, "
                        f"e.g. {unused[0]!r} (wrong depth?)")


def _torch_prefix(keras_name: str) -> str:
    """``layer2_0_downsample_1`` -> ``layer2.0.downsample.1``; ``bn1`` -> ``bn1``."""
    return keras_name.replace("_", ".")


def _loader(path, model):
    load_pytorch_weights(model, read_state_dict(path))


def _entry(depth: int) -> ModelEntry:
    return ModelEntry(
        name=f"resnet{depth}",
        builder=lambda depth=depth, **kw: build_cifar_resnet(depth=depth, **kw),
        default_dataset="cifar100",
        input_size=32,
        num_classes=100,
        description=f"CIFAR ResNet{depth} (pretrained PyTorch weights via --weights)",
        preprocess=PixelTransform(scale=1 / 255, mean=CIFAR100_MEAN, std=CIFAR100_STD),
        outputs="logits",
        load_weights=_loader,
        weights_help="a PyTorch state dict of the CIFAR ResNet layout, .npz or .pth",
        representative_size=1000,
    )


ENTRIES = tuple(_entry(d) for d in DEPTHS)
RESNET20, RESNET32, RESNET44, RESNET56 = ENTRIES
