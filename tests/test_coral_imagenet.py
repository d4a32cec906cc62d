"""Coral's pre-quantized MobileNet v1 (1001 outputs, background at 0) through benchmark.run.

Runs the command results/imagenet-sample.md lists for it (tools/results_tables.py SOURCES:
``benchmark.run --model FILE.tflite`` with the labels packed in the file, matched to the
dataset's names by their first synonym) and checks the run against the committed
``metrics.csv`` and the published accuracy.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED, load_predictions

CORAL = SHARED / "edgetpu" / "pairs" / "mobilenet_v1_0.25_128_quant.tflite"
SAMPLE = SHARED / "data" / "imagenet-sample"
SOURCE = "imagenet-sample-coral-mobilenet-v1"

pytestmark = pytest.mark.skipif(
    not (CORAL.is_file() and (SAMPLE / "LOC_synset_mapping.txt").is_file()),
    reason="../shared/edgetpu/pairs or ../shared/data/imagenet-sample not present")


def _source_command() -> str:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import results_tables
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return results_tables.SOURCES[SOURCE].command


def _committed(metric: str) -> float:
    with open(ROOT / "results" / SOURCE / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == metric]
    assert len(rows) == 1, metric
    return float(rows[0]["value"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coral")
    cmd = _source_command()
    out = tmp / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    r = subprocess.run(["bash", "-c", f"{cmd} --out {out} --cache-dir {tmp / 'cache'} "
                        "--workers 1 --no-report --quiet"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return tmp, out


def test_embedded_labels_match_every_data_class(run):
    rec = json.loads((run[1] / "results.json").read_text())
    names = rec["class_names"]
    assert len(names) == 1001 and names[:2] == ["background", "tench, Tinca tinca"]
    assert [names[i] for i in (135, 518)] == ["crane", "crane"]


def test_class_i_is_output_i_plus_1_and_background_stays_in_the_argmax(run):
    rec = json.loads((run[1] / "results.json").read_text())
    cm = rec["class_map"]
    assert (cm["mode"], cm["model_classes"], cm["data_classes"]) == ("subset", 1001, 1000)
    assert cm["data_to_model"] == list(range(1, 1001))
    pred = load_predictions(run[1], "int8")
    assert pred["probs"].shape == (400, 1001)
    assert (pred["labels"] >= 1).all()     # data labels are model outputs now
    correct = int((pred["probs"].argmax(1) == pred["labels"]).sum())
    assert correct == rec["variants"]["int8"]["n_correct"]


def test_accuracy_is_the_committed_one_and_near_the_published_one(run):
    rec = json.loads((run[1] / "results.json").read_text())
    m = rec["variants"]["int8"]
    # TensorFlow publishes 39.5-39.9 % top-1; the central 95 % of Binomial(400, 0.395) is
    # 139..177 correct. A class map off by one scores ~0.
    assert 139 <= m["n_correct"] <= 180
    assert m["n"] == 400 and rec["preprocessing"]["input_size"] == 128
    assert m["n_correct"] == _committed("n_correct")
    assert m["top5_accuracy"] == pytest.approx(_committed("top5_accuracy"), abs=1e-12)
    assert m["calibration"]["nll"] == pytest.approx(_committed("calibration_nll"), rel=1e-9)
