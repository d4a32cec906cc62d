"""Your own model, end to end: .tflite pairs, int8-only, slots checked by tensor type, declared
preprocessing, output kind, classes by name, stale artifacts (docs/own-model.md).

The fast tests use the shipped SignNet .tflite files as "a user's model" (copied into
tmp_path with a labels file) and small generated image folders; the slow one converts a
Keras MobileNetV2 the harness has never seen.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmark.errors import DataError
from conftest import ROOT, SHARED, load_predictions, read_results, run_cli

SIGNNET = ROOT / "models" / "signnet" / "verification"
FAST = ["--workers", "1", "--num-threads", "1", "--no-report", "--quiet"]


def _names() -> list[str]:
    return json.loads((SIGNNET / "train_meta.json").read_text())["class_names"]


def make_images(root, classes, *, train=4, test=3, size=40, seed=0):
    """``root/{train,test}/<class>/NNN.png``: seeded noise around one colour per class."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for ci, c in enumerate(classes):
        base = rng.integers(0, 256, 3)
        for part, n in (("train", train), ("test", test)):
            d = root / part / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = np.clip(base + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(a).save(d / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The shipped SignNet float/int8 .tflite with a labels.txt, in a folder of their own."""
    d = tmp_path_factory.mktemp("pair")
    for v in ("float", "int8"):
        shutil.copy(SIGNNET / f"signnet_{v}.tflite", d / f"signnet_{v}.tflite")
    (d / "labels.txt").write_text("\n".join(_names()) + "\n")
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three of SignNet's classes, named as a user would (case, spaces, hyphens differ)."""
    return make_images(tmp_path_factory.mktemp("data"),
                       ["crosswalk", "Speedlimit 30", "give-way line"])


def _run(env, *args):
    return run_cli("benchmark.run", *args, *FAST, env=env)


def _one_line_error(r, code: int, *needles: str) -> str:
    assert r.returncode == code, (r.returncode, r.stderr[-1500:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    err = [ln for ln in lines if ln.startswith("benchmark.run: error: ")]
    assert len(err) == 1 and err[0] == lines[-1], r.stderr[-1500:]
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def test_tflite_pair_end_to_end(pair, data, env, tmp_path):
    out = tmp_path / "run"
    r = _run(env, "--float-model", pair / "signnet_float.tflite", "--int8-model",
             pair / "signnet_int8.tflite", "--data-dir", data, "--preprocess", "unit",
             "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    res = read_results(out)
    assert set(res["variants"]) == {"float", "int8"}
    assert res["variants"]["int8"]["reference"] == "float"
    assert "agreement" in res and "swaps" in res
    names = _names()
    cm = res["class_map"]
    assert cm["mode"] == "subset" and cm["model_classes"] == 30 and cm["data_classes"] == 3
    by_name = {"crosswalk": "CROSSWALK", "give-way line": "GIVE_WAY_LINE",
               "Speedlimit 30": "SPEEDLIMIT30"}
    data_names = json.loads(json.dumps(res["dataset_meta"]["class_names"]))
    want = [names.index(by_name[n]) for n in data_names]
    assert cm["data_to_model"] == want
    assert res["class_names"] == names          # outputs are the model's classes
    labels = load_predictions(out, "int8")["labels"]
    assert set(np.unique(labels)) == set(want) and labels.size == 9
    assert res["outputs"] == {"kind": "probabilities", "from": "graph: ends in SOFTMAX",
                              "graph": "probabilities"}
    pre = res["preprocessing"]
    assert (pre["input_size"], pre["source"], pre["channel_order"]) == (80, "flags", "rgb")
    assert pre["scale"] == pytest.approx(1 / 255)
    files = res["model_source"]["files"]
    assert set(files) == {"float", "int8"} and len(files["int8"]["sha256"]) == 64


def test_folder_holding_the_pair_and_model_toml(pair, data, env, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(pair, d)
    (d / "model.toml").write_text('preset = "unit"\noutputs = "probabilities"\n')
    out = tmp_path / "run"
    r = _run(env, "--model", d, "--data-dir", data, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    res = read_results(out)
    assert set(res["variants"]) == {"float", "int8"}
    assert res["preprocessing"]["source"] == str(d / "model.toml")
    assert res["outputs"]["from"] == str(d / "model.toml")


def test_int8_only_model_evaluated_on_its_own(pair, data, env, tmp_path):
    out = tmp_path / "run"
    r = _run(env, "--model", pair / "signnet_int8.tflite", "--data-dir", data,
             "--preprocess", "unit", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    res = read_results(out)
    assert list(res["variants"]) == ["int8"]
    v = res["variants"]["int8"]
    assert v["reference"] is None
    assert {"accuracy", "calibration", "mean_normalized_entropy"} <= set(v)
    assert "agreement" not in res and "swaps" not in res     # absent, not faked


def test_float_model_in_the_int8_slot_is_refused(pair, data, env):
    r = _run(env, "--float-model", pair / "signnet_float.tflite", "--int8-model",
             pair / "signnet_float.tflite", "--data-dir", data, "--preprocess", "unit")
    _one_line_error(r, 3, "(--int8-model) is in the int8 slot but is not an 8-bit model "
                          "(input FLOAT32, weights FLOAT32)")


def test_int8_model_in_the_float_slot_is_refused(pair, data, env):
    r = _run(env, "--float-model", pair / "signnet_int8.tflite", "--data-dir", data,
             "--preprocess", "unit")
    _one_line_error(r, 3, "is in the float slot but is not a float model (input UINT8, "
                          "weights INT8)")


def test_registered_int8_slot_checked_by_tensor_type(data, env, tmp_path):
    """A float model saved under the int8 file name of a registered model: refused."""
    d = tmp_path / "models" / "signnet" / "verification"
    shutil.copytree(SIGNNET, d)
    shutil.copy(SIGNNET / "signnet_float.tflite", d / "signnet_int8.tflite")
    r = _run(env, "--model-dir", tmp_path / "models", "--synth-sessions", "4",
             "--synth-per-class", "1")
    _one_line_error(r, 3, "signnet_int8.tflite is in the int8 slot but is not an 8-bit model")


def _logits_model(path):
    """SignNet's float graph without its final SOFTMAX: it outputs logits."""
    from benchmark.tflite_graph import pack_model, unpack_model
    m, _ = unpack_model(SIGNNET / "signnet_float.tflite")
    g = m.subgraphs[0]
    g.outputs = [int(g.operators[-1].inputs[0])]
    g.operators = g.operators[:-1]
    path.write_bytes(pack_model(m))
    return path


def test_logits_claimed_as_probabilities(pair, data, env, tmp_path):
    model = _logits_model(tmp_path / "logits.tflite")
    r = _run(env, "--float-model", model, "--model-labels", pair / "labels.txt",
             "--data-dir", data, "--preprocess", "unit", "--outputs", "probabilities")
    _one_line_error(r, 3, "outputs are not probabilities (", "rows have negative values",
                    "pass --outputs logits")


def test_logits_detected_from_the_graph(pair, data, env, tmp_path):
    model = _logits_model(tmp_path / "logits.tflite")
    out = tmp_path / "run"
    r = _run(env, "--float-model", model, "--model-labels", pair / "labels.txt",
             "--data-dir", data, "--preprocess", "unit", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    res = read_results(out)
    assert res["outputs"]["kind"] == "logits" and res["outputs"]["graph"] == "logits"
    probs = load_predictions(out, "float")["probs"]
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)   # softmax applied
    # the same argmax as the original softmax model
    ref = tmp_path / "ref"
    r = _run(env, "--float-model", pair / "signnet_float.tflite", "--data-dir", data,
             "--preprocess", "unit", "--out", ref)
    assert r.returncode == 0, r.stderr[-2000:]
    np.testing.assert_allclose(load_predictions(ref, "float")["probs"], probs, atol=1e-5)


def test_logits_declared_for_a_softmax_graph(pair, data, env):
    r = _run(env, "--model", pair / "signnet_float.tflite", "--data-dir", data,
             "--preprocess", "unit", "--outputs", "logits")
    _one_line_error(r, 3, "--outputs: logits declared, but the graph of signnet ends in "
                          "SOFTMAX")


def test_class_name_mismatch_refused_then_mapped(pair, data, env, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(data, d)
    make_images(d, ["giraffe"], seed=3)
    r = _run(env, "--model", pair / "signnet_int8.tflite", "--data-dir", d,
             "--preprocess", "unit")
    _one_line_error(r, 3, "class names of the model (", "and the data do not match",
                    "1 of 4 data classes are not model classes ('giraffe')",
                    "--class-map auto evaluates the 3 shared classes only")
    out = tmp_path / "run"
    r = _run(env, "--model", pair / "signnet_int8.tflite", "--data-dir", d,
             "--preprocess", "unit", "--class-map", "auto", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    cm = read_results(out)["class_map"]
    assert cm["mode"] == "partial" and cm["evaluated_classes"] == 3
    assert cm["dropped"] == {"giraffe": 3} and cm["dropped_images"] == 3
    assert load_predictions(out, "int8")["labels"].size == 9


def test_class_map_file(pair, data, env, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(data, d)
    shutil.move(d / "test" / "crosswalk", d / "test" / "zebra")
    shutil.move(d / "train" / "crosswalk", d / "train" / "zebra")
    cmap = tmp_path / "map.toml"
    cmap.write_text('[classes]\nzebra = "CROSSWALK"\n')
    out = tmp_path / "run"
    r = _run(env, "--model", pair / "signnet_int8.tflite", "--data-dir", d,
             "--preprocess", "unit", "--class-map", cmap, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    cm = read_results(out)["class_map"]
    assert cm["mode"] == "subset" and cm["how"] == "by map.toml and by name"
    assert cm["data_to_model"][-1] == _names().index("CROSSWALK")   # zebra sorts last


def test_model_without_class_names(pair, data, env, tmp_path):
    shutil.copy(pair / "signnet_int8.tflite", tmp_path / "m.tflite")
    r = _run(env, "--model", tmp_path / "m.tflite", "--data-dir", data, "--preprocess", "unit")
    _one_line_error(r, 2, "has no class names", "--model-labels FILE", "--class-map positional")


def test_preprocessing_must_be_declared(pair, data, env):
    r = _run(env, "--model", pair / "signnet_int8.tflite", "--data-dir", data)
    _one_line_error(r, 2, "declare how its inputs are made: --preprocess")


def test_bgr_is_the_channel_reversed_image(pair, data, env, tmp_path):
    """--channel-order bgr on the images == rgb on channel-reversed copies of them."""
    from PIL import Image
    flipped = tmp_path / "flipped"
    for p in sorted(data.rglob("*.png")):
        q = flipped / p.relative_to(data)
        q.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(Image.open(p))[..., ::-1].copy()).save(q)
    runs = {}
    for name, d, order in (("bgr", data, "bgr"), ("rgb", flipped, "rgb")):
        out = tmp_path / name
        r = _run(env, "--model", pair / "signnet_int8.tflite", "--data-dir", d,
                 "--preprocess", "unit", "--channel-order", order, "--out", out)
        assert r.returncode == 0, r.stderr[-2000:]
        runs[name] = load_predictions(out, "int8")["probs"]
    np.testing.assert_array_equal(runs["bgr"], runs["rgb"])
    assert not np.array_equal(runs["bgr"], load_predictions(
        _rgb_run(pair, data, env, tmp_path), "int8")["probs"])


def _rgb_run(pair, data, env, tmp_path):
    out = tmp_path / "plain"
    r = _run(env, "--model", pair / "signnet_int8.tflite", "--data-dir", data,
             "--preprocess", "unit", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def _stale_models(tmp_path):
    from benchmark.results import file_sha256
    d = tmp_path / "models" / "signnet" / "verification"
    shutil.copytree(SIGNNET, d)
    meta = json.loads((d / "convert_meta.json").read_text())
    meta["keras_sha256"] = file_sha256(d / "signnet.keras")
    (d / "convert_meta.json").write_text(json.dumps(meta))
    return d


def test_stale_artifacts_refused(env, tmp_path):
    from benchmark.config import make_config
    from benchmark.plan import plan_run
    d = _stale_models(tmp_path)
    args = {"model_dir": str(tmp_path / "models"), "out": str(tmp_path / "out"),
            "dataset_options": {"n_sessions": 4, "per_class_per_session": 1}}
    plan_run(make_config(args))                        # fresh: planned
    with open(d / "signnet.keras", "ab") as f:         # "retrained": the .keras changed
        f.write(b"\0")
    r = _run(env, "--model-dir", tmp_path / "models", "--synth-sessions", "4",
             "--synth-per-class", "1")
    _one_line_error(r, 3, f"{d / 'signnet.keras'} changed since it was converted",
                    "its .tflite files are stale; re-convert: python -m benchmark.convert "
                    f"--model signnet --split verification --model-dir {tmp_path / 'models'}")


def test_compiled_model_needs_the_edge_tpu(env, data, tmp_path):
    src = SHARED / "edgetpu" / "pairs" / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    if not src.is_file():
        pytest.skip(f"{src} not present")
    shutil.copy(src, tmp_path / "m_edgetpu.tflite")
    r = _run(env, "--model", tmp_path / "m_edgetpu.tflite", "--data-dir", data,
             "--preprocess", "unit", "--class-map", "positional")
    _one_line_error(r, 2, "is compiled for the Edge TPU: run it with --device edgetpu")


def test_own_int8_and_compiled_models_on_a_fake_edge_tpu(monkeypatch, pair, data, tmp_path):
    """--int8-model Q --edgetpu-model E --device edgetpu: CPU vs Edge TPU, no float."""
    from benchmark.config import make_config
    from benchmark.run import run
    from edgetpu_fakes import compiled_models, use_fake_edgetpu
    use_fake_edgetpu(monkeypatch)
    d = compiled_models(tmp_path) / "signnet" / "verification"
    cfg = make_config({"int8_model": str(d / "signnet_int8.tflite"),
                       "edgetpu_model": str(d / "signnet_int8_edgetpu.tflite"),
                       "model_labels": str(pair / "labels.txt"), "device": "edgetpu",
                       "data_dir": str(data), "preprocessing": {"preset": "unit"},
                       "out": str(tmp_path / "run"), "report": False})
    out, _ = run(cfg, quiet=True, tables=False)
    res = read_results(out)
    assert list(res["variants"]) == ["int8", "int8-edgetpu"]
    assert res["variants"]["int8-edgetpu"]["reference"] == "int8"
    assert res["attribution"]["quantization_delta"] is None          # no float: absent
    assert res["attribution"]["int8_cpu_vs_edgetpu"]["top1"] == 1.0
    assert set(res["model_source"]["files"]) == {"int8", "compiled"}
    with pytest.raises(DataError, match="is in the compiled slot but is not compiled"):
        run(make_config({"int8_model": str(d / "signnet_int8.tflite"),
                         "edgetpu_model": str(d / "signnet_int8.tflite"),
                         "device": "edgetpu", "data_dir": str(data),
                         "preprocessing": {"preset": "unit"}, "out": str(tmp_path / "r2")}),
            quiet=True)


def test_refusals_of_mixed_or_missing_variants(pair, data, env):
    r = _run(env, "--model", "resnet20", "--int8-model", pair / "signnet_int8.tflite",
             "--data-dir", data, "--preprocess", "unit")
    _one_line_error(r, 2, "--model resnet20 is a registered model: give either it or your own")
    r = _run(env, "--model", pair / "signnet_int8.tflite", "--variants", "float",
             "--data-dir", data, "--preprocess", "unit")
    _one_line_error(r, 3, "--variants float: the model has no float .tflite (give --float-model)")
    r = _run(env, "--model", "signnet", "--preprocess", "unit")
    _one_line_error(r, 2, "preprocessing preset: for a model given by path; signnet is "
                          "registered and declares its own")
