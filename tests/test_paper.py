"""benchmark.paper: Figure 1/2 data recomputed from the run's own predictions."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from benchmark.paper import figure1, swap_location

from conftest import load_predictions, read_results, run_cli


def test_figure1_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])
    f = figure1(probs, labels, n_bins=2, hist_bins=4)
    assert f["accuracy"] == 0.5 and f["mean_confidence"] == pytest.approx(0.7375)
    h = f["confidence_histogram"]
    # confidences 0.9, 0.8, 0.7, 0.55 in bins (0.75, 1] x2, (0.5, 0.75] x2
    assert h["correct"].tolist() == [0, 0, 1, 1] and h["wrong"].tolist() == [0, 0, 1, 1]
    eq = f["reliability_equal_count"]
    assert eq["counts"].tolist() == [2, 2]
    np.testing.assert_allclose(eq["mean_confidence"], [0.625, 0.85])
    np.testing.assert_allclose(eq["accuracy"], [0.5, 0.5])


def test_swap_location_counts_low_confidence_swaps():
    ref = np.array([[0.45, 0.55], [0.4, 0.6], [0.95, 0.05], [0.2, 0.8]])
    q = np.array([[0.55, 0.45], [0.4, 0.6], [0.9, 0.1], [0.6, 0.4]])
    loc = swap_location(ref, q)
    assert loc["swaps"] == 2 and loc["swaps_low_conf_share"] == 0.0
    loc = swap_location(ref, q, threshold=0.6)
    assert loc["swaps_low_conf_share"] == 0.5 and loc["all_low_conf_share"] == 0.25


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_paper_cli_on_signnet(tmp_path):
    out = tmp_path / "paper"
    r = run_cli("benchmark.paper", "--model", "signnet", "--split", "verification",
                "--weight-bits", "8,6,4", "--limit", "600", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Figure 2" in r.stdout and "swaps at conf<0.5" in r.stdout
    res = read_results(out)
    assert set(res["variants"]) == {"float", "int8", "w8", "w6", "w4"}
    sweep = _rows(out / "paper_fig2_sweep.csv")
    assert [row["variant"] for row in sweep] == ["int8", "w8", "w6", "w4"]
    ref = load_predictions(out, "float")
    for row in sweep:
        q = load_predictions(out, row['variant'])
        swapped = ref["probs"].argmax(1) != q["probs"].argmax(1)
        assert int(row["swaps"]) == swapped.sum()
        assert float(row["swapped_pct"]) == pytest.approx(100 * swapped.mean(), abs=1e-4)
        d_err = (q["probs"].argmax(1) != q["labels"]).mean() - \
            (ref["probs"].argmax(1) != ref["labels"]).mean()
        assert float(row["delta_error_pct"]) == pytest.approx(100 * d_err, abs=1e-4)
        conf = ref["probs"].max(1)
        if swapped.any():
            assert float(row["swaps_low_conf_share"]) == pytest.approx(
                (conf[swapped] < 0.5).mean(), abs=1e-4)
        hist = [h for h in _rows(out / "paper_fig2_swaps_by_confidence.csv")
                if h["variant"] == row["variant"]]
        assert len(hist) == 50 and sum(int(h["swapped"]) for h in hist) == swapped.sum()
        assert sum(int(h["all"]) for h in hist) == 600
    rel = [x for x in _rows(out / "paper_fig1_reliability.csv") if x["binning"] == "equal_count"]
    assert len(rel) == 15 and sum(int(x["count"]) for x in rel) == 600
    assert (out / "paper_fig1.png").stat().st_size > 1000
    assert (out / "paper_fig2_sweep_verification.png").is_file()


def test_paper_bad_bits_is_one_line(tmp_path):
    r = run_cli("benchmark.paper", "--model", "signnet", "--weight-bits", "8,1",
                "--out", tmp_path / "x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("benchmark.paper: error: --weight-bits")
