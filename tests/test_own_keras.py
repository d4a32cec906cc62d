"""Keras models the harness has never seen, converted by benchmark.run itself (slow: TensorFlow).

- a Keras MobileNetV2 (alpha 0.35, 32 px, 3 classes, seeded, untrained) goes end to end:
  converted with the SignNet PTQ path, cached, evaluated float vs int8;
- a hand-weighted colour classifier whose output order (red, green, blue) differs from
  the data's folder order (blue, green, red): remapped by name it scores 100 %, scored by
  position (``--class-map positional``, the old silent behaviour) it does not;
- a SavedModel folder of the same network converts too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import load_predictions, read_results, run_cli, run_main

pytestmark = pytest.mark.slow
FAST = ["--workers", "1", "--num-threads", "1", "--no-report"]
COLOURS = {"red": (220, 20, 20), "green": (20, 220, 20), "blue": (20, 20, 220)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for c, rgb in COLOURS.items():
        for part, n in (("train", 8), ("test", 4)):
            d = root / part / c
            d.mkdir(parents=True)
            for i in range(n):
                a = np.clip(np.array(rgb) + rng.normal(0, 15, (36, 36, 3)), 0, 255)
                Image.fromarray(a.astype(np.uint8)).save(d / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def models(tf, tmp_path_factory):
    import keras
    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("keras")
    mnv2 = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                          classes=3)
    mnv2.save(d / "mnv2.keras")
    (d / "mnv2.txt").write_text("blue\ngreen\nred\n")
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Dense(3, activation="softmax")(x)
    colour = keras.Model(inp, out)
    colour.layers[-1].set_weights([np.eye(3, dtype=np.float32) * 20, np.zeros(3, np.float32)])
    colour.save(d / "colour.keras")
    (d / "colour.txt").write_text("red\ngreen\nblue\n")      # output order: R, G, B
    colour.export(str(d / "colour_sm"), verbose=False)
    (d / "colour_sm" / "labels.txt").write_text("red\ngreen\nblue\n")
    return d


def _run(env, *args):
    """benchmark.run in this process (the runs that succeed; TensorFlow imported once)."""
    return run_main("benchmark.run", *args, *FAST, env=env)


def test_keras_mobilenetv2_end_to_end(models, data, env, tmp_path):
    from benchmark.results import file_sha256
    out = tmp_path / "run"
    r = _run(env, "--model", models / "mnv2.keras", "--data-dir", data, "--preprocess",
             "signed", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "converting mnv2.keras" in r.stderr
    res = read_results(out)
    assert set(res["variants"]) == {"float", "int8"} and "swaps" in res
    assert res["class_map"]["mode"] == "identity"
    assert res["calibration_images"]["size"] == 24          # the 24 training images
    src = res["model_source"]
    assert src["kind"] == "keras" and src["source_sha256"] == file_sha256(models / "mnv2.keras")
    conv = json.loads((Path(res["model_artifacts"]) / "convert_meta.json").read_text())
    assert conv["keras_sha256"] == src["source_sha256"]
    assert res["variants"]["int8"]["model_file"].endswith("mnv2_int8.tflite")
    again = tmp_path / "again"
    r = _run(env, "--model", models / "mnv2.keras", "--data-dir", data, "--preprocess",
             "signed", "--out", again)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "using the models converted earlier" in r.stderr
    for v in ("float", "int8"):
        np.testing.assert_array_equal(load_predictions(out, v)["probs"],
                                      load_predictions(again, v)["probs"])


def test_class_order_remapped_not_scored_by_position(models, data, env, tmp_path):
    runs, logs = {}, {}
    for name, extra in (("by_name", []), ("positional", ["--class-map", "positional"])):
        out = tmp_path / name
        r = _run(env, "--model", models / "colour.keras", "--data-dir", data, "--preprocess",
                 "unit", "--out", out, *extra)
        assert r.returncode == 0, r.stderr[-3000:]
        runs[name], logs[name] = read_results(out), r.stderr
    assert "the data's 3 classes are the model's in another order: labels remapped by name" \
        in logs["by_name"]
    assert "classes by position (--class-map positional)" in logs["positional"]
    by_name, positional = runs["by_name"], runs["positional"]
    assert positional["class_map"]["mode"] == "positional"
    assert by_name["class_map"]["mode"] == "reordered"
    assert by_name["class_map"]["data_to_model"] == [2, 1, 0]   # blue, green, red -> B=2 ...
    for v in ("float", "int8"):
        assert by_name["variants"][v]["accuracy"] == 1.0
        # by position only green (index 1 in both) is right: 4 of 12
        assert positional["variants"][v]["accuracy"] == pytest.approx(1 / 3)


def test_savedmodel_folder(models, data, env, tmp_path):
    out = tmp_path / "run"
    r = _run(env, "--model", models / "colour_sm", "--data-dir", data, "--preprocess", "unit",
             "--input-size", "32", "--out", out)
    assert r.returncode == 0, r.stderr[-3000:]
    res = read_results(out)
    assert res["model_source"]["kind"] == "savedmodel"
    assert res["class_map"]["mode"] == "reordered"
    assert res["variants"]["int8"]["accuracy"] == 1.0


def test_convert_records_the_keras_it_converted(tf, env, tmp_path):
    """benchmark.convert writes keras_sha256; run accepts the fresh artifacts, refuses stale."""
    import shutil
    from benchmark.results import file_sha256
    src = Path(__file__).resolve().parent.parent / "models" / "signnet" / "verification"
    d = tmp_path / "models" / "signnet" / "verification"
    shutil.copytree(src, d)
    tiny = ["--synth-sessions", "4", "--synth-per-class", "1"]
    r = run_main("benchmark.convert", "--split", "verification", "--model-dir",
                 tmp_path / "models", "--representative-size", "20", *tiny, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    meta = json.loads((d / "convert_meta.json").read_text())
    assert meta["keras_sha256"] == file_sha256(d / "signnet.keras")
    args = ["--model-dir", tmp_path / "models", *tiny, "--limit", "10"]
    r = _run(env, *args, "--out", tmp_path / "fresh", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    with open(d / "signnet.keras", "ab") as f:
        f.write(b"retrained")
    r = run_cli("benchmark.run", *args, *FAST, env=env)     # the refusal: exit code, last line
    assert r.returncode == 3 and "changed since it was converted" in r.stderr.splitlines()[-1]
