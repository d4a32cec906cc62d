"""CIFAR ResNets: Keras port vs PyTorch, weight loading errors, CIFAR-100 shipped images."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import DataError
from benchmark.models.cifar_resnet import DEPTHS, read_state_dict
from benchmark.models.registry import get_model

from conftest import SHARED

pytestmark = pytest.mark.slow

WEIGHTS = SHARED / "models" / "cifar100_resnet"
PAPER_WEIGHTS = SHARED / "models" / "paper_cifar100_resnet"
CIFAR = SHARED / "data" / "cifar100" / "cifar100_partial.npz"
needs_shared = pytest.mark.skipif(not (WEIGHTS.is_dir() and CIFAR.is_file()),
                                  reason="../shared/models/cifar100_resnet or "
                                         "../shared/data/cifar100 not present")


def torch_resnet(depth: int):
    """An independent PyTorch CIFAR ResNet (the layout the state dicts were saved from)."""
    torch = pytest.importorskip("torch", reason="PyTorch (the 'torch' extra) not installed")
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(y + (x if self.downsample is None else self.downsample(x)))

    class Net(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            cin = 16
            for i, c in enumerate((16, 32, 64)):
                blocks = []
                for b in range(n):
                    blocks.append(Block(cin, c, 2 if i and not b else 1))
                    cin = c
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.fc = nn.Linear(64, 100)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            return self.fc(self.layer3(self.layer2(self.layer1(x))).mean((2, 3)))

    return torch, Net(DEPTHS[depth]).eval()


@pytest.fixture(scope="module")
def cifar():
    if not CIFAR.is_file():
        pytest.skip("../shared/data/cifar100 not present")
    with np.load(CIFAR) as z:
        return z["test_images"], z["test_fine_labels"]


#: Every 8th of the 916 images goes through the PyTorch reference too (115 images): a port
#: bug (padding, kernel layout, BatchNorm) moves the logits of every image, not of a few.
TORCH_EVERY = 8


@needs_shared
@pytest.mark.parametrize("depth,fmt,weights_dir,reference_acc", [
    (20, "npz", WEIGHTS, 0.6932), (56, "npz", WEIGHTS, 0.7096),
    (56, "pth", PAPER_WEIGHTS, 0.6878)])
def test_keras_logits_match_pytorch(tf, cifar, depth, fmt, weights_dir, reference_acc):
    """(The 20-layer .pth: test_pth_loads_the_same_keras_weights_as_npz.)"""
    images, labels = cifar
    entry = get_model(f"resnet{depth}")
    name = (f"cifar100_resnet{depth}" if weights_dir == WEIGHTS
            else f"paper_resnet{depth}_cifar100")
    path = weights_dir / f"{name}.{fmt}"
    if fmt == "pth":
        pytest.importorskip("torch", reason="PyTorch (the 'torch' extra) not installed")
    model = entry.build()
    entry.load_weights(path, model)
    x = entry.preprocess(images)
    keras_logits = model.predict(x, batch_size=256, verbose=0)

    torch, net = torch_resnet(depth)
    net.load_state_dict(torch.load(path.with_suffix(".pth"), map_location="cpu",
                                   weights_only=True))
    some = slice(None, None, TORCH_EVERY)
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(np.ascontiguousarray(x[some].transpose(0, 3, 1, 2))))
    diff = np.abs(keras_logits[some] - torch_logits.numpy()).max()
    assert diff <= 1e-3, f"max |keras - torch| = {diff}"
    # The models' README gives the float top-1 on these 916 images.
    assert np.mean(keras_logits.argmax(1) == labels) == pytest.approx(reference_acc, abs=6e-4)


@needs_shared
def test_pth_loads_the_same_keras_weights_as_npz(tf):
    """The .pth path of entry.load_weights gives exactly the model the .npz gives, so the
    20-layer .npz case of test_keras_logits_match_pytorch (logits, 0.6932) holds for it."""
    pytest.importorskip("torch", reason="PyTorch (the 'torch' extra) not installed")
    entry = get_model("resnet20")
    from_npz, from_pth = entry.build(), entry.build()
    entry.load_weights(WEIGHTS / "cifar100_resnet20.npz", from_npz)
    entry.load_weights(WEIGHTS / "cifar100_resnet20.pth", from_pth)
    a, b = from_npz.get_weights(), from_pth.get_weights()
    assert len(a) == len(b) == len(from_npz.weights) > 0
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@needs_shared
def test_npz_and_pth_hold_the_same_tensors():
    pytest.importorskip("torch", reason="PyTorch (the 'torch' extra) not installed")
    a = read_state_dict(WEIGHTS / "cifar100_resnet20.npz")
    b = read_state_dict(WEIGHTS / "cifar100_resnet20.pth")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _random_state(depth: int) -> dict:
    """A state dict in the PyTorch layout, from an untrained PyTorch-free description."""
    rng = np.random.default_rng(depth)
    state = {"conv1.weight": rng.normal(size=(16, 3, 3, 3)),
             "fc.weight": rng.normal(size=(100, 64)), "fc.bias": rng.normal(size=100)}

    def bn(prefix, c):
        state.update({f"{prefix}.weight": rng.random(c) + 0.5, f"{prefix}.bias": rng.normal(size=c),
                      f"{prefix}.running_mean": rng.normal(size=c),
                      f"{prefix}.running_var": rng.random(c) + 0.5,
                      f"{prefix}.num_batches_tracked": np.array(10)})
    bn("bn1", 16)
    cin = 16
    for s, c in enumerate((16, 32, 64), start=1):
        for b in range(DEPTHS[depth]):
            p = f"layer{s}.{b}"
            state[f"{p}.conv1.weight"] = rng.normal(size=(c, cin, 3, 3))
            state[f"{p}.conv2.weight"] = rng.normal(size=(c, c, 3, 3))
            bn(f"{p}.bn1", c)
            bn(f"{p}.bn2", c)
            if cin != c:
                state[f"{p}.downsample.0.weight"] = rng.normal(size=(c, cin, 1, 1))
                bn(f"{p}.downsample.1", c)
            cin = c
    return state


def test_state_dict_mismatches_are_named(tf, tmp_path):
    from benchmark.models.cifar_resnet import load_pytorch_weights
    entry = get_model("resnet20")
    state = _random_state(20)
    load_pytorch_weights(entry.build(), state)  # complete: loads

    missing = dict(state)
    del missing["layer2.0.downsample.0.weight"]
    with pytest.raises(DataError, match="no 'layer2.0.downsample.0.weight'"):
        load_pytorch_weights(entry.build(), missing)
    wrong = dict(state, **{"fc.weight": np.zeros((10, 64))})
    with pytest.raises(DataError, match=r"'fc.weight' has shape \(10, 64\).*\(100, 64\)"):
        load_pytorch_weights(entry.build(), wrong)
    with pytest.raises(DataError, match="tensors the model does not use.*wrong depth"):
        load_pytorch_weights(entry.build(), _random_state(32))
    np.savez(tmp_path / "w.npz", **state)
    assert read_state_dict(tmp_path / "w.npz").keys() == state.keys()
    with pytest.raises(DataError, match="weights file not found"):
        read_state_dict(tmp_path / "nope.npz")
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(DataError, match=r"must be a \.npz or \.pt/\.pth"):
        read_state_dict(tmp_path / "w.h5")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read weights"):
        read_state_dict(tmp_path / "bad.npz")


def test_stride2_padding_follows_pytorch(tf):
    """A stride-2 3x3 conv pads one pixel on every side, as PyTorch does (not TF 'same')."""
    import keras
    m = get_model("resnet20").build()
    pads = [layer for layer in m.layers if isinstance(layer, keras.layers.ZeroPadding2D)]
    assert [p.name for p in pads] == ["layer2_0_conv1_pad", "layer3_0_conv1_pad"]
    assert all(p.padding == ((1, 1), (1, 1)) for p in pads)
    assert m.output_shape == (None, 100)
