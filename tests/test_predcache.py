"""No redundant work: byte-identical variants evaluated once, predictions cached across runs.

Every test gets its own cache directory whose dataset entries are symlinks to
the default cache's (so SignNet's images are not rendered again) and whose
``predictions/`` starts empty. Evaluations are counted by wrapping
``benchmark.evaluate.evaluate_variant``.
"""

import json
import shutil

import numpy as np
import pytest

from benchmark import evaluate, pipeline
from benchmark.config import make_config
from benchmark.predcache import SUBDIR, EvalContext, description_key
from benchmark.variants import edgetpu_variant, int8_variant
from conftest import ROOT, load_predictions, run_cli

TIMING = ("inference_seconds", "wall_seconds", "images_per_second", "cached")


@pytest.fixture
def cache(linked_cache):
    """This module's runs use the linked cache (conftest.linked_cache)."""
    return linked_cache


@pytest.fixture
def calls(evaluate_calls):
    return evaluate_calls


def _run(out, cache, **options):
    cli = dict(split="verification", limit=200, weight_bits="8,6", out=str(out),
               cache_dir=str(cache), report=False)
    cli.update(options)
    _, records = pipeline.run(make_config(cli), quiet=True, tables=False)
    return records["verification"]


def _untimed(variants: dict) -> dict:
    """Variant records without timings, the cache mark and the (run-specific) model paths."""
    return {n: {k: v for k, v in m.items() if k not in TIMING + ("model_file",)}
            for n, m in variants.items()}


def _entries(cache):
    return sorted(p.name for p in (cache / SUBDIR).iterdir()) if (cache / SUBDIR).is_dir() \
        else []


def test_w8_evaluated_once_and_second_run_reuses_everything(tmp_path, cache, calls):
    rec1 = _run(tmp_path / "a", cache)
    assert calls == ["float", "int8", "w6"]          # w8 is int8's bytes: not evaluated
    w8, int8 = rec1["variants"]["w8"], rec1["variants"]["int8"]
    assert w8["same_model_as"] == "int8" and "same_model_as" not in int8
    assert w8["kind"] == "weights" and w8["model_file"].endswith("signnet_w8.tflite")
    assert rec1["swaps"]["w8"] == rec1["swaps"]["int8"]   # still computed, and equal
    assert len(_entries(cache)) == 6                 # float, int8, w6: .npz + .json each

    del calls[:]
    rec2 = _run(tmp_path / "b", cache)
    assert calls == []                               # no backend created
    assert all(m["cached"] is True for m in rec2["variants"].values())
    assert rec2["variants"]["w8"]["same_model_as"] == "int8"
    assert _untimed(rec2["variants"]) == _untimed(rec1["variants"])
    for k in ("int8", "float", "w6"):                # the original timings, not new ones
        assert rec2["variants"][k]["inference_seconds"] == rec1["variants"][k][
            "inference_seconds"]
    assert rec2["swaps"] == rec1["swaps"]
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == \
        (tmp_path / "b" / "metrics.csv").read_bytes()
    for v in ("float", "int8", "w8", "w6"):
        assert (tmp_path / "a" / f"predictions_{v}.npz").read_bytes() == \
            (tmp_path / "b" / f"predictions_{v}.npz").read_bytes(), v
    a, b = load_predictions(tmp_path / "a", "w8"), load_predictions(tmp_path / "a", "int8")
    np.testing.assert_array_equal(a["probs"], b["probs"])


def test_no_prediction_cache_reevaluates_and_writes_nothing(tmp_path, cache, calls):
    rec1 = _run(tmp_path / "a", cache)
    before = _entries(cache)
    del calls[:]
    rec2 = _run(tmp_path / "b", cache, prediction_cache=False)
    assert calls == ["float", "int8", "w6"]
    assert not any("cached" in m for m in rec2["variants"].values())
    assert _untimed(rec2["variants"]) == _untimed(rec1["variants"])
    assert _entries(cache) == before
    shutil.rmtree(cache / SUBDIR)
    _run(tmp_path / "c", cache, prediction_cache=False)
    assert not (cache / SUBDIR).exists()


def test_changed_model_bytes_are_never_served(tmp_path, cache, calls):
    from benchmark.quant.bitsweep import requantize_weights
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "signnet", models / "signnet")
    _run(tmp_path / "a", cache, model_dir=str(models), weight_bits="6")
    int8 = models / "signnet" / "verification" / "signnet_int8.tflite"
    int8.write_bytes(requantize_weights(int8, 5))   # a valid model with other bytes
    del calls[:]
    rec = _run(tmp_path / "b", cache, model_dir=str(models), weight_bits="6")
    assert calls == ["int8", "w6"]                   # float's bytes did not change
    assert rec["variants"]["float"]["cached"] is True
    assert "cached" not in rec["variants"]["int8"]


def test_damaged_entries_are_recomputed_not_errors(tmp_path, cache, calls):
    rec1 = _run(tmp_path / "a", cache, weight_bits="")
    files = sorted((cache / SUBDIR).iterdir())
    npz = [p for p in files if p.suffix == ".npz"]
    js = [p for p in files if p.suffix == ".json"]
    assert len(npz) == len(js) == 2
    npz[0].write_bytes(npz[0].read_bytes()[:100])    # truncated archive
    js[1].write_bytes(js[1].read_bytes()[:50])       # truncated JSON
    del calls[:]
    rec2 = _run(tmp_path / "b", cache, weight_bits="")
    assert sorted(calls) == ["float", "int8"]
    assert _untimed(rec2["variants"]) == _untimed(rec1["variants"])
    del calls[:]
    _run(tmp_path / "c", cache, weight_bits="")      # rewritten by the recomputation
    assert calls == []


def test_latency_runs_are_not_served_from_the_cache(tmp_path, cache, calls):
    _run(tmp_path / "a", cache, weight_bits="")
    del calls[:]
    rec = _run(tmp_path / "b", cache, weight_bits="8", latency=2, latency_warmup=0)
    assert calls == ["float", "int8"]
    assert rec["variants"]["w8"]["same_model_as"] == "int8"
    assert rec["variants"]["w8"]["latency"] == rec["variants"]["int8"]["latency"]


def test_edge_tpu_and_unfingerprinted_data_have_no_key():
    ctx = EvalContext("abc", np.arange(5), None, False, evaluate.EvalSettings())
    assert ctx.describe(edgetpu_variant(), "0" * 64) is None
    desc = ctx.describe(int8_variant(), "0" * 64)
    assert desc["model_sha256"] == "0" * 64 and desc["dataset"] == "abc"
    other = EvalContext("abc", np.arange(1, 6), None, False, evaluate.EvalSettings())
    assert description_key(other.describe(int8_variant(), "0" * 64)) != description_key(desc)
    assert EvalContext(None, np.arange(5), None, False,
                       evaluate.EvalSettings()).describe(int8_variant(), "0" * 64) is None


def test_cli_sweep_reports_w8_under_both_names(tmp_path, cache):
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--split", "verification", "--limit", "200", "--weight-bits",
                "8,6", "--out", out, "--cache-dir", cache, "--no-report")
    assert r.returncode == 0, r.stderr
    assert "w8           is byte-identical to int8" in r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["variants"]["w8"]["same_model_as"] == "int8"
    r = run_cli("benchmark.run", "--split", "verification", "--limit", "200", "--weight-bits",
                "8,6", "--out", tmp_path / "again", "--cache-dir", cache, "--no-report",
                "--no-prediction-cache", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (out / "metrics.csv").read_bytes() == (tmp_path / "again" / "metrics.csv").read_bytes()
