"""The blog's metric definitions (benchmark.metrics.blog) against independent formulas."""

import math

import numpy as np
import pytest

from benchmark.metrics.blog import (correct_certainty_histogram, mean_raw_normalized_entropy,
                                    raw_normalized_entropy, run_entropies)
from benchmark.metrics.classification import mean_normalized_entropy
from conftest import ROOT, run_cli


def _independent(probs) -> float:
    """sum -p ln p / ln K per row, no renormalizing, with plain Python floats."""
    total = 0.0
    for row in np.asarray(probs, dtype=float).tolist():
        total += sum(-p * math.log(p) for p in row if p > 0) / math.log(len(row))
    return total / len(probs)


def test_raw_entropy_golden_values_and_no_renormalizing():
    # uint8-like outputs summing to 255/256 and one saturated row
    probs = np.array([[255 / 256, 0, 0, 0], [0.5, 0.5, 0, 0], [0.25] * 4, [0, 0, 0, 0]])
    h = raw_normalized_entropy(probs)
    expect = [-(255 / 256) * math.log2(255 / 256) / 2, 0.5, 1.0, 0.0]
    np.testing.assert_allclose(h, expect, rtol=1e-12)
    # the renormalized definition sees the first row as one-hot (0) and the last as nothing
    assert mean_raw_normalized_entropy(probs) == pytest.approx(_independent(probs))
    assert mean_raw_normalized_entropy(probs[:3]) != pytest.approx(
        mean_normalized_entropy(probs[:3]))


def test_correct_certainty_histogram_is_normalized_by_correct_samples():
    probs = np.array([[.9, .1], [.6, .4], [.2, .8], [.55, .45]])
    f, edges = correct_certainty_histogram(probs, [0, 0, 0, 1], bins=4)
    # correct: samples 0 (max .9) and 1 (max .6) -> bins [.5,.75) and [.75,1]
    assert f.tolist() == [0.0, 0.0, 0.5, 0.5] and edges[-1] == 1.0
    f, _ = correct_certainty_histogram(probs, [1, 1, 0, 1], bins=4)   # none correct
    assert f.tolist() == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.slow
def test_blog_entropy_recomputed_from_a_runs_predictions(tmp_path):
    if not (ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite").is_file():
        pytest.skip("shipped SignNet not present")
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--split", "verification", "--limit", "60", "--no-report",
                "--quiet", "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {row["variant"]: row for row in run_entropies(out)}
    assert set(rows) >= {"float", "int8"}
    for variant, row in rows.items():
        files = list(out.rglob(f"predictions_{variant}.npz"))
        with np.load(files[0]) as z:
            assert row["mean_raw_normalized_entropy"] == pytest.approx(
                _independent(z["probs"]), rel=1e-9)
