"""End-to-end: train, convert and evaluate a tiny SignNet; every number recomputable."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from benchmark.metrics import (agreement, classification_summary, confusion_matrix,
                               per_class_report)
from benchmark.metrics.calibration import calibration_summary, negative_log_likelihood
from benchmark.metrics.swaps import swap_summary
from benchmark.rundir import metrics_rows, read_run
from conftest import ROOT, load_predictions, read_results, run_cli

TINY = ["--synth-sessions", "4", "--synth-per-class", "3"]


@pytest.fixture(scope="module")
def tiny_models(tf, tmp_path_factory, env):
    """A tiny SignNet trained (2 epochs) and converted for both splits."""
    root = tmp_path_factory.mktemp("models")
    for split in ("full", "verification"):
        r = run_cli("benchmark.train", "--split", split, *TINY, "--epochs", "2",
                    "--model-dir", root, env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        r = run_cli("benchmark.convert", "--split", split, "--model-dir", root,
                    "--representative-size", "20", env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "int8: 14 ops: QUANTIZE x2, CONV_2D x4, MAX_POOL_2D x4, RESHAPE, " \
               "FULLY_CONNECTED x2, SOFTMAX" in r.stdout
    return root


def _same(a, b) -> bool:
    """Deep equality where NaN equals NaN (a ratio is NaN when nothing swapped)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


def _check_run_dir(d, split, variants=("float", "int8")):
    res = read_results(d)
    assert res["split"] == split
    assert set(res["variants"]) == set(variants)
    k = len(res["class_names"])
    preds = {}
    for v in variants:
        p = load_predictions(d, v)
        assert p["probs"].dtype == np.float32 and p["probs"].shape == (res["n_eval"], k)
        m = res["variants"][v]
        # every number in results.json is recomputed from the predictions file
        again = classification_summary(p["probs"], p["labels"], bins=20)
        for key, val in again.items():
            assert m[key] == pytest.approx(val, nan_ok=True) if not isinstance(val, dict) \
                else m[key] == val, key
        cal = dict(m["calibration"])
        floor, zeros = cal.pop("nll_floor"), cal.pop("nll_zero_true")
        p_true = p["probs"][np.arange(p["labels"].size), p["labels"]]
        assert zeros == int(np.sum(p_true == 0))
        # int8 outputs: p floored at half the output step (1/256 for the softmax), not 1e-12
        assert floor == (1e-12 if v == "float" else 1 / 512)
        ref = calibration_summary(p["probs"], p["labels"], n_bins=15)
        ref["nll"] = negative_log_likelihood(p["probs"], p["labels"], eps=floor)
        assert cal == ref
        assert m["per_class"] == per_class_report(p["labels"], p["probs"].argmax(1),
                                                  num_classes=k)
        cm = confusion_matrix(p["labels"], p["probs"].argmax(1), num_classes=k)
        np.testing.assert_array_equal(cm, read_run(d).splits[split].confusion(v))
        preds[v] = p
    if len(variants) == 2:
        np.testing.assert_array_equal(preds["float"]["index"], preds["int8"]["index"])
        assert res["agreement"]["top1"] == agreement(preds["float"]["probs"].argmax(1),
                                                     preds["int8"]["probs"].argmax(1))
        again = swap_summary(preds["float"]["probs"], preds["int8"]["probs"],
                             preds["int8"]["labels"], bins=10, n_boot=1000,
                             seed=res["config"]["seed"])
        stored = dict(res["swaps"]["int8"])
        assert stored.pop("agreement_with_float") == res["agreement"]["top1"]
        assert _same(json.loads(json.dumps(again)), stored)
    lines = (d / "metrics.csv").read_text().splitlines()
    assert lines[0] == "split,variant,metric,value"
    # metrics.csv is the records flattened, nothing else
    assert list(csv.reader(lines[1:])) == [[str(x) for x in r] for r in metrics_rows(res)]
    return res


@pytest.mark.slow
def test_end_to_end_on_tiny_models(tiny_models, tmp_path, env):
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--model-dir", tiny_models, "--split", "all", "--limit", "50",
                "--out", out, env=env)
    assert r.returncode == 0, r.stderr
    assert "accuracy (95 % CI)" in r.stdout and "full" in r.stdout
    top = read_results(out)
    assert top["splits"] == {"full": "full/results.json",
                             "verification": "verification/results.json"}
    assert top["environment"]["packages"]["numpy"]
    for split in ("full", "verification"):
        res = _check_run_dir(out / split, split)
        assert res["n_eval"] == 50
        assert res["variants"]["int8"]["runtime"]["runtime"] == "ai_edge_litert"
    rows = (out / "metrics.csv").read_text().splitlines()
    assert any(r.startswith("full,int8,accuracy,") for r in rows)
    assert any(r.startswith("verification,float,accuracy,") for r in rows)


@pytest.mark.slow
def test_same_command_twice_gives_the_same_metrics(tiny_models, tmp_path, env):
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        # --no-prediction-cache: the second run must compute, not reuse, its predictions
        r = run_cli("benchmark.run", "--model-dir", tiny_models, "--split", "verification",
                    "--limit", "40", "--out", out, "--quiet", "--no-prediction-cache", env=env)
        assert r.returncode == 0, r.stderr
        outs.append(out)
    assert (outs[0] / "metrics.csv").read_bytes() == (outs[1] / "metrics.csv").read_bytes()
    for v in ("float", "int8"):
        a, b = (load_predictions(o, v) for o in outs)
        np.testing.assert_array_equal(a["probs"], b["probs"])


@pytest.mark.slow
def test_training_is_deterministic(tf, tiny_models, tmp_path, env, monkeypatch):
    # The same command again, in this process (TensorFlow is loaded already; the fixture's
    # training ran in a subprocess of its own): the weights must not depend on the process.
    from benchmark import train
    from benchmark.cli import main_wrapper
    monkeypatch.setenv("EDGETPU_BENCH_CACHE", env["EDGETPU_BENCH_CACHE"])
    code = main_wrapper("benchmark.train", train.main,
                        ["--split", "verification", *TINY, "--epochs", "2",
                         "--model-dir", str(tmp_path)])
    art = tmp_path / "signnet" / "verification"
    assert code == 0
    import keras
    a = keras.models.load_model(art / "signnet.keras", compile=False).get_weights()
    b = keras.models.load_model(tiny_models / "signnet" / "verification" / "signnet.keras",
                                compile=False).get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_shipped_models_evaluate_and_recompute(tmp_path):
    """The shipped artifacts run without TensorFlow on a subset of the default dataset."""
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--split", "verification", "--limit", "120", "--out", out,
                "--quiet")
    assert r.returncode == 0, r.stderr
    res = _check_run_dir(out, "verification")
    assert res["variants"]["float"]["accuracy"] >= 0.9


@pytest.mark.parametrize("split", ["full", "verification"])
def test_shipped_int8_graph(split):
    from benchmark.convert import check_int8_graph
    from benchmark.tflite_graph import read_graph
    g = read_graph(ROOT / "models" / "signnet" / split / "signnet_int8.tflite")
    assert check_int8_graph(g) == []
    assert set(g.op_names) <= {"QUANTIZE", "CONV_2D", "MAX_POOL_2D", "RESHAPE",
                               "FULLY_CONNECTED", "SOFTMAX"}
    for t in g.input_tensors() + g.output_tensors():
        assert t.dtype == "UINT8" and t.shape[0] == 1
    rep = json.loads((ROOT / "models" / "signnet" / split / "representative_indices.json")
                     .read_text())
    assert rep["split"] == split and len(rep["indices"]) == rep["size"] > 0


def test_edgetpu_missing_is_one_line(tmp_path):
    r = run_cli("benchmark.run", "--device", "edgetpu", "--split", "verification",
                "--out", tmp_path / "run")
    assert r.returncode == 4
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "libedgetpu.so.1 is not installed" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message, code", [
    (["--split", "bogus"], "invalid choice: 'bogus'", 2),
    (["--variants", "float,fp16"], "--variants must be a comma list", 2),
    (["--limit", "0"], "--limit must be >= 1", 2),
    (["--model", "nope"], "unknown model 'nope'", 2),
    (["--model-dir", "/nonexistent"], "no trained signnet for split 'verification'", 3),
])
def test_bad_input_is_one_line(args, message, code):
    r = run_cli("benchmark.run", *args)
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr
    assert message in r.stderr


def test_config_file_and_cli_precedence(tmp_path):
    from benchmark.config import make_config
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('split = "full"\nlimit = 10\nvariants = ["int8"]\n')
    cfg = make_config({"limit": 5}, str(cfg_file))
    assert (cfg.split, cfg.limit, cfg.variants) == ("full", 5, ("int8",))
    bad = tmp_path / "bad.json"
    bad.write_text('{"splt": "full"}')
    r = run_cli("benchmark.run", "--config", bad)
    assert r.returncode == 2 and "unknown setting(s) splt" in r.stderr


def test_existing_run_is_not_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("{}")
    r = run_cli("benchmark.run", "--out", out)
    assert r.returncode == 2 and "already holds a run" in r.stderr
    assert (out / "results.json").read_text() == "{}"


@pytest.mark.slow
def test_model_card_from_a_run(tiny_models, tmp_path, env):
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--model-dir", tiny_models, "--split", "verification",
                "--limit", "30", "--out", out, "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("benchmark.modelcard", "--run", out, "--model-dir", tiny_models, env=env)
    assert r.returncode == 0, r.stderr
    card = (tiny_models / "signnet" / "verification" / "MODEL_CARD.md").read_text()
    res = read_results(out)
    acc = 100 * res["variants"]["int8"]["accuracy"]
    assert f"| int8 | {acc:.2f} % |" in card
    assert "QUANTIZE, CONV_2D, MAX_POOL_2D" in card
