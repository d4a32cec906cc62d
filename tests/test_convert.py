"""Conversion graph checks on models the tests build (needs TensorFlow)."""

import numpy as np
import pytest

from benchmark.convert import check_float_graph, check_int8_graph, to_tflite
from benchmark.models.registry import get_model
from benchmark.tflite_graph import read_graph

pytestmark = pytest.mark.slow


def _small_signnet(batch_size, relu_before_pool=False):
    return get_model("signnet").build(num_classes=5, input_size=32, batch_size=batch_size,
                                      filters=(4, 4, 8, 8), dense_units=8,
                                      relu_before_pool=relu_before_pool)


@pytest.fixture(scope="module")
def rep():
    return np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def converted(tf, rep):
    """A batch-1 SignNet (ReLU before pooling) and its float and uint8 .tflite, each
    converted on its own (no shared export): for the graph checks and the byte comparison."""
    import keras
    keras.utils.set_random_seed(0)
    model = _small_signnet(1, relu_before_pool=True)
    return model, to_tflite(tf, model), to_tflite(tf, model, rep, "uint8")


def test_fixed_batch_int8_graph_is_clean(converted):
    g = read_graph(converted[2])
    assert check_int8_graph(g) == []
    assert set(g.op_names) <= {"QUANTIZE", "CONV_2D", "MAX_POOL_2D", "RESHAPE",
                               "FULLY_CONNECTED", "SOFTMAX"}
    assert g.input_tensors()[0].dtype == "UINT8" and g.output_tensors()[0].dtype == "UINT8"
    assert g.input_tensors()[0].shape == (1, 32, 32, 3)
    # ReLU is fused into the convolutions, not into MAX_POOL_2D (unsupported on the Edge TPU)
    assert all(op.fused_activation is None for op in g.operators if op.name == "MAX_POOL_2D")
    assert [op.fused_activation for op in g.operators if op.name == "CONV_2D"] == ["RELU"] * 4


def test_int8_io_type_flag(tf, rep):
    g = read_graph(to_tflite(tf, _small_signnet(1), rep, "int8"))
    assert g.input_tensors()[0].dtype == "INT8" and g.output_tensors()[0].dtype == "INT8"
    assert check_int8_graph(g) == []


def test_dynamic_batch_is_caught(tf, rep):
    g = read_graph(to_tflite(tf, _small_signnet(None), rep, "uint8"))
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(g.op_names)
    problems = check_int8_graph(g)
    assert any("dynamic-batch ops present: PACK, SHAPE, STRIDED_SLICE" in p for p in problems)
    assert check_float_graph(read_graph(to_tflite(tf, _small_signnet(None)))) != []


def test_float_model_fails_int8_checks(converted):
    g = read_graph(converted[1])
    assert check_float_graph(g) == []
    problems = check_int8_graph(g)
    assert any("FLOAT32, not quantized 8-bit" in p for p in problems)


def test_relu_order_is_the_same_function(tf, rep):
    import keras
    keras.utils.set_random_seed(1)
    a = _small_signnet(1)
    b = _small_signnet(1, relu_before_pool=True)
    b.set_weights(a.get_weights())
    np.testing.assert_allclose(a.predict(rep[:2], verbose=0, batch_size=1),
                               b.predict(rep[:2], verbose=0, batch_size=1), atol=1e-6)


@pytest.mark.parametrize("io_type", ["uint8", "int8", None])
def test_lookup_table_input_path_equals_direct_path(tf, rep, tmp_path, io_type):
    """LiteRT backend: tabulated preprocessing gives the same outputs as the float path."""
    from benchmark.preprocess import PixelTransform
    from benchmark.backends.litert_cpu import LiteRTCPUBackend
    import keras
    keras.utils.set_random_seed(2)
    model = _small_signnet(1)
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(tf, model, rep if io_type else None, io_type or "uint8"))
    b = LiteRTCPUBackend(path, num_threads=1)
    imgs = np.random.default_rng(3).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    for t in (PixelTransform(), PixelTransform(mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.3))):
        np.testing.assert_array_equal(b.predict_images(imgs, t), b.predict(t(imgs)))


def test_keras_backend_matches_the_float_tflite(tf, tmp_path):
    """The trained Keras model and its float .tflite agree on the shipped model."""
    from benchmark.backends import make_backend
    from benchmark.preprocess import PixelTransform
    from conftest import ROOT
    art = ROOT / "models" / "signnet" / "verification"
    imgs = np.random.default_rng(0).integers(0, 256, (4, 80, 80, 3), dtype=np.uint8)
    k = make_backend("keras", art / "signnet.keras")
    t = make_backend("cpu", art / "signnet_float.tflite", num_threads=1)
    np.testing.assert_allclose(k.predict_images(imgs, PixelTransform()),
                               t.predict_images(imgs, PixelTransform()), atol=1e-5)
    assert k.info()["backend"] == "keras-float"


def test_convert_writes_the_dataset_cache_into_cache_dir(tf, tmp_path):
    """``benchmark.convert --cache-dir``: the calibration data is rendered there, not in the repo.

    The model is the untrained SignNet (same graph as a trained one, no training cost).
    """
    import keras

    from benchmark import convert
    from benchmark.artifacts import TrainMeta, read_convert_meta
    from benchmark.datasets.carolo_synth import CLASS_NAMES
    from benchmark.results import write_json

    entry = get_model("signnet")
    art = entry.artifact_dir("verification", tmp_path / "models")
    art.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    entry.build(num_classes=30).save(art / "signnet.keras")
    write_json(art / "train_meta.json", TrainMeta(
        model="signnet", dataset="carolo-synth", split="verification", dataset_meta={},
        dataset_options={"n_sessions": 4, "per_class_per_session": 1}, data_dir=None,
        num_classes=30, class_names=list(CLASS_NAMES), input_size=entry.input_size,
        preprocessing=entry.preprocess.describe(), n_train=90, n_eval=30, seed=0,
        data_seed=0, hyperparameters={}, train_seconds=0.0, environment={}).to_json())
    assert convert.main(["--split", "verification", "--model-dir", str(tmp_path / "models"),
                         "--representative-size", "10", "--cache-dir",
                         str(tmp_path / "cache")]) == 0
    [cached] = list((tmp_path / "cache").iterdir())
    assert (cached / "images.npy").is_file()
    meta = read_convert_meta(art / "convert_meta.json")
    assert meta.representative_size == 10 and set(meta.variants) == {"float", "int8"}
    assert (art / "signnet_int8.tflite").is_file()


def test_shared_export_gives_the_same_bytes_and_exports_once(tf, rep, converted, monkeypatch):
    """One SavedModel export for the float and int8 conversions, byte-identical .tflite."""
    from benchmark.convert import SavedModelExport
    model, *fresh = converted          # each exported on its own
    from tensorflow.lite.python import lite
    writes = []
    base = lite.TFLiteKerasModelConverterV2
    real = base._convert_keras_to_saved_model
    monkeypatch.setattr(base, "_convert_keras_to_saved_model",
                        lambda self, path: (writes.append(path), real(self, path))[1])
    with SavedModelExport() as saved:
        shared = [to_tflite(tf, model, export=saved),
                  to_tflite(tf, model, rep, "uint8", export=saved)]
        export_dir = saved.dir
        assert (export_dir / "saved_model.pb").is_file()
    assert shared == fresh
    assert writes == [str(export_dir)]  # exported once, into the shared directory
    assert not export_dir.exists()


def test_export_check_by_direct_calls(tf, rep):
    import keras
    from benchmark.convert import check_export
    from benchmark.errors import DataError
    keras.utils.set_random_seed(5)
    trained = _small_signnet(None)
    export = _small_signnet(1)
    export.set_weights(trained.get_weights())
    assert check_export(trained, export, rep) < 1e-5
    other = _small_signnet(1)
    with pytest.raises(DataError, match="export model differs"):
        check_export(trained, other, rep)
