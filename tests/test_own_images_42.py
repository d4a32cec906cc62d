"""Issue #12 acceptance, your own images: a 42-class image folder with train/ and test/,
``train --num-classes 42``, ``convert``, ``run``, no workaround; float vs int8 with per-class
tables, seen / unseen accuracy recomputed from the predictions and the training rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.evaluate import summarize
from benchmark.metrics import per_class_report, recall_change
from conftest import load_predictions, run_cli, run_main
from test_train_any_classes import make_imagefolder


@pytest.fixture(scope="module")
def own_run(tf, tmp_path_factory):
    root = tmp_path_factory.mktemp("own42")
    data = make_imagefolder(root / "data", classes=42, train=5, test=2, size=20, seed=4)
    env = {"EDGETPU_BENCH_CACHE": str(root / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = ["--dataset", "imagefolder", "--data-dir", data, "--split", "full",
              "--model-dir", root / "models"]
    # train and convert in this process (TensorFlow imported once); run as the user runs it
    r = run_main("benchmark.train", *common, "--num-classes", "42", "--epochs", "2", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_main("benchmark.convert", *common, "--representative-size", "20", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = root / "run"
    r = run_cli("benchmark.run", *common, "--device", "cpu", "--out", out, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return root, out, r


@pytest.mark.slow
def test_42_classes_end_to_end_with_per_class_tables(own_run):
    root, out, r = own_run
    res = json.loads((out / "results.json").read_text())
    assert len(res["class_names"]) == 42 and set(res["variants"]) == {"float", "int8"}
    assert "Per class: full" in r.stdout and "per-class summary" in r.stdout
    assert "recall int8 - float" in r.stdout
    page = (out / "report.html").read_text()
    assert "Per class: full</h3>" in page
    preds = {v: load_predictions(out, v) for v in ("float", "int8")}
    for v, p in preds.items():
        m = res["variants"][v]
        assert m["per_class"] == per_class_report(p["labels"], p["probs"].argmax(1),
                                                  num_classes=42)
        assert len(m["per_class"]["support"]) == 42 and sum(m["per_class"]["support"]) == 294
        assert 0 <= m["top5_accuracy"] <= 1
    rc = res["recall_change"]["int8"]
    assert rc == recall_change(preds["float"]["labels"], preds["float"]["probs"].argmax(1),
                               preds["int8"]["probs"].argmax(1), num_classes=42)


@pytest.mark.slow
def test_full_split_seen_and_unseen_accuracy(own_run):
    """The training images come back from train_meta.json; test/ images are never seen."""
    root, out, _ = own_run
    res = json.loads((out / "results.json").read_text())
    meta = json.loads((root / "models" / "signnet" / "full" / "train_meta.json").read_text())
    tr = meta["training_rows"]
    assert res["training_rows"]["known"], res["training_rows"]
    seen = res["variants"]["int8"]["training_seen"]
    assert seen["seen"]["n"] == tr["n_fit"] == meta["n_train"]
    assert seen["validation"]["n"] == tr["n_validation"] == meta["validation"]["n"]
    # 42 x 2 test/ images never trained on, plus the 10 % of train/ not drawn for training
    assert seen["unseen"]["n"] == 294 - tr["n_fit"] - tr["n_validation"] >= 84
    from benchmark.datasets.registry import load_dataset
    from benchmark.trainsplit import training_rows
    ds = load_dataset("imagefolder", image_size=80, data_dir=root / "data",
                      cache_dir=root / "cache", verbose=False)
    rows, how = training_rows(ds, meta)
    assert rows is not None, how
    p = load_predictions(out, "int8")
    right = p["probs"].argmax(1) == p["labels"]
    in_fit = np.isin(p["index"], rows.fit)
    assert seen["seen"]["n_correct"] == int(right[in_fit].sum())
    trained = np.concatenate([rows.fit, rows.validation])
    assert ds.meta["n_test"] == 84 and not np.isin(np.flatnonzero(ds.groups == -1), trained).any()


def test_nll_floor_is_half_an_output_step_and_zeros_are_counted():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.25, 0.75]], np.float32)
    y = np.array([0, 2, 0])           # the last two give their true class exactly 0
    s, _ = summarize(probs, y, num_classes=3, output_step=1 / 256)
    cal = s["calibration"]
    assert cal["nll_zero_true"] == 2 and cal["nll_floor"] == 1 / 512
    assert cal["nll"] == pytest.approx(-(np.log(1.0) + 2 * np.log(1 / 512)) / 3)
    f, _ = summarize(probs, y, num_classes=3)          # float outputs: the 1e-12 floor
    assert f["calibration"]["nll_floor"] == 1e-12
    assert f["calibration"]["nll"] == pytest.approx(-2 * np.log(1e-12) / 3)
    assert "top5_accuracy" not in f                    # fewer than 10 classes
    many, _ = summarize(np.eye(12)[[0, 1]], np.array([0, 5]), num_classes=12)
    assert many["top5_accuracy"] == 0.5


def test_training_rows_refuse_a_changed_dataset():
    from benchmark.datasets.base import Dataset
    from benchmark.trainsplit import draw_rows, rows_record, training_rows
    labels = np.repeat(np.arange(3), 10)
    ds = Dataset("imagefolder", np.zeros((30, 2, 2, 3), np.uint8), labels, np.arange(30),
                 ("a", "b", "c"), (-1,))
    rows = draw_rows(ds, "full", data_seed=0, limit=None, seed=0, val_fraction=0.2)
    meta = {"dataset": "imagefolder", "split": "full", "data_seed": 0, "seed": 0,
            "n_train": int(rows.fit.size),
            "training_rows": rows_record(rows, limit=None, val_fraction=0.2)}
    again, how = training_rows(ds, meta)
    assert np.array_equal(again.fit, rows.fit) and "sha256 matches" in how
    meta["training_rows"]["fit_sha256"] = "0" * 64
    assert training_rows(ds, meta) == (None, "the training rows redrawn do not match "
                                             "train_meta.json (data changed?)")
    assert training_rows(ds, dict(meta, dataset="csv"))[0] is None
    assert training_rows(ds, dict(meta, source="pretrained", seed=None))[0] is None
