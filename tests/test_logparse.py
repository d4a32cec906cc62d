"""edgetpu_compiler output parser against every real sample, synthetic variants, and the CLI.

The real samples are read in place from ``../shared/edgetpu`` (never copied into the repo);
their tests skip when that folder is absent.
"""

import json
import os
import stat

import pytest

from benchmark.compile.logparse import (ADVICE, ERROR_KINDS, advice, parse_compiler_files,
                                        parse_compiler_output, to_bytes)
from conftest import ROOT, SHARED, run_cli

SAMPLES = SHARED / "edgetpu"
SIGNNET_INT8 = ROOT / "models" / "signnet" / "full" / "signnet_int8.tflite"
OTHERWISE = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
MAPPED = "Mapped to Edge TPU"

# From ../shared/edgetpu/README.md: file -> (kind, TPU, CPU, total, error kind, succeeded).
# None = the compiler printed no counts (a failed compile). Log 25 prints no count lines
# because all 77 ops map; log 43 holds two runs: 6 / 18 from the first, then an internal error.
EXPECTED = {
    "02_mobilenet_v2_quant_all_mapped_v16.log": ("op-log", 72, 0, 72, None, None),
    "06_resnet_float_io_quant_dequant_v2_1.log": ("op-log", 75, 2, 77, None, None),
    "08_float_model_unsupported_dtype_v16.log": ("op-log", 0, 4, 4, None, None),
    "10_yolov5s_partial_tail_v16.log": ("op-log", 242, 20, 262, None, None),
    "19_console_yolov5s_224_sa_two_subgraphs_v16.log": ("console", 289, 5, 294, None, True),
    "20_console_efficientdet_lite_modelmaker_v16.log": ("console", 264, 3, 267, None, True),
    "21_efficientdet_lite_modelmaker_oplog_v16.log": ("op-log", 264, 3, 267, None, None),
    "22_console_mobilenetv2_frc_offchip_truncated_table_v16.log":
        ("console", 138, 3, 141, None, True),
    "25_console_resnet50_offchip_v2_0.log": ("console", 77, 0, 77, None, True),
    "31_console_model_not_quantized_v15.log":
        ("console", None, None, None, "not_quantized", False),
    "33_console_internal_compiler_error_v2_0.log":
        ("console", None, None, None, "internal_error", False),
    "36_console_dynamic_sized_tensors_failed_v16.log":
        ("console", None, None, None, "dynamic_shapes", False),
    "43_console_flaky_internal_error_then_success_v14_1.log":
        ("console", 6, 18, 24, "internal_error", False),
}


@pytest.fixture
def samples():
    """The folder of real compiler outputs; skips the test when it is absent."""
    if not SAMPLES.is_dir():
        pytest.skip("../shared/edgetpu not present")
    return SAMPLES


def sample(samples, prefix: str) -> str:
    (path,) = samples.glob(f"{prefix}_*.log")
    return path.read_text()


def row(operator, count, status):
    return {"operator": operator, "count": count, "status": status}


# ---------------------------------------------------------------- real samples

def test_every_sample_is_covered(samples):
    assert {p.name for p in samples.glob("*.log")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_counts_and_errors(samples, name):
    kind, tpu, cpu, total, err, succeeded = EXPECTED[name]
    r = parse_compiler_output((samples / name).read_text())
    assert (r["kind"], r["ops_on_tpu"], r["ops_on_cpu"]) == (kind, tpu, cpu)
    assert r["total_ops"] == total
    assert (r["error"] or {}).get("kind") == err
    assert r["succeeded"] is succeeded
    if err:
        assert r["error"]["advice"] == advice(err) and r["error"]["message"]
    assert json.loads(json.dumps(r)) == r


def test_golden_oplog_rows(samples):
    r = parse_compiler_output(sample(samples, "02"))
    assert r["compiler_version"] == "16.0.384591198"
    assert r["input_model"] == "mobilenet_v2_1.0_224_quant.tflite"
    assert len(r["operators"]) == 8
    assert r["operators"][0] == row("QUANTIZE", 2, MAPPED)
    assert r["operators"][2] == row("CONV_2D", 36, MAPPED)
    assert r["operators"][-1] == row("DEPTHWISE_CONV_2D", 17, MAPPED)

    r = parse_compiler_output(sample(samples, "10"))
    assert len(r["operators"]) == 20
    assert r["operators"][0] == row("CONCATENATION", 1, OTHERWISE)
    assert r["operators"][2] == row("CONCATENATION", 1, "More than one subgraph is not supported")
    assert r["operators"][-1] == row("RESHAPE", 3, OTHERWISE)

    r = parse_compiler_output(sample(samples, "06"))
    assert r["compiler_version"] == "2.1.302470888"
    assert row("DEQUANTIZE", 1, "Operation is working on an unsupported data type") \
        in r["operators"]


def test_golden_console_rows_and_figures(samples):
    r = parse_compiler_output(sample(samples, "19"))
    assert len(r["operators"]) == 17 and not r["truncated_table"]
    assert r["operators"][0] == row("RESIZE_NEAREST_NEIGHBOR", 2, MAPPED)
    assert r["operators"][1] == row("CONCATENATION", 1, OTHERWISE)
    assert r["operators"][-1] == row("CONV_2D", 62, MAPPED)
    assert (r["subgraphs"], r["compile_ms"]) == (2, 3173)
    assert (r["input_size_bytes"], r["output_size_bytes"]) == (7728005, 8745124)
    assert (r["on_chip_used_bytes"], r["on_chip_remaining_bytes"], r["off_chip_used_bytes"]) \
        == (6375342, 0, 1782579)
    assert "on_chip_available_bytes" not in r
    assert r["warnings"] == []   # printed counts agree with the table's sums


def test_truncated_table_log22(samples):
    r = parse_compiler_output(sample(samples, "22"))
    assert r["truncated_table"] is True and r["compiler_version"] is None
    assert r["operators"] == [row("RESHAPE", 1, OTHERWISE), row("CONCATENATION", 1, OTHERWISE),
                              row("QUANTIZE", 1, OTHERWISE)]
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["total_ops"], r["subgraphs"]) == (138, 3, 141, 1)
    assert (r["on_chip_used_bytes"], r["on_chip_remaining_bytes"], r["off_chip_used_bytes"]) \
        == (7486833, 1792, 6952059)


def test_v2_0_available_memory_and_no_count_lines(samples):
    r = parse_compiler_output(sample(samples, "25"))
    assert r["compiler_version"] == "2.0.291256449"
    assert r["on_chip_available_bytes"] == r["on_chip_used_bytes"] == 6553600
    assert "on_chip_remaining_bytes" not in r
    assert r["off_chip_used_bytes"] == 19325256
    assert r["operators"] == [] and r["compile_ms"] == 2356


def test_error_samples(samples):
    nq = parse_compiler_output(sample(samples, "31"))
    assert nq["error"]["message"] == "Model not quantized"
    assert nq["error"]["lines"] == ["Invalid model: heehoo.tflite", "Model not quantized"]
    ie = parse_compiler_output(sample(samples, "33"))
    assert ie["error"]["message"] == "Internal compiler error. Aborting!"
    assert ie["runs"] == 1 and not ie["flaky_internal_error"]
    dyn = parse_compiler_output(sample(samples, "36"))
    assert dyn["error"]["message"].startswith("ERROR: Attempting to use a delegate")
    assert dyn["error"]["lines"][-1] == "Compilation failed!"


def test_flaky_log43_two_runs_in_one_paste(samples):
    r = parse_compiler_output(sample(samples, "43"))
    assert r["runs"] == 2 and r["internal_error_seen"] and r["flaky_internal_error"]
    assert [a["error"] for a in r["attempts"]] == [None, "internal_error"]
    # counts and figures from the complete (first) run, the error from the last
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["compile_ms"]) == (6, 18, 113)
    assert r["on_chip_used_bytes"] == 61440
    assert r["error"]["kind"] == "internal_error" and r["succeeded"] is False


def test_merge_console_and_oplog_of_one_compile(samples):
    m = parse_compiler_files(sample(samples, "20"), sample(samples, "21"))
    assert (m["ops_on_tpu"], m["ops_on_cpu"], m["total_ops"]) == (264, 3, 267)
    assert m["disagreements"] == [] and m["table_source"] == "op-log"
    assert m["sources"] == ["console", "op-log"]
    assert len(m["operators"]) == 11 and m["operators"][0] == row("ADD", 42, MAPPED)
    assert m["operators"][-1] == row("MAX_POOL_2D", 14, MAPPED)
    assert m["on_chip_used_bytes"] == to_bytes("4.21", "MiB") and m["succeeded"] is True


def test_merge_flags_a_log_of_another_compile(samples):
    bad = parse_compiler_files(sample(samples, "20"), sample(samples, "02"))
    assert bad["disagreements"] == [
        "ops_on_tpu: console 264 vs op log 72", "ops_on_cpu: console 3 vs op log 0",
        "input model: console efficientdet_coral_v2.tflite vs op log "
        "mobilenet_v2_1.0_224_quant.tflite"]
    assert (bad["ops_on_tpu"], bad["ops_on_cpu"]) == (264, 3)   # the console's totals win


def test_merge_flags_an_oplog_beside_a_failed_compile(samples):
    m = parse_compiler_files(sample(samples, "36"), sample(samples, "02"))
    assert m["error"]["kind"] == "dynamic_shapes" and m["ops_on_tpu"] is None
    assert any("failed compile" in d for d in m["disagreements"])


# ---------------------------------------------------------------- synthetic variants

ALL_MAPPED = """Edge TPU Compiler version 16.0.384591198
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

SIGNNET_OPLOG = """Edge TPU Compiler version 16.0.384591198
Input: signnet_int8.tflite
Output: signnet_int8_edgetpu.tflite

Operator                       Count      Status

QUANTIZE                       2          Mapped to Edge TPU
CONV_2D                        4          Mapped to Edge TPU
MAX_POOL_2D                    4          Mapped to Edge TPU
RESHAPE                        1          Mapped to Edge TPU
FULLY_CONNECTED                2          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
"""

HEAD = "Edge TPU Compiler version 16.0.384591198\n"
LARGE_ACTIVATIONS = """Started a compilation timeout timer of 180 seconds.
ERROR: Restored original execution plan after delegate application failure.
Compilation failed: Compilation failed due to large activation tensors in model.
Compilation child process completed within timeout period.
""" + "Compilation failed! \n"
INTERNAL = HEAD + "\nInternal compiler error. Aborting! \n"
NOT_QUANTIZED = "Edge TPU Compiler version 16.0.384591198\nInvalid model: m.tflite\n" \
                "Model not quantized\n"


def test_all_mapped_console_without_count_lines():
    r = parse_compiler_output(ALL_MAPPED)
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["total_ops"]) == (14, 0, 14)
    assert r["succeeded"] is True and r["error"] is None and r["kind"] == "console"
    assert r["input_size_bytes"] == to_bytes("276.73", "KiB") == 283372
    assert r["off_chip_used_bytes"] == 0 and r["on_chip_remaining_bytes"] == 7979663


def test_not_all_mapped_without_counts_is_not_taken_as_all_mapped():
    text = ALL_MAPPED.replace("See the operation", "Model successfully compiled but not all "
                              "operations are supported by the Edge TPU.\nSee the operation")
    r = parse_compiler_output(text)
    assert r["ops_on_tpu"] is None and r["total_ops"] == 14


def test_memory_units():
    assert to_bytes("1.70", "MiB") == 1782579
    assert to_bytes("0.00", "B") == 0
    assert to_bytes("1.75", "KiB") == 1792
    assert to_bytes("512", "B") == 512
    assert to_bytes("1.00", "GiB") == 1024 ** 3


def test_paragraph_wrapped_at_72_columns():
    text = HEAD + """
Model compiled successfully in 113 ms.

Input model: m.tflite
Total number of operations: 24

Model successfully compiled but not all operations are supported by the
Edge TPU. A percentage of the model will instead run on the CPU, which is
slower. If possible, consider updating your model to use only operations
supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 6
Number of operations that will run on CPU: 18
See the operation log file for individual operation details.
"""
    assert all(len(x) <= 73 for x in text.splitlines())   # as pasted in log 43
    r = parse_compiler_output(text)
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["total_ops"]) == (6, 18, 24)
    assert r["succeeded"] is True and r["error"] is None


def test_wrapped_error_lines_and_table_row():
    text = HEAD + """Started a compilation timeout timer of 180 seconds.
ERROR: Restored original execution plan after delegate application
failure.
Compilation failed: Compilation failed due to large activation tensors
in model.
Compilation failed!
"""
    r = parse_compiler_output(text)
    assert r["error"]["kind"] == "large_activations"
    assert r["error"]["message"] == ("Compilation failed: Compilation failed due to large "
                                     "activation tensors in model.")
    log = SIGNNET_OPLOG.replace(
        "SOFTMAX                        1          Mapped to Edge TPU",
        "SOFTMAX                        1          Operation is otherwise supported,\n"
        "but not mapped due to some unspecified limitation")
    r = parse_compiler_output(log)
    assert r["operators"][-1] == row("SOFTMAX", 1, OTHERWISE)
    assert (r["ops_on_tpu"], r["ops_on_cpu"]) == (13, 1)


def test_whitespace_variants_of_the_table():
    text = ("Edge TPU Compiler version 16.0.384591198\r\nInput: m.tflite\r\n"
            "Output: m_edgetpu.tflite\r\n\r\nOperator\tCount\tStatus\r\n\r\n"
            "CONV_2D\t4\tMapped to Edge TPU\r\n"
            "  DEQUANTIZE  1   Operation is working on an unsupported data type  \r\n")
    r = parse_compiler_output(text)
    assert r["kind"] == "op-log" and r["succeeded"] is None
    assert r["operators"] == [row("CONV_2D", 4, MAPPED),
                              row("DEQUANTIZE", 1,
                                  "Operation is working on an unsupported data type")]
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["total_ops"]) == (4, 1, 5)


@pytest.mark.parametrize("text, kind, message", [
    (NOT_QUANTIZED, "not_quantized", "Model not quantized"),
    (HEAD + "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version "
     "of this builtin might be supported. Are you using an old TFLite binary with a newer "
     "model?\n\nERROR: Registration failed.\n\nInvalid model: m.tflite\n"
     "Model could not be parsed\n", "op_version",
     "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of "
     "this builtin might be supported. Are you using an old TFLite binary with a newer model?"),
    (HEAD + "ERROR: Op builtin_code out of range: 151. Are you using old TFLite binary with "
     "newer model?\nERROR: Registration failed.\n\nInvalid model: m.tflite\n"
     "Model could not be parsed\n", "op_version",
     "ERROR: Op builtin_code out of range: 151. Are you using old TFLite binary with newer "
     "model?"),
    (HEAD + "Started a compilation timeout timer of 180 seconds.\nERROR: Attempting to use a "
     "delegate that only supports static-sized tensors with a graph that has dynamic-sized "
     "tensors.\nCompilation failed: Model failed in Tflite interpreter. Please ensure model "
     "can be loaded/run in Tflite interpreter.\nCompilation failed! \n", "dynamic_shapes",
     "ERROR: Attempting to use a delegate that only supports static-sized tensors with a "
     "graph that has dynamic-sized tensors."),
    (HEAD + LARGE_ACTIVATIONS, "large_activations",
     "Compilation failed: Compilation failed due to large activation tensors in model."),
    (INTERNAL, "internal_error", "Internal compiler error. Aborting!"),
    (HEAD + "Invalid model: m.tflite\nModel could not be parsed\n", "unparseable_model",
     "Invalid model: m.tflite"),
    (HEAD + "Started a compilation timeout timer of 180 seconds.\nlibc++abi: terminating "
     "with uncaught exception of type std::out_of_range: vector\n", "other",
     "libc++abi: terminating with uncaught exception of type std::out_of_range: vector"),
    (HEAD + "Started a compilation timeout timer of 180 seconds.\nCompilation child process "
     "completed within timeout period.\nCompilation failed! \n", "other",
     "Compilation failed!"),
    ("", "other", "no edgetpu_compiler output found"),
    ("just some text\n", "other", "no edgetpu_compiler output found"),
])
def test_error_classification(text, kind, message):
    r = parse_compiler_output(text)
    assert r["error"]["kind"] == kind and r["error"]["message"] == message
    assert r["succeeded"] is False and r["error"]["advice"] == advice(kind)


def test_advice_for_every_kind():
    assert set(ADVICE) == set(ERROR_KINDS) and advice(None) == ""
    assert "representative dataset" in advice("not_quantized")
    assert "experimental_new_converter = False" in advice("op_version")
    assert "older TensorFlow" in advice("op_version")
    assert "batch of 1" in advice("dynamic_shapes")
    assert "input resolution" in advice("large_activations")
    assert "split the model" in advice("large_activations")
    assert "retry once" in advice("internal_error") and "-a" in advice("internal_error")
    assert "-m" in advice("internal_error")
    assert advice("no_such_kind") == advice("other")


def test_search_delegate_attempts_end_in_success():
    text = ("Edge TPU: starting export with Edge TPU compiler 16.0.384591198...\n" + HEAD
            + "Searching for valid delegate with step 10\nTry to compile segment with 20 ops\n"
            + LARGE_ACTIVATIONS
            + "Try to compile segment with 14 ops\nIntermediate tensors: a,b\n"
            + ALL_MAPPED.replace(HEAD, ""))
    r = parse_compiler_output(text)
    assert [a["error"] for a in r["attempts"]] == ["large_activations", None]
    assert r["error"] is None and r["succeeded"] is True and r["runs"] == 1
    assert (r["ops_on_tpu"], r["ops_on_cpu"]) == (14, 0)


def test_internal_error_then_success_is_flaky_but_succeeded():
    r = parse_compiler_output(INTERNAL + "$ edgetpu_compiler m.tflite\n" + ALL_MAPPED)
    assert r["runs"] == 2 and r["flaky_internal_error"] and r["internal_error_seen"]
    assert r["error"] is None and r["succeeded"] is True and r["ops_on_tpu"] == 14
    twice = parse_compiler_output(INTERNAL + INTERNAL)
    assert twice["internal_error_seen"] and not twice["flaky_internal_error"]


def test_version_only_output_is_unknown():
    r = parse_compiler_output("Edge TPU Compiler version 15.0.340273435\n")
    assert r["succeeded"] is None and r["error"] is None and r["ops_on_tpu"] is None


def test_table_and_printed_counts_mismatch_is_warned():
    text = ALL_MAPPED.replace("See the operation log file for individual operation details.\n",
                              "Number of operations that will run on Edge TPU: 13\n"
                              "Number of operations that will run on CPU: 1\n\n"
                              + SIGNNET_OPLOG.split("\n\n", 1)[1])
    r = parse_compiler_output(text)
    assert (r["ops_on_tpu"], r["ops_on_cpu"]) == (13, 1)   # printed counts win
    assert r["warnings"] == ["the table sums to 14 mapped / 0 unmapped, the console says 13 / 1"]


def test_merge_truncated_console_with_oplog():
    console = ALL_MAPPED.replace(
        "See the operation log file for individual operation details.\n",
        "Model successfully compiled but not all operations are supported by the Edge TPU.\n"
        "Number of operations that will run on Edge TPU: 13\n"
        "Number of operations that will run on CPU: 1\n\n"
        "Operator                       Count      Status\n\n"
        f"SOFTMAX                        1          {OTHERWISE}\n"
        "... All other operators were mapped successfully. See signnet_int8_edgetpu.log.\n")
    log = SIGNNET_OPLOG.replace("SOFTMAX                        1          Mapped to Edge TPU",
                                f"SOFTMAX                        1          {OTHERWISE}")
    c = parse_compiler_output(console)
    assert c["truncated_table"] and (c["ops_on_tpu"], c["ops_on_cpu"]) == (13, 1)
    m = parse_compiler_files(console, log)
    assert m["disagreements"] == [] and not m["truncated_table"]
    assert len(m["operators"]) == 6 and m["table_source"] == "op-log"
    other = parse_compiler_files(console, SIGNNET_OPLOG)
    assert "the console's unmapped rows differ from the op log's" in other["disagreements"]
    assert "ops_on_tpu: console 13 vs op log 14" in other["disagreements"]


def test_merge_needs_some_text():
    with pytest.raises(ValueError):
        parse_compiler_files()
    only_log = parse_compiler_files(log_text=SIGNNET_OPLOG)
    assert only_log["kind"] == "op-log" and only_log["disagreements"] == []
    assert only_log["table_source"] == "op-log"


# ---------------------------------------------------------------- CLI: --parse-log

def test_parse_log_cli(tmp_path):
    f = tmp_path / "m_edgetpu.log"
    f.write_text(SIGNNET_OPLOG)
    r = run_cli("benchmark.compile", "--parse-log", f)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["ops_on_tpu"], out["ops_on_cpu"], out["kind"]) == (14, 0, "op-log")
    assert r.stdout.startswith('{\n  "compiler_version"')   # indent 2
    c = tmp_path / "console.txt"
    c.write_text(ALL_MAPPED)
    r = run_cli("benchmark.compile", "--parse-log", f, "--console", c)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["disagreements"] == [] and len(out["operators"]) == 6
    assert out["sources"] == ["console", "op-log"] and out["compile_ms"] == 412


def test_parse_log_cli_on_a_real_sample(samples):
    r = run_cli("benchmark.compile", "--parse-log",
                samples / "22_console_mobilenetv2_frc_offchip_truncated_table_v16.log")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["ops_on_tpu"], out["ops_on_cpu"], out["total_ops"], out["subgraphs"]) == \
        (138, 3, 141, 1)
    assert (out["on_chip_used_bytes"], out["off_chip_used_bytes"]) == (7486833, 6952059)
    assert out["truncated_table"] is True


@pytest.mark.parametrize("args", [("--parse-log", "/nonexistent/m_edgetpu.log"),
                                  ("--parse-log", "{tmp}", ),
                                  ("--parse-log", "{tmp}/ok.log", "--console", "/nonexistent.txt")])
def test_parse_log_cli_unreadable_file(tmp_path, args):
    (tmp_path / "ok.log").write_text(SIGNNET_OPLOG)
    r = run_cli("benchmark.compile", *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 3 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("benchmark.compile: error: cannot read ")
    assert "Traceback" not in r.stderr


def test_models_and_parse_log_together_is_a_usage_error(tmp_path):
    r = run_cli("benchmark.compile", SIGNNET_INT8, "--parse-log", tmp_path / "x.log")
    assert r.returncode == 2 and "not both" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- CLI: compiling

FAKE_COMPILER = """#!/bin/sh
# Stand-in for edgetpu_compiler: records its arguments, prints $FAKE_CONSOLE and copies
# $FAKE_OPLOG to <out>/<stem>_edgetpu.log; the first $FAIL_FIRST calls hit an internal error.
n=$(cat "$FAKE_STATE" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$FAKE_STATE"
echo "$*" >> "$FAKE_STATE.args"
out=.
model=
while [ $# -gt 0 ]; do
    case "$1" in
        -o) out=$2; shift ;;
        -m|-n|-t) shift ;;
        -*) ;;
        *) model=$1 ;;
    esac
    shift
done
stem=$(basename "$model" .tflite)
if [ "$n" -le "${FAIL_FIRST:-0}" ]; then
    printf 'Edge TPU Compiler version 16.0.384591198\\n\\nInternal compiler error. Aborting! \\n'
    exit 1
fi
cat "$FAKE_CONSOLE"
if [ -n "$FAKE_OPLOG" ]; then cp "$FAKE_OPLOG" "$out/${stem}_edgetpu.log"; fi
if [ "${FAKE_RC:-0}" -eq 0 ]; then printf 'compiled' > "$out/${stem}_edgetpu.tflite"; fi
exit "${FAKE_RC:-0}"
"""


@pytest.fixture
def fake_compiler(tmp_path):
    """Put a fake ``edgetpu_compiler`` first on PATH; returns a runner and its state file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "edgetpu_compiler"
    script.write_text(FAKE_COMPILER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "calls"

    def run(console_text, oplog_text=None, *args, fail_first=0, rc=0):
        (tmp_path / "console.txt").write_text(console_text)
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
               "FAKE_STATE": str(state), "FAKE_CONSOLE": str(tmp_path / "console.txt"),
               "FAKE_OPLOG": "", "FAIL_FIRST": str(fail_first), "FAKE_RC": str(rc)}
        if oplog_text is not None:
            (tmp_path / "oplog.txt").write_text(oplog_text)
            env["FAKE_OPLOG"] = str(tmp_path / "oplog.txt")
        return run_cli("benchmark.compile", SIGNNET_INT8, *args, env=env)

    run.state = state
    return run


@pytest.mark.parametrize("fail_first", [0, 1])
def test_fake_compiler_path(tmp_path, fake_compiler, fail_first):
    out = tmp_path / "out"
    r = fake_compiler(ALL_MAPPED, SIGNNET_OPLOG, "--out-dir", out, "-m", "13",
                      fail_first=fail_first)
    assert r.returncode == 0, r.stdout + r.stderr
    calls = 1 + fail_first
    assert fake_compiler.state.read_text().strip() == str(calls)
    args = (tmp_path / "calls.args").read_text().splitlines()
    assert args == [f"-s -o {out} -m 13 {SIGNNET_INT8}"] * calls
    assert ("retrying once" in r.stderr) == bool(fail_first)
    assert "signnet_int8.tflite: 14 ops on the Edge TPU, 0 on the CPU (compiler)" in r.stdout
    rec = json.loads((out / "signnet_int8_compile.json").read_text())
    comp = rec["compiler"]
    assert comp["command"][:4] == ["edgetpu_compiler", "-s", "-o", str(out)]
    assert (comp["ops_on_tpu"], comp["ops_on_cpu"], comp["total_ops"]) == (14, 0, 14)
    assert len(comp["operators"]) == 6 and comp["table_source"] == "op-log"
    assert comp["disagreements"] == [] and comp["analyzer_disagreements"] == []
    assert comp["error"] is None and comp["succeeded"] is True
    assert comp["flaky_internal_error"] == bool(fail_first)
    assert comp["attempts_run"] == calls and comp["op_log"].endswith("signnet_int8_edgetpu.log")
    saved = (out / "signnet_int8_compile_console.log").read_text()
    assert saved.count("Edge TPU Compiler version") == calls
    assert parse_compiler_output(saved)["ops_on_tpu"] == 14   # the saved console re-parses


def test_fake_compiler_with_real_sample_pair(tmp_path, fake_compiler, samples):
    out = tmp_path / "out"
    r = fake_compiler(sample(samples, "20"), sample(samples, "21"), "--out-dir", out, "--json",
                      "-t", "600")
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(r.stdout)
    assert rec == json.loads((out / "signnet_int8_compile.json").read_text())
    comp = rec["compiler"]
    assert "-t 600" in " ".join(comp["command"])
    assert (comp["ops_on_tpu"], comp["ops_on_cpu"], comp["total_ops"]) == (264, 3, 267)
    assert len(comp["operators"]) == 11 and comp["disagreements"] == []
    # the fake compiled a different model than the one given: the analyzer says so
    assert "ops_on_tpu: compiler 264, analyzer 14" in comp["analyzer_disagreements"]


def test_fake_compiler_failure_ignores_a_stale_oplog(tmp_path, fake_compiler):
    out = tmp_path / "out"
    out.mkdir()
    (out / "signnet_int8_edgetpu.log").write_text(SIGNNET_OPLOG)   # from an earlier compile
    r = fake_compiler(NOT_QUANTIZED, None, "--out-dir", out, rc=1)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "error (not_quantized): Model not quantized" in r.stdout
    assert "try: convert with full-integer post-training quantization" in r.stdout
    comp = json.loads((out / "signnet_int8_compile.json").read_text())["compiler"]
    assert comp["op_log"] is None and comp["operators"] == [] and comp["ops_on_tpu"] is None
    assert comp["returncode"] == 1 and comp["attempts_run"] == 1


def test_fake_compiler_persistent_internal_error_is_retried_once(tmp_path, fake_compiler):
    out = tmp_path / "out"
    r = fake_compiler(ALL_MAPPED, SIGNNET_OPLOG, "--out-dir", out, fail_first=5)
    assert r.returncode == 1
    assert fake_compiler.state.read_text().strip() == "2"
    comp = json.loads((out / "signnet_int8_compile.json").read_text())["compiler"]
    assert comp["error"]["kind"] == "internal_error" and not comp["flaky_internal_error"]
    assert comp["error"]["advice"].startswith("known to be flaky: retry once")


def test_fake_compiler_nonzero_exit_without_message(tmp_path, fake_compiler):
    out = tmp_path / "out"
    r = fake_compiler(HEAD, None, "--out-dir", out, rc=3)
    assert r.returncode == 1
    comp = json.loads((out / "signnet_int8_compile.json").read_text())["compiler"]
    assert comp["error"]["kind"] == "other"
    assert comp["error"]["message"] == "edgetpu_compiler exited with code 3"


def test_without_compiler_the_analyzer_answers(tmp_path):
    r = run_cli("benchmark.compile", SIGNNET_INT8, "--out-dir", tmp_path,
                env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "edgetpu_compiler not found on PATH" in r.stderr
    assert "14 ops on the Edge TPU, 0 on the CPU (analyzer)" in r.stdout
    rec = json.loads((tmp_path / "signnet_int8_compile.json").read_text())
    assert rec["analyzer"]["ops_on_tpu"] == 14 and "compiler" not in rec


def test_missing_model_file(tmp_path):
    r = run_cli("benchmark.compile", tmp_path / "nope.tflite", env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 3 and "model file not found" in r.stderr
    assert "Traceback" not in r.stderr
