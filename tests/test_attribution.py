"""CPU int8 vs Edge TPU int8 in quantization steps (LSB): hand-checked values, a perturbing
fake Edge TPU, and the real MoveNet Edge TPU / CPU reference pair from Coral's test data.

What the comparison code reports on the real pair (keypoint x/y of MoveNet Lightning on one
image, Edge TPU vs CPU; the grid step is fitted from the printed values):

    lsb_difference(cpu_xy, tpu_xy, scale=infer_step(xy)) gives
    {'n_outputs': 34, 'histogram': {'lsb': [-5, ..., 5],
     'counts': [1, 0, 2, 3, 9, 8, 5, 3, 1, 1, 1]}, 'max_lsb': 5, 'mean_lsb': 1.441...,
     'exact': 0.235..., 'within_tolerance': 0.647..., 'tolerance': 1, 'scale': 0.0039537...}

Only 8 of the 34 coordinates are identical; the keypoint scores differ by up to 0.399.
"""

import csv
import json
import math

import numpy as np
import pytest

from benchmark.backends.fake import perturb_lsb
from benchmark.commands import main
from benchmark.compare import infer_step, lsb_difference
from conftest import SHARED, load_predictions
from edgetpu_fakes import compiled_models, use_fake_edgetpu

MOVENET = SHARED / "edgetpu" / "pairs" / "compiled_only"


@pytest.fixture
def models_with_compiled(tmp_path):
    return compiled_models(tmp_path)


def test_lsb_difference_by_hand():
    cpu = np.array([[0, 4, 8, 12], [16, 20, 24, 28]]) / 4.0       # scale 0.25: steps 0..7 * 4
    tpu = cpu + np.array([[0, 1, -1, 0], [0, 0, 3, -2]]) / 4.0
    r = lsb_difference(cpu, tpu, scale=0.25)
    assert r["histogram"] == {"lsb": [-2, -1, 0, 1, 2, 3], "counts": [1, 1, 4, 1, 0, 1]}
    assert r["max_lsb"] == 3 and r["mean_lsb"] == pytest.approx(7 / 8)
    assert r["exact"] == 0.5 and r["within_tolerance"] == 0.75 and r["n_outputs"] == 8
    assert lsb_difference(cpu, tpu, scale=0.25, tolerance=2)["within_tolerance"] == 0.875


def test_lsb_difference_refuses_outputs_off_the_grid():
    with pytest.raises(ValueError, match="not on a grid"):
        lsb_difference([[0.1, 0.2]], [[0.1, 0.33]], scale=0.25)
    with pytest.raises(ValueError, match="shapes differ"):
        lsb_difference([[0.0]], [[0.0, 0.0]], scale=1.0)


def test_infer_step():
    assert infer_step(np.arange(10) * 0.125 + 0.3) == pytest.approx(0.125)


def test_perturbing_fake_is_reported_exactly(monkeypatch, models_with_compiled, tmp_path,
                                             capsys):
    """A fake Edge TPU that moves 10 % of its output integers by +-2: the LSB histogram,
    top-1 agreement and McNemar counts in results.json equal the ones computed here by hand
    from the saved CPU predictions and the fake's seeded perturbation."""
    perturb = {"lsb": 2, "fraction": 0.1, "seed": 7}
    use_fake_edgetpu(monkeypatch, perturb=perturb)
    rc = main(["run", "--device", "edgetpu", "--split", "verification", "--limit", "40",
               "--model-dir", str(models_with_compiled), "--out", str(tmp_path / "run"),
               "--quiet", "--no-report"])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    cpu = load_predictions(tmp_path / "run", "int8")
    tpu = load_predictions(tmp_path / "run", "int8-edgetpu")
    q_cpu = np.rint(cpu["probs"] * 256).astype(np.int64)           # uint8 output, scale 1/256
    # the fake perturbs invoke k (1, 2, ... in evaluation order) with seed (7, k)
    expect = np.stack([perturb_lsb(q_cpu[k:k + 1].astype(np.uint8), lsb=2, fraction=0.1,
                                   seed=(7, k + 1))[0] for k in range(40)]).astype(np.int64)
    np.testing.assert_array_equal(np.rint(tpu["probs"] * 256), expect)
    d = (expect - q_cpu).ravel()
    assert set(np.unique(d)) <= {-2, 0, 2} and (d != 0).any()
    att = res["attribution"]["int8_cpu_vs_edgetpu"]
    lsb = att["lsb"]
    assert lsb["histogram"]["lsb"] == [-2, -1, 0, 1, 2]
    assert lsb["histogram"]["counts"] == [int((d == v).sum()) for v in (-2, -1, 0, 1, 2)]
    assert lsb["max_lsb"] == 2 and lsb["mean_lsb"] == pytest.approx(np.abs(d).mean())
    assert lsb["exact"] == pytest.approx(np.mean(d == 0))
    top_cpu, top_tpu = q_cpu.argmax(1), expect.argmax(1)
    assert att["top1"] == pytest.approx(np.mean(top_cpu == top_tpu))
    y = cpu["labels"]
    b = int(np.sum((top_cpu == y) & (top_tpu != y)))
    c = int(np.sum((top_cpu != y) & (top_tpu == y)))
    change = res["attribution"]["device_change"]
    assert (change["right_to_wrong"], change["wrong_to_right"]) == (b, c)
    p = min(1.0, 2 * sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c))
    assert change["mcnemar_p"] == pytest.approx(p)


def _movenet(name):
    with open(MOVENET / name) as f:
        rows = list(csv.DictReader(f))
    return np.array([[float(r[k]) for k in ("keypoint_score", "keypoint_x", "keypoint_y")]
                     for r in rows])


@pytest.mark.skipif(not MOVENET.is_dir(), reason="../shared/edgetpu/pairs not present")
def test_real_movenet_edgetpu_vs_cpu_reference():
    """Coral's MoveNet Lightning references (same image, Edge TPU vs CPU): not identical."""
    tpu = _movenet("movenet_single_pose_lightning_ptq_edgetpu_reference.csv")
    cpu = _movenet("movenet_single_pose_lightning_ptq_reference.csv")
    step = infer_step(np.concatenate([tpu[:, 1:], cpu[:, 1:]]))
    assert step == pytest.approx(0.0039537, abs=1e-6)
    r = lsb_difference(cpu[:, 1:], tpu[:, 1:], scale=step)
    assert r["histogram"] == {"lsb": list(range(-5, 6)),
                              "counts": [1, 0, 2, 3, 9, 8, 5, 3, 1, 1, 1]}
    assert r["max_lsb"] == 5 and r["mean_lsb"] == pytest.approx(49 / 34)
    assert r["exact"] == pytest.approx(8 / 34) and r["within_tolerance"] == pytest.approx(22 / 34)
    assert np.abs(tpu[:, 0] - cpu[:, 0]).max() == pytest.approx(0.399325)
