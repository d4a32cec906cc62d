"""Latency measurement on the shipped int8 model (CPU)."""

import json
import time

import numpy as np
import pytest

from benchmark.backends.litert_cpu import LiteRTCPUBackend
from benchmark.latency import latency_stats, measure_latency, time_first_invoke
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


class _SlowFirstInterpreter:
    """An interpreter whose first invoke() sleeps 50 ms (like loading the Edge TPU)."""

    def __init__(self):
        self.invokes, self.inputs = 0, []

    def set_tensor(self, index, x):
        self.inputs.append((index, x.dtype, x.shape))

    def invoke(self):
        self.invokes += 1
        if self.invokes == 1:
            time.sleep(0.05)


class _FakeInterpreterBackend:
    def __init__(self):
        from benchmark.backends.base import TensorSpec
        self.interpreter = _SlowFirstInterpreter()
        self.input_spec = TensorSpec("x", (1, 4, 4, 3), np.dtype(np.int8), scale=0.1,
                                     zero_point=0)
        self._in_index = 7


def test_first_invoke_is_timed_on_the_fresh_backend():
    b = _FakeInterpreterBackend()
    first = time_first_invoke(b)
    assert first >= 50 and b.interpreter.invokes == 1
    assert b.interpreter.inputs == [(7, np.dtype(np.int8), (1, 4, 4, 3))]
    for _ in range(5):           # the evaluation pass
        b.interpreter.invoke()
    r = measure_latency(b, runs=5, warmup=2, first_invoke_ms=first)
    assert r["first_invoke_ms"] == first >= 50
    assert r["max_ms"] < 50 and r["n"] == 5
    assert b.interpreter.invokes == 1 + 5 + 2 + 5   # no extra "first" invoke


def test_without_first_invoke_ms_this_calls_first_invoke_is_timed():
    fresh = _FakeInterpreterBackend()
    assert measure_latency(fresh, runs=3, warmup=0)["first_invoke_ms"] >= 50
    used = _FakeInterpreterBackend()
    used.interpreter.invoke()    # an evaluation ran first: the cold invoke is gone
    r = measure_latency(used, runs=3, warmup=0)
    assert r["first_invoke_ms"] < 50 and used.interpreter.invokes == 1 + 1 + 3


def test_bad_counts_are_usage_errors():
    from benchmark.errors import UsageError
    with pytest.raises(UsageError, match="--runs must be >= 1"):
        measure_latency(_FakeInterpreterBackend(), runs=0)
    r = run_cli("benchmark.latency", MODEL, "--runs", "0")
    assert r.returncode == 2 and "--runs must be >= 1" in r.stderr
