"""ImageNet ResNet50 / MobileNetV2 entries: weights loading, channel flip, preprocessing, errors.

Everything runs on randomly initialized ``keras.applications`` models whose
weights the tests save themselves; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import DataError
from benchmark.models.registry import get_model, list_models

#: registry name -> (keras.applications constructor, module with preprocess_input)
FAMILIES = {"resnet50": ("ResNet50", "resnet50"), "mobilenetv2": ("MobileNetV2", "mobilenet_v2")}


def original(name: str, seed: int, classes: int = 1000, **kw):
    """A seeded, randomly initialized ``keras.applications`` model, logits output."""
    import keras
    keras.utils.set_random_seed(seed)
    ctor = getattr(keras.applications, FAMILIES[name][0])
    return ctor(weights=None, input_shape=(224, 224, 3), classes=classes,
                classifier_activation=None, **kw)


def normalize_batchnorm(model, x) -> None:
    """Set every BatchNorm's moving statistics to its batch statistics on ``x``.

    A randomly initialized MobileNetV2 with unit BatchNorm statistics shrinks
    its activations layer by layer (logits ~1e-11), which would make any
    comparison vacuous; with data-dependent statistics both networks give
    logits of order one.
    """
    import keras
    bns = [layer for layer in model.layers
           if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in bns]
    for layer in bns:
        layer.momentum = 0.0
    model(x, training=True)
    for layer, m in zip(bns, saved):
        layer.momentum = m


def logits(model, x) -> np.ndarray:
    """``model``'s inference-mode output on ``x``, one eager call (no predict() tracing)."""
    return np.asarray(model([x] if isinstance(model.input, list) else x, training=False))


@pytest.fixture(scope="module")
def reference(tf, tmp_path_factory):
    """``reference(name)``: the seed-3 ``original`` with data-dependent BatchNorm statistics
    and its saved ``<name>.weights.h5``, built once per module (tests only read them)."""
    import keras
    made = {}

    def get(name):
        if name not in made:
            module = getattr(keras.applications, FAMILIES[name][1])
            model = original(name, seed=3)
            calib = np.random.default_rng(0).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
            normalize_batchnorm(model, module.preprocess_input(calib.astype(np.float32)))
            path = tmp_path_factory.mktemp(name) / f"{name}.weights.h5"
            model.save_weights(path)
            made[name] = model, path
        return made[name]
    return get


def test_registered():
    assert {"resnet50", "mobilenetv2"} <= set(list_models())
    for name in FAMILIES:
        e = get_model(name)
        assert (e.outputs, e.input_size, e.num_classes, e.default_dataset,
                e.representative_size) == ("logits", 224, 1000, "imagenet", 500)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_entry_computes_keras_applications_on_its_preprocessing(tf, reference, name):
    """entry.preprocess + entry model == keras preprocess_input + original model."""
    import keras
    entry = get_model(name)
    module = getattr(keras.applications, FAMILIES[name][1])
    ref_model, path = reference(name)
    saved = path.read_bytes()
    model = entry.build(batch_size=None)
    entry.load_weights(path, model)

    images = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    ref = logits(ref_model, module.preprocess_input(images.astype(np.float32)))
    got = logits(model, entry.preprocess(images))
    scale = float(np.abs(ref).max())
    assert scale > 0
    print(f"{name}: logit scale {scale:.3g}, max |diff| {np.abs(got - ref).max():.3g}")
    assert np.abs(got - ref).max() <= 1e-3 * scale

    if name == "resnet50":
        # The flip is what makes RGB input right: undo it and the logits move.
        from benchmark.models.imagenet import flip_first_conv
        flip_first_conv(model)
        unflipped = logits(model, entry.preprocess(images))
        print(f"unflipped max |diff| {np.abs(unflipped - ref).max():.3g}")
        assert np.abs(unflipped - ref).max() > 1e-2 * scale
    # The weights file itself is never changed by loading.
    assert path.read_bytes() == saved


@pytest.mark.slow
def test_legacy_h5_like_keras_distributes(tf, reference, tmp_path):
    """A Keras-2-style ``.h5`` (what Keras' own weights downloads are) loads too."""
    ref_model, _ = reference("mobilenetv2")
    path = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
    _save_legacy_h5(ref_model, path)
    entry = get_model("mobilenetv2")
    model = entry.build()
    entry.load_weights(path, model)
    for a, b in zip(model.get_weights(), ref_model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_keras_model_file(tf, reference, tmp_path):
    """A whole ``.keras`` model of the architecture: its weights are used (and flipped)."""
    ref_model, _ = reference("resnet50")
    path = tmp_path / "resnet50.keras"
    ref_model.save(path)
    entry = get_model("resnet50")
    model = entry.build()
    entry.load_weights(path, model)
    k = ref_model.get_layer("conv1_conv").get_weights()[0]
    np.testing.assert_array_equal(model.get_layer("conv1_conv").get_weights()[0],
                                  k[:, :, ::-1, :])
    np.testing.assert_array_equal(model.get_layer("predictions").get_weights()[0],
                                  ref_model.get_layer("predictions").get_weights()[0])


def _save_legacy_h5(model, path) -> None:
    """Write ``model``'s weights in the Keras 2 HDF5 layout (``layer_names``/``weight_names``)."""
    import h5py
    with h5py.File(path, "w") as f:
        layers = list(model.layers)
        f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in layers:
            g = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            g.attrs["weight_names"] = [n.encode() for n in names]
            for n, value in zip(names, layer.get_weights()):
                g.create_dataset(n, data=value)


def _one_line_error(entry, path, model, match: str) -> str:
    with pytest.raises(DataError, match=match) as e:
        entry.load_weights(path, model)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.slow
def test_weights_errors(tf, reference, tmp_path):
    entry = get_model("mobilenetv2")
    model = entry.build()
    _one_line_error(entry, tmp_path / "nope.h5", model, "weights file not found: .*nope.h5")
    (tmp_path / "w.npz").write_bytes(b"x")
    _one_line_error(entry, tmp_path / "w.npz", model, r"must be a Keras \.h5, \.weights\.h5 "
                    r"or \.keras file .*mobilenet_v2_weights_tf_dim_ordering.*got w\.npz")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    _one_line_error(entry, tmp_path / "junk.keras", model, r"cannot read .*junk\.keras: not a "
                    r"\.keras \(zip\) file")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    _one_line_error(entry, tmp_path / "junk.h5", model, "cannot read weights .*junk.h5: not an "
                    "HDF5 file")

    # Another architecture (ResNet50 holds different layers).
    _, other = reference("resnet50")      # resnet50.weights.h5
    msg = _one_line_error(entry, other, model, "resnet50.weights.h5 does not fit mobilenetv2 "
                          "with 1000 classes")
    assert "not _notop" in msg
    # The same architecture with another class count, and the _notop weights.
    ten = tmp_path / "mnv2_10.weights.h5"
    original("mobilenetv2", seed=1, classes=10).save_weights(ten)
    _one_line_error(entry, ten, model, "mnv2_10.weights.h5 does not fit mobilenetv2 with 1000 "
                    "classes")
    notop = tmp_path / "notop.h5"
    _save_legacy_h5(original("mobilenetv2", seed=1, include_top=False), notop)
    _one_line_error(entry, notop, model, "notop.h5 does not fit mobilenetv2 .*Layer count "
                    "mismatch")
    # Keras 3 weights under a plain .h5 name, Keras 2 weights under .weights.h5.
    renamed = tmp_path / "renamed.h5"
    renamed.write_bytes(ten.read_bytes())
    _one_line_error(entry, renamed, model, "holds Keras 3 weights: rename it to end in "
                    r"\.weights\.h5")
    legacy = tmp_path / "legacy.weights.h5"
    legacy.write_bytes(notop.read_bytes())
    _one_line_error(entry, legacy, model, r"holds Keras 2 \.h5 weights but is named "
                    r"\.weights\.h5")


def test_preprocessing_is_keras_mode():
    x = np.array([[[[0, 128, 255]]]], np.uint8)
    np.testing.assert_allclose(get_model("mobilenetv2").preprocess(x),
                               [[[[-1, 128 / 127.5 - 1, 1]]]], atol=1e-6)
    # caffe: BGR means (103.939, 116.779, 123.68), applied here in RGB order
    np.testing.assert_allclose(get_model("resnet50").preprocess(x),
                               [[[[-123.68, 128 - 116.779, 255 - 103.939]]]], atol=1e-4)
