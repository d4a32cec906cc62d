"""Fixes made with the pipeline redesign (issue #11, point 9), each failing on the old code."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from benchmark import paper
from benchmark.cli import main_wrapper
from conftest import ROOT, run_cli


def test_unknown_model_or_dataset_creates_no_run_directory(tmp_path):
    runs = ROOT / "runs"
    before = sorted(runs.iterdir()) if runs.is_dir() else []
    for args in (["--model", "nope"], ["--dataset", "imagefolder"],
                 ["--data-dir", str(tmp_path / "missing"), "--dataset", "gtsrb",
                  "--model", "signnet-gtsrb"]):
        r = run_cli("benchmark.run", *args)
        assert r.returncode in (2, 3), r.stderr
        assert "Traceback" not in r.stderr
        assert (sorted(runs.iterdir()) if runs.is_dir() else []) == before, args
    out = tmp_path / "out"
    r = run_cli("benchmark.run", "--model", "nope", "--out", out)
    assert r.returncode == 2 and not out.exists()


def test_planning_validates_before_anything_is_written(tmp_path):
    from benchmark.config import make_config
    from benchmark.errors import DataError
    from benchmark.plan import plan_run
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "signnet" / "verification",
                    models / "signnet" / "verification")
    (models / "signnet" / "verification" / "signnet_int8.tflite").unlink()
    cfg = make_config({"model_dir": str(models), "out": str(tmp_path / "run")})
    with pytest.raises(DataError, match="model file not found: .*signnet_int8.tflite"):
        plan_run(cfg)
    assert not (tmp_path / "run").exists()
    plan = plan_run(make_config({"out": str(tmp_path / "run2"), "weight_bits": "6"}))
    assert [v.name for v in plan.splits[0].variants] == ["float", "int8", "w6"]
    assert plan.splits[0].variants[2].weight_bits == 6 and not (tmp_path / "run2").exists()


def _imagefolder_artifacts(tmp_path):
    """The shipped SignNet's artifacts, relabelled as trained on an imagefolder dataset."""
    art = tmp_path / "models" / "signnet" / "verification"
    shutil.copytree(ROOT / "models" / "signnet" / "verification", art)
    meta = json.loads((art / "train_meta.json").read_text())
    meta.update(dataset="imagefolder", data_dir=str(tmp_path / "photos"), dataset_options={},
                dataset_meta={"cache_key": "0123456789abcdef", "loader_version": 1,
                              "source": "9f86d081884c7d659a2feaa0c55ad015"})
    (art / "train_meta.json").write_text(json.dumps(meta))
    return tmp_path / "models"


def test_modelcard_of_an_imagefolder_model(tmp_path, capsys):
    """The dataset source of an imagefolder model is one fingerprint string, not a dict."""
    from benchmark import modelcard
    models = _imagefolder_artifacts(tmp_path)
    run = tmp_path / "run"
    r = run_cli("benchmark.run", "--split", "verification", "--limit", "30", "--out", run,
                "--quiet", "--no-report")
    assert r.returncode == 0, r.stderr
    code = main_wrapper("benchmark.modelcard", modelcard.main,
                        ["--model", "signnet", "--run", str(run), "--model-dir", str(models)])
    assert code == 0, capsys.readouterr().err
    card = (models / "signnet" / "verification" / "MODEL_CARD.md").read_text()
    assert "imagefolder from" in card and "sources 9f86d081884c" in card


class _SlowFirstInterpreter:
    """An interpreter whose first invoke takes 50 ms (the Edge TPU uploads parameters then)."""

    def __init__(self, real):
        self.real, self.calls = real, 0

    def invoke(self):
        self.calls += 1
        if self.calls == 1:
            time.sleep(0.05)
        self.real.invoke()

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_latency_first_invoke_is_the_cold_one(monkeypatch):
    """benchmark.run --latency used to time the first invoke *after* the evaluation pass."""
    from benchmark import backends, evaluate
    from benchmark.datasets.registry import load_dataset
    from benchmark.models.registry import get_model
    from benchmark.variants import int8_variant
    real_make = backends.make_backend

    def make(device, path, **kw):
        b = real_make(device, path, **kw)
        b.interpreter = _SlowFirstInterpreter(b.interpreter)
        return b

    monkeypatch.setattr(backends, "make_backend", make)
    entry = get_model("signnet")
    ds = load_dataset("carolo-synth", image_size=80, verbose=False)
    _, idx = ds.split("verification")
    v = int8_variant().with_path(ROOT / "models" / "signnet" / "verification"
                                 / "signnet_int8.tflite")
    r = evaluate.evaluate_variant(v, ds, idx[:8], preprocess=entry.preprocess, logits=False,
                                  settings=evaluate.EvalSettings(latency=5, latency_warmup=1))
    assert r.latency["first_invoke_ms"] >= 45
    assert r.latency["n"] == 5 and r.latency["mean_ms"] < 45


def test_paper_figure1_histogram_uses_equal_width_bins():
    """The lower panel used the equal-count bins: flat by construction."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(400, 5)) * np.linspace(0.2, 4, 400)[:, None]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 5, 400)
    f1 = paper.figure1(probs, labels, n_bins=15, hist_bins=50)
    fig = paper.figure1_plot({"verification": {"figure1": f1, "figure2": []}})
    (patch,) = fig.axes[1].patches
    counts = patch.get_data().values
    np.testing.assert_array_equal(counts, f1["reliability_equal_width"]["counts"])
    eq_count = np.asarray(f1["reliability_equal_count"]["counts"])
    assert eq_count.max() - eq_count.min() <= 1      # what the old panel drew
    assert counts.max() - counts.min() > 10


def test_user_causable_model_problems_are_data_errors():
    """Not ValueError: the CLI would report them as internal errors (bugs)."""
    from benchmark.backends.litert_cpu import LiteRTCPUBackend
    from benchmark.errors import DataError
    from benchmark.quant.bitsweep import requantize_weights
    art = ROOT / "models" / "signnet" / "verification"
    with pytest.raises(DataError, match="signnet_float.tflite: no int8 CONV_2D"):
        requantize_weights(art / "signnet_float.tflite", 4)
    with LiteRTCPUBackend(art / "signnet_int8.tflite", num_threads=1) as b:
        shapes = r"takes inputs of shape \[80, 80, 3\] but the data has \[32, 32, 3\]"
        with pytest.raises(DataError, match=shapes):
            b.predict(np.zeros((1, 32, 32, 3), np.float32))
