"""benchmark.train for any class count (issue #12): N outputs, --init-from, validation, overwrite.

A tiny seeded image folder (42 classes x a few 16 x 16 images) trains in seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, run_main


def make_imagefolder(root, *, classes: int = 42, train: int = 4, test: int = 1, size: int = 16,
                     seed: int = 0, names=None):
    """``root/train/<class>/`` and ``root/test/<class>/`` of flat-ish seeded PNGs.

    Each class has its own base colour (so a network can tell them apart)
    plus seeded noise; class folders are zero-padded integers by default.
    """
    rng = np.random.default_rng(seed)
    names = names or [f"{i:02d}" for i in range(classes)]
    for c, name in enumerate(names):
        base = np.array([(37 * c) % 256, (91 * c) % 256, (151 * c) % 256], np.float64)
        for part, n in (("train", train), ("test", test)):
            d = root / part / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                px = np.clip(base + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(d / f"img{i}.png")
    return root


@pytest.fixture(scope="module")
def folder42(tmp_path_factory):
    return make_imagefolder(tmp_path_factory.mktemp("data42"))


def _train(data, model_dir, env, *extra, run=run_main):
    return run("benchmark.train", "--dataset", "imagefolder", "--data-dir", data,
               "--split", "verification", "--epochs", "2", "--batch-size", "32",
               "--no-augment", "--model-dir", model_dir, *extra, env=env)


@pytest.fixture(scope="module")
def trained42(tf, folder42, tmp_path_factory, env):
    models = tmp_path_factory.mktemp("models")
    r = _train(folder42, models, env, "--num-classes", "42", "--val-fraction", "0.25")
    assert r.returncode == 0, r.stderr[-3000:]
    return models / "signnet" / "verification", r


@pytest.mark.slow
def test_train_builds_n_outputs_and_keeps_the_best_epoch(trained42):
    import keras
    art, r = trained42
    model = keras.models.load_model(art / "signnet.keras", compile=False)
    assert model.output_shape == (None, 42)
    meta = json.loads((art / "train_meta.json").read_text())
    hist = json.loads((art / "history.json").read_text())
    assert meta["num_classes"] == 42 and meta["class_names"][:3] == ["00", "01", "02"]
    val = meta["validation"]
    # 42 classes x 4 training images, each its own unit: a quarter held out
    assert (val["n"], meta["n_train"]) == (42, 126)
    assert meta["training_rows"]["n_fit"] == 126 and len(hist["val_accuracy"]) == 2
    best = max(range(2), key=lambda i: (hist["val_accuracy"][i], -hist["val_loss"][i]))
    assert val["best_epoch"] == best + 1 and val["accuracy"] == pytest.approx(
        hist["val_accuracy"][best])
    # not a terminal: one line per epoch, validation included, no progress bar
    lines = [x for x in r.stderr.splitlines() if x.startswith("epoch ")]
    assert len(lines) == 2 and all("validation loss" in x for x in lines)
    assert "(best)" in lines[best] and "\r" not in r.stderr
    assert f"kept epoch {best + 1}/2: validation accuracy" in r.stderr


@pytest.mark.slow
def test_train_refuses_to_overwrite_without_the_flag(trained42, folder42, env):
    art, _ = trained42
    before = (art / "signnet.keras").read_bytes()
    r = _train(folder42, art.parent.parent, env, run=run_cli)    # the refusal: a process
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert f"{art} already holds a trained model (signnet.keras): pass --overwrite" in r.stderr
    assert (art / "signnet.keras").read_bytes() == before


@pytest.mark.slow
def test_init_from_keeps_the_body_and_makes_a_new_head(trained42, tmp_path, env, tf):
    """Fine-tune the 42-class model on 7 classes: conv/dense1 copied, 'probs' new."""
    import keras
    art, _ = trained42
    data = make_imagefolder(tmp_path / "data7", classes=7, train=3, seed=1)
    r = _train(data, tmp_path / "m", env, "--init-from", art / "signnet.keras", "--epochs", "1",
               "--learning-rate", "1e-9")
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "m" / "signnet" / "verification"
    meta = json.loads((out / "train_meta.json").read_text())
    init = meta["init_from"]
    assert init["layers_kept"] == ["conv1", "conv2", "conv3", "conv4", "dense1"]
    assert init["new_head"] == ["probs"] and len(init["sha256"]) == 64
    a = keras.models.load_model(art / "signnet.keras", compile=False)
    b = keras.models.load_model(out / "signnet.keras", compile=False)
    assert b.output_shape == (None, 7)
    # learning rate ~0: the copied body is (nearly) the source's
    np.testing.assert_allclose(b.get_layer("conv1").get_weights()[0],
                               a.get_layer("conv1").get_weights()[0], atol=1e-6)
    # the new head starts from zeros (uniform outputs), so the body is not wrecked
    assert init["new_head_init"] == "zeros"
    assert np.abs(b.get_layer("probs").get_weights()[0]).max() < 1e-6


def test_init_from_errors_are_one_line(tmp_path, monkeypatch):
    """A missing file or untrained registered model: DataError naming it, before TensorFlow."""
    from benchmark import train
    from benchmark.errors import DataError, UsageError

    def no_tf(what):
        raise AssertionError("checked before TensorFlow")
    monkeypatch.setattr(train, "require_tensorflow", no_tf)
    data = make_imagefolder(tmp_path / "d", classes=3, train=2)
    base = ["--split", "full", "--dataset", "imagefolder", "--data-dir", str(data),
            "--model-dir", str(tmp_path / "m")]
    with pytest.raises(DataError, match=r"--init-from .*nope\.keras: no such \.keras file"):
        train.main([*base, "--init-from", str(tmp_path / "nope.keras")])
    with pytest.raises(UsageError, match="unknown model 'nomodel'"):
        train.main([*base, "--init-from", "nomodel"])
    with pytest.raises(UsageError, match=r"--val-fraction must be a number in \[0, 1\), got 1.0"):
        train.main([*base, "--val-fraction", "1"])
