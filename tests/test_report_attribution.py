"""The report's attribution table: max LSB, share within the LSB tolerance and McNemar p of
CPU int8 vs Edge TPU int8, from results.json's ``attribution`` record (hand-checked values)."""

import numpy as np

from benchmark.compare import attribution
from benchmark.evaluate import Predictions
from benchmark.report import attribution_table
from benchmark.variants import EDGETPU_NAME

#: CPU int8 outputs on 5 images (scale 0.25), all right; the Edge TPU's, in steps.
CPU = np.array([[3, 1, 0], [1, 2, 1], [0, 1, 3], [2, 1, 1], [1, 1, 2]]) / 4.0
TPU_STEPS = np.array([[0, 0, 0], [0, -1, 2], [0, 3, -1], [-1, 1, 0], [0, 0, 0]])
LABELS = np.array([0, 1, 2, 0, 2])


def _preds(probs):
    return Predictions(probs=np.asarray(probs, np.float32), labels=LABELS,
                       index=np.arange(len(LABELS)), seconds=1.0)


def _record(quant):
    tpu = CPU + TPU_STEPS / 4.0
    return attribution({"float": _preds(CPU), "int8": _preds(CPU), EDGETPU_NAME: _preds(tpu)},
                       output_quantization=quant)


def _rows(text):
    return [line.split() for line in text.splitlines()[2:]]


def test_attribution_table_by_hand():
    # by hand: rows 1-3 change their top-1 (right -> wrong, 3 of 5; none wrong -> right):
    # agreement 2/5, Edge TPU accuracy 40 %, exact McNemar p = 2 * 0.5**3 = 0.25;
    # 15 outputs, |steps| 3, 2, 1, 1, 1 and ten 0: max 3, within +-1 LSB 13/15 = 86.67 %;
    # the largest probability difference is 3 steps = 0.75
    att = _record({"scale": 0.25, "zero_point": 0})
    assert att["int8_cpu_vs_edgetpu"]["lsb"]["histogram"] == {"lsb": [-1, 0, 1, 2, 3],
                                                              "counts": [3, 9, 1, 1, 1]}
    no_grid = _record(None)          # no output quantization reported: no LSB record
    text = attribution_table({"verification": {"attribution": att},
                              "full": {"attribution": no_grid}, "other": {}})
    head = text.splitlines()[0]
    for col in ("max LSB", "within LSB tol.", "McNemar p", "same top-1 CPU/TPU"):
        assert col in head
    # the markdown table keeps its columns (no '|' inside a header)
    md = attribution_table({"verification": {"attribution": att}}, fmt="github").splitlines()
    assert md[0].count("|") == md[2].count("|") == 10
    rows = _rows(text)
    assert rows[0] == ["verification", "100.00", "%", "100.00", "%", "40.00", "%", "40.00", "%",
                       "3", "86.67", "%", "(±1)", "0.25",
                       "0.7500"]
    assert rows[1] == ["full", "100.00", "%", "100.00", "%", "40.00", "%", "40.00", "%",
                       "0.25", "0.7500"]          # LSB cells empty, McNemar still there
    assert len(rows) == 2                          # a split without attribution has no row


def test_attribution_table_reads_an_older_record():
    """A results.json written before the LSB and McNemar fields: those cells stay empty."""
    old = {"accuracy": {"int8": 0.5, EDGETPU_NAME: 0.5},
           "int8_cpu_vs_edgetpu": {"top1": 1.0, "max_abs_prob_diff": 0.0}}
    assert _rows(attribution_table({"s": {"attribution": old}})) == [
        ["s", "50.00", "%", "50.00", "%", "100.00", "%", "0.0000"]]
