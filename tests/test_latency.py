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


# ------------------------------------------------------------------ cold vs warm, host, Edge TPU

CONSOLE = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 412 ms.

Input model: signnet_int8.tflite
Input size: 276.73KiB
Output model: signnet_int8_edgetpu.tflite
Output size: 402.11KiB
On-chip memory used for caching model parameters: 352.25KiB
On-chip memory remaining for caching model parameters: 7.61MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 14
Operation log: signnet_int8_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
""" + "Compilation succeeded! \n"   # the trailing space is the compiler's


def _fake_sysfs(root, governors=("performance", "performance"), temps=(("cpu-thermal", 48312),)):
    for i, g in enumerate(governors):
        d = root / "devices" / "system" / "cpu" / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(g + "\n")
    for i, (kind, milli) in enumerate(temps):
        z = root / "class" / "thermal" / f"thermal_zone{i}"
        z.mkdir(parents=True)
        (z / "type").write_text(kind + "\n")
        (z / "temp").write_text(f"{milli}\n")


def test_host_governor_and_temperature_from_sysfs(tmp_path):
    from benchmark import hoststate
    _fake_sysfs(tmp_path, governors=("ondemand", "performance"))
    assert hoststate.cpu_governors(tmp_path) == ["ondemand", "performance"]
    assert hoststate.temperatures(tmp_path) == {"cpu-thermal": 48.3}
    assert hoststate.cpu_governors(tmp_path / "none") is None
    assert hoststate.temperatures(tmp_path / "none") is None


def test_busy_warning_counts_other_processes_only():
    from benchmark.hoststate import Snapshot, busy_warning, others_cores
    tick = __import__("os").sysconf("SC_CLK_TCK")
    # 2 s window: 3 core-seconds busy on the host, 1 of them this process -> others used 1 core
    a = Snapshot(wall=10.0, own_cpu=5.0, jiffies=(0, 0), load_average=(0.1, 0, 0),
                 governor=None, temperature_c=None, cores=2)
    b = Snapshot(wall=12.0, own_cpu=6.0, jiffies=(3 * tick, 0), load_average=(0.1, 0, 0),
                 governor=None, temperature_c=None, cores=2)
    assert others_cores(a, b) == pytest.approx(1.0)
    assert "other processes used 1.0 of 2 cores" in busy_warning(a, b)
    quiet = Snapshot(wall=12.0, own_cpu=6.0, jiffies=(int(1.5 * tick), 0),
                     load_average=(0.1, 0, 0), governor=None, temperature_c=None, cores=2)
    assert busy_warning(a, quiet) is None                        # others: 0.25 cores
    loaded = Snapshot(wall=10.0, own_cpu=5.0, jiffies=None, load_average=(2.5, 0, 0),
                      governor=None, temperature_c=None, cores=2)
    assert "load average 2.5 >= 2 cores" in busy_warning(loaded, quiet)


def test_latency_record_has_host_state_and_open_times():
    b = LiteRTCPUBackend(MODEL, num_threads=1)
    r = measure_latency(b, runs=5, warmup=1)
    assert set(r["host"]) == {"before", "after"}
    assert set(r["host"]["before"]) == {"load_average_1m", "governor", "temperature_c"}
    assert r["std_ms"] >= 0 and r["max_ms"] >= r["mean_ms"]


def test_edgetpu_latency_cli_cold_vs_warm(monkeypatch, tmp_path, capsys):
    """latency --device edgetpu on the fake Edge TPU (child process): open times of the
    delegate, the cold first invoke, warm invokes, the proof record and the compiler's
    parameter figures saved beside the model."""
    import shutil
    from benchmark.backends.fake import make_fake_compiled
    from benchmark.latency import main
    from edgetpu_fakes import use_fake_edgetpu
    use_fake_edgetpu(monkeypatch)
    shutil.copy(MODEL, tmp_path / "signnet_int8.tflite")
    model = tmp_path / "signnet_int8_edgetpu.tflite"
    make_fake_compiled(MODEL, model)
    (tmp_path / "signnet_int8_compile_console.log").write_text(CONSOLE)
    out = tmp_path / "lat.json"
    assert main([str(model), "--device", "edgetpu", "--edgetpu-device", "usb:0", "--runs", "5",
                 "--warmup", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("signnet_int8_edgetpu.tflite on edgetpu: mean")
    assert "cold first invoke" in text and "1 TPU segment(s), 0 op(s) on the CPU" in text
    assert "compiler: on chip used 0.34 MiB, on chip remaining 7.61 MiB, off chip used " \
           "0.00 MiB (signnet_int8_compile_console.log)" in text
    r = json.loads(out.read_text())
    assert r["n"] == 5 and r["first_invoke_ms"] > 0 and r["open_ms"] > 0
    assert {"delegate_ms", "interpreter_ms", "allocate_ms"} <= set(r)
    assert r["runtime"]["device"] == "usb:0" and r["runtime"]["tpu"]["tpu_segments"] == 1
    assert r["compile_memory"]["on_chip_used_bytes"] == 360704


def test_latency_cli_refuses_a_bad_device_spec():
    r = run_cli("benchmark.latency", MODEL, "--device", "edgetpu", "--edgetpu-device", "usb-0")
    assert r.returncode == 2 and "--edgetpu-device 'usb-0'" in r.stderr
