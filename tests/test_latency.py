"""Latency measurement on the shipped int8 model (CPU)."""

import json

import pytest

from benchmark.backends.litert_cpu import LiteRTCPUBackend
from benchmark.latency import latency_stats, measure_latency
from conftest import ROOT, run_cli

MODEL = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"


def test_latency_stats_by_hand():
    s = latency_stats([1.0, 2.0, 3.0, 4.0])
    assert s["mean_ms"] == 2.5 and s["p50_ms"] == 2.5 and s["min_ms"] == 1.0
    assert s["std_ms"] == pytest.approx(1.290994, abs=1e-6)
    assert s["p90_ms"] == pytest.approx(3.7) and s["throughput_per_s"] == 400.0
    with pytest.raises(ValueError):
        latency_stats([])


def test_measure_latency_on_cpu():
    b = LiteRTCPUBackend(MODEL, num_threads=1)
    r = measure_latency(b, runs=20, warmup=2)
    assert r["n"] == 20 and len(r["samples_ms"]) == 20
    assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert r["first_invoke_ms"] > 0


def test_latency_cli_writes_json(tmp_path):
    out = tmp_path / "lat.json"
    r = run_cli("benchmark.latency", MODEL, "--runs", "10", "--warmup", "1", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "signnet_int8.tflite on cpu: mean" in r.stdout
    res = json.loads(out.read_text())
    assert res["n"] == 10 and res["model_bytes"] == MODEL.stat().st_size
    assert res["runtime"]["backend"] == "litert-cpu"
    bad = run_cli("benchmark.latency", tmp_path / "missing.tflite")
    assert bad.returncode == 3 and "model file not found" in bad.stderr
