"""edgetpu_compiler output parser against every real sample, plus the compile CLI."""

import json
import os
import stat
import sys

import pytest

from benchmark.compile.logparse import (parse_compiler_files, parse_compiler_output,
                                        to_bytes)
from conftest import ROOT, SHARED, run_cli

SAMPLES = SHARED / "edgetpu"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/edgetpu not present")

# (TPU, CPU) from ../shared/edgetpu/README.md, and the error kind of the failures.
EXPECTED = {
    "02_mobilenet_v2_quant_all_mapped_v16.log": (72, 0, None),
    "06_resnet_float_io_quant_dequant_v2_1.log": (75, 2, None),
    "08_float_model_unsupported_dtype_v16.log": (0, 4, None),
    "10_yolov5s_partial_tail_v16.log": (242, 20, None),
    "19_console_yolov5s_224_sa_two_subgraphs_v16.log": (289, 5, None),
    "20_console_efficientdet_lite_modelmaker_v16.log": (264, 3, None),
    "21_efficientdet_lite_modelmaker_oplog_v16.log": (264, 3, None),
    "22_console_mobilenetv2_frc_offchip_truncated_table_v16.log": (138, 3, None),
    "25_console_resnet50_offchip_v2_0.log": (77, 0, None),
    "31_console_model_not_quantized_v15.log": (None, None, "not_quantized"),
    "33_console_internal_compiler_error_v2_0.log": (None, None, "internal_error"),
    "36_console_dynamic_sized_tensors_failed_v16.log": (None, None, "dynamic_shapes"),
    "43_console_flaky_internal_error_then_success_v14_1.log": (6, 18, "internal_error"),
}


@needs_samples
def test_every_sample_is_covered():
    assert {p.name for p in SAMPLES.glob("*.log")} == set(EXPECTED)


@needs_samples
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_counts(name):
    tpu, cpu, err = EXPECTED[name]
    r = parse_compiler_output((SAMPLES / name).read_text())
    assert r.get("ops_on_tpu") == tpu and r.get("ops_on_cpu") == cpu
    assert (r["error"] or {}).get("kind") == err
    if err:
        assert r["error"]["advice"]
    json.dumps(r)


@needs_samples
def test_golden_rows_and_figures():
    r = parse_compiler_output((SAMPLES / "10_yolov5s_partial_tail_v16.log").read_text())
    assert r["kind"] == "op-log" and r["compiler_version"] == "16.0.384591198"
    assert len(r["operators"]) == 20
    assert r["operators"][0] == {"operator": "CONCATENATION", "count": 1, "status":
                                 "Operation is otherwise supported, but not mapped due to some "
                                 "unspecified limitation"}
    assert r["operators"][-1]["status"] == "Operation is otherwise supported, but not mapped " \
                                           "due to some unspecified limitation"
    c = parse_compiler_output((SAMPLES / "19_console_yolov5s_224_sa_two_subgraphs_v16.log")
                              .read_text())
    assert (c["subgraphs"], c["total_ops"], c["compile_ms"]) == (2, 294, 3173)
    assert c["off_chip_used_bytes"] == 1782579 and c["on_chip_remaining_bytes"] == 0
    assert c["succeeded"] is True and len(c["operators"]) == 17
    v2 = parse_compiler_output((SAMPLES / "25_console_resnet50_offchip_v2_0.log").read_text())
    assert v2["on_chip_available_bytes"] == to_bytes("6.25", "MiB")
    t = parse_compiler_output((SAMPLES / "22_console_mobilenetv2_frc_offchip_truncated_table_v16"
                                         ".log").read_text())
    assert t["truncated_table"] and len(t["operators"]) == 3
    flaky = parse_compiler_output((SAMPLES / "43_console_flaky_internal_error_then_success_v14_1"
                                             ".log").read_text())
    assert flaky["runs"] == 2 and flaky["flaky_internal_error"]


@needs_samples
def test_console_and_log_merge():
    m = parse_compiler_files(
        (SAMPLES / "20_console_efficientdet_lite_modelmaker_v16.log").read_text(),
        (SAMPLES / "21_efficientdet_lite_modelmaker_oplog_v16.log").read_text())
    assert (m["ops_on_tpu"], m["ops_on_cpu"]) == (264, 3) and m["disagreements"] == []
    assert len(m["operators"]) == 11 and m["on_chip_used_bytes"] == to_bytes("4.21", "MiB")
    bad = parse_compiler_files(
        (SAMPLES / "20_console_efficientdet_lite_modelmaker_v16.log").read_text(),
        (SAMPLES / "02_mobilenet_v2_quant_all_mapped_v16.log").read_text())
    assert bad["disagreements"] == ["ops_on_tpu: console 264 vs op log 72",
                                    "ops_on_cpu: console 3 vs op log 0"]


ALL_MAPPED = """Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 412 ms.

Input model: m.tflite
Input size: 276.73KiB
Output model: m_edgetpu.tflite
Output size: 402.11KiB
On-chip memory used for caching model parameters: 352.25KiB
On-chip memory remaining for caching model parameters: 7.61MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 14
Operation log: m_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def test_all_mapped_console_without_count_lines():
    r = parse_compiler_output(ALL_MAPPED)
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["total_ops"]) == (14, 0, 14)
    assert r["succeeded"] and r["error"] is None
    assert r["input_size_bytes"] == to_bytes("276.73", "KiB") == 283372


def test_units():
    assert to_bytes("1.70", "MiB") == 1782579
    assert to_bytes("0.00", "B") == 0 and to_bytes("1.75", "KiB") == 1792


def test_empty_and_op_version_errors():
    assert parse_compiler_output("")["error"]["kind"] == "other"
    text = ("Edge TPU Compiler version 16.0.384591198\nERROR: Didn't find op for builtin opcode "
            "'CONV_2D' version '6'. An older version of this builtin might be supported.\n\n"
            "ERROR: Registration failed.\n\nInvalid model: m.tflite\nModel could not be parsed\n")
    r = parse_compiler_output(text)
    assert r["error"]["kind"] == "op_version" and "CONV_2D' version '6'" in r["error"]["message"]
    assert "experimental_new_converter" in r["error"]["advice"]


@needs_samples
def test_parse_log_cli():
    f = SAMPLES / "02_mobilenet_v2_quant_all_mapped_v16.log"
    r = run_cli("benchmark.compile", "--parse-log", f)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ops_on_tpu"] == 72 and out["operators"][2] == {
        "operator": "CONV_2D", "count": 36, "status": "Mapped to Edge TPU"}
    bad = run_cli("benchmark.compile", "--parse-log", "/nonexistent.log")
    assert bad.returncode == 3 and "cannot read /nonexistent.log" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_without_compiler_the_analyzer_answers(tmp_path):
    model = ROOT / "models" / "signnet" / "full" / "signnet_int8.tflite"
    r = run_cli("benchmark.compile", model, "--out-dir", tmp_path,
                env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "edgetpu_compiler not found on PATH" in r.stderr
    assert "14 ops on the Edge TPU, 0 on the CPU (analyzer)" in r.stdout
    rec = json.loads((tmp_path / "signnet_int8_compile.json").read_text())
    assert rec["analyzer"]["ops_on_tpu"] == 14 and "compiler" not in rec


def _fake_compiler(bin_dir, console_text, log_text, fail_first=False):
    """A stand-in edgetpu_compiler: prints console_text and writes the op log into -o DIR."""
    script = bin_dir / "edgetpu_compiler"
    state = bin_dir / "calls"
    script.write_text(f"""#!{sys.executable}
import pathlib, sys
state = pathlib.Path({str(state)!r})
n = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(n))
if {fail_first!r} and n == 1:
    print("Edge TPU Compiler version 16.0.384591198\\n\\nInternal compiler error. Aborting! ")
    sys.exit(1)
args = sys.argv[1:]
out = pathlib.Path(args[args.index("-o") + 1])
model = pathlib.Path(args[-1])
(out / (model.stem + "_edgetpu.log")).write_text({log_text!r})
(out / (model.stem + "_edgetpu.tflite")).write_bytes(b"compiled")
print({console_text!r})
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return state


@needs_samples
@pytest.mark.parametrize("fail_first", [False, True])
def test_fake_compiler_path(tmp_path, fail_first):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = (
        "Edge TPU Compiler version 16.0.384591198\nInput: signnet_int8.tflite\n"
        "Output: signnet_int8_edgetpu.tflite\n\n"
        "Operator                       Count      Status\n\n"
        "QUANTIZE                       2          Mapped to Edge TPU\n"
        "CONV_2D                        4          Mapped to Edge TPU\n"
        "MAX_POOL_2D                    4          Mapped to Edge TPU\n"
        "RESHAPE                        1          Mapped to Edge TPU\n"
        "FULLY_CONNECTED                2          Mapped to Edge TPU\n"
        "SOFTMAX                        1          Mapped to Edge TPU\n")
    state = _fake_compiler(bin_dir, ALL_MAPPED, log, fail_first=fail_first)
    model = ROOT / "models" / "signnet" / "full" / "signnet_int8.tflite"
    out = tmp_path / "out"
    r = run_cli("benchmark.compile", model, "--out-dir", out, "-m", "13",
                env={"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert state.read_text() == ("2" if fail_first else "1")
    assert ("retrying once" in r.stderr) == fail_first
    rec = json.loads((out / "signnet_int8_compile.json").read_text())
    comp = rec["compiler"]
    assert comp["command"][:2] == ["edgetpu_compiler", "-s"] and "-m" in comp["command"]
    assert (comp["ops_on_tpu"], comp["ops_on_cpu"]) == (14, 0)
    assert len(comp["operators"]) == 6 and comp["analyzer_disagreements"] == []
    assert (out / "signnet_int8_compile_console.log").is_file()
