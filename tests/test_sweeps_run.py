"""The activation-bit and calibration sweeps as options of benchmark.run, and the swap table's
tie columns."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark import pipeline, report
from benchmark.config import make_config
from benchmark.errors import UsageError
from conftest import ROOT

MODELS = ROOT / "models" / "signnet" / "verification"
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                              reason="the calibration sweep converts with TensorFlow")


@pytest.fixture
def cache(linked_cache):
    """This module's runs use the linked cache (conftest.linked_cache)."""
    return linked_cache


@pytest.fixture
def calls(evaluate_calls):
    return evaluate_calls


def _run(out, cache, **options):
    cli = dict(split="verification", limit=40, out=str(out), cache_dir=str(cache),
               report=False)
    cli.update(options)
    _, records = pipeline.run(make_config(cli), quiet=True, tables=False)
    return records["verification"]


def test_act_bits_variants_standard_int8_and_a8_is_the_int8_model(tmp_path, cache, calls):
    from benchmark.convert import check_int8_graph
    from benchmark.tflite_graph import read_graph
    rec = _run(tmp_path / "run", cache, act_bits="8,4")
    assert list(rec["variants"]) == ["float", "int8", "a8", "a4"]
    assert calls == ["float", "int8", "a4"]          # a8 has int8's bytes: not evaluated again
    a8, a4 = rec["variants"]["a8"], rec["variants"]["a4"]
    assert a8["same_model_as"] == "int8" and (a8["kind"], a8["act_bits"]) == ("activations", 8)
    assert a4["act_bits"] == 4 and a4["weight_bits"] == 8
    models = tmp_path / "run" / "models"
    assert (models / "signnet_a8.tflite").read_bytes() == \
        (MODELS / "signnet_int8.tflite").read_bytes()
    g4, g8 = read_graph(models / "signnet_a4.tflite"), read_graph(MODELS / "signnet_int8.tflite")
    assert check_int8_graph(g4) == [] and g4.op_names == g8.op_names
    assert (tmp_path / "run" / "predictions_a8.npz").read_bytes() == \
        (tmp_path / "run" / "predictions_int8.npz").read_bytes()
    # 4-bit activations change predictions (the sweep measures something), compared with float
    assert rec["swaps"]["a4"]["swapped"] > rec["swaps"]["a8"]["swapped"]
    table = report.sweep_table({"verification": rec}, kind="activations")
    assert "activation-bit sweep" in table and table.count("verification") == 2
    assert "Activation-bit sweep" in dict(report._tables({"verification": rec}, "simple"))


def test_sweep_options_are_validated_and_absent_when_unset():
    for cli, msg in (({"act_bits": "9"}, "--act-bits"), ({"act_bits": "4,4"}, "--act-bits"),
                     ({"calibration_seeds": 3}, "need --calibration-sizes"),
                     ({"calibration_sizes": "0,4"}, "--calibration-sizes"),
                     ({"calibration_sizes": "1", "calibration_from": "colour:red"},
                      "--calibration-from")):
        with pytest.raises(UsageError, match=msg):
            make_config(cli)
    d = make_config({}).to_dict()   # results.json and fingerprints of runs without them
    assert not {"act_bits", "calibration_sizes", "calibration_seeds", "calibration_from"} & set(d)
    d = make_config({"act_bits": "6", "calibration_sizes": "1,16"}).to_dict()
    assert d["act_bits"] == [6] and d["calibration_sizes"] == [1, 16]


def test_swap_table_ties_and_new_errors_to_a_lower_index():
    sw = {"swapped_pct": 10.0, "delta_error_pct": 5.0, "ratio": 0.5, "right_to_wrong": 5,
          "wrong_to_right": 0, "wrong_to_wrong": 1, "mcnemar_p": 0.06,
          "accuracy_change": {"low": -0.1, "high": 0.0}, "q_ties": 3, "new_errors_lower": 2}
    old = {k: v for k, v in sw.items() if k not in ("q_ties", "new_errors_lower")}
    table = report.swap_table({"s": {"swaps": {"reference": "float", "int8": sw, "w4": old}}})
    head, _, int8, w4 = table.splitlines()
    assert head.split()[-6:] == ["q", "top-1", "ties", "new", "err", "lower"]
    assert int8.split()[-2:] == ["3", "2/5"]
    assert w4.split()[-1] == "%"                     # an older record: the cells stay empty


@needs_tf
@pytest.mark.slow
def test_calibration_sizes_through_run(tmp_path, cache, calls):
    rec = _run(tmp_path / "a", cache, variants="float", calibration_sizes="1,16",
               calibration_seeds=2, limit=60)
    names = ["cal1-s0", "cal1-s1", "cal16-s0", "cal16-s1"]
    assert list(rec["variants"]) == ["float"] + names
    eval_rows = set(np.load(tmp_path / "a" / "predictions_float.npz")["index"].tolist())
    for v in names:
        m = rec["variants"][v]
        assert (m["kind"], m["reference"]) == ("calibration", "float")
        art = Path(m["model_file"]).parent
        assert art.parent == cache / "converted"
        rep = json.loads((art / "representative_indices.json").read_text())
        assert (rep["size"], rep["seed"]) == (m["calibration_size"], m["calibration_seed"])
        # a seeded draw of distinct training images (none of the evaluated rows)
        assert rep["indices"] == sorted(set(rep["indices"])) and len(rep["indices"]) == rep["size"]
        assert not eval_rows & set(rep["indices"])
        assert set(rec["swaps"][v]) >= {"mcnemar_p", "q_ties", "new_errors_lower"}
    assert rec["variants"]["cal1-s0"]["model_file"] != rec["variants"]["cal1-s1"]["model_file"]
    summ = report.calibration_summary({"verification": rec})
    assert [(x["size"], x["draws"]) for x in summ] == [(1, 2), (16, 2)]
    assert summ[1]["worst_delta"] <= summ[1]["median_delta"]
    del calls[:]
    rec2 = _run(tmp_path / "b", cache, variants="float", calibration_sizes="1,16",
                calibration_seeds=2, limit=60)
    assert calls == []                               # conversions and predictions reused
    assert len(list((cache / "converted").glob("signnet-verification-cal*[0-9a-f]"))) == 4
    for v in names:
        assert (tmp_path / "a" / f"predictions_{v}.npz").read_bytes() == \
            (tmp_path / "b" / f"predictions_{v}.npz").read_bytes()
    assert "Calibration sweep" in dict(report._tables({"verification": rec2}, "simple"))


@needs_tf
def test_calibration_sizes_need_the_keras_model(tmp_path):
    import shutil

    from benchmark.errors import DataError
    from benchmark.plan import plan_run
    split = tmp_path / "models" / "signnet" / "verification"
    split.mkdir(parents=True)
    for f in MODELS.iterdir():
        if f.suffix != ".keras":
            shutil.copy(f, split / f.name)
    cfg = make_config({"model_dir": str(tmp_path / "models"), "calibration_sizes": "1",
                       "out": str(tmp_path / "run")})
    with pytest.raises(DataError, match=r"signnet\.keras .*--calibration-sizes converts it"):
        plan_run(cfg)
    assert not (tmp_path / "run").exists()
    plan = plan_run(make_config({"calibration_sizes": "4,1", "calibration_seeds": 2,
                                 "out": str(tmp_path / "run")}))
    sp = plan.splits[0]
    assert sp.calibrate_from == MODELS / "signnet.keras"
    names = ["float", "int8", "cal4-s0", "cal4-s1", "cal1-s0", "cal1-s1"]
    assert [v.name for v in sp.variants] == names
    assert not (tmp_path / "run").exists()
