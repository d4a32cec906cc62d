"""The compiler-log parser never guesses: cut rows, cut tables, UTF-16, NULs, ANSI codes."""

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from benchmark.compile import logparse
from benchmark.compile.logparse import parse_compiler_files, parse_compiler_output

SHARED = Path(__file__).resolve().parents[2] / "shared" / "edgetpu"
OPLOG = """Edge TPU Compiler version 16.0.384591198
Input: m.tflite
Output: m_edgetpu.tflite

Operator                       Count      Status

CONV_2D                        5          Mapped to Edge TPU
QUANTIZE                       1          Mapped to Edge TPU
SOFTMAX                        1          Operation is working on an unsupported data type
"""


def test_complete_log_is_trusted():
    r = parse_compiler_output(OPLOG)
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["counts_trusted"]) == (6, 1, True)
    assert r["warnings"] == []


def test_row_cut_mid_status_is_not_a_cpu_op():
    cut = OPLOG.replace("SOFTMAX                        1          Operation is working on an "
                        "unsupported data type\n", "SOFTMAX                        1          "
                        "Mapped to Ed\n")
    r = parse_compiler_output(cut)
    assert (r["ops_on_tpu"], r["ops_on_cpu"]) == (6, 0)
    assert r["counts_trusted"] is False
    assert any("cut mid-status" in w and "SOFTMAX" in w for w in r["warnings"])


@pytest.mark.parametrize("cut", ["SOFTMAX", "SOFTMAX                        1"])
def test_row_without_status_is_flagged(cut):
    text = OPLOG.rsplit("SOFTMAX", 1)[0] + cut + "\n"
    r = parse_compiler_output(text)
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["counts_trusted"]) == (6, 0, False)
    assert any("without a status" in w for w in r["warnings"])


def test_table_cut_without_final_newline_is_untrusted():
    text = OPLOG.rstrip("\n").rsplit("\n", 1)[0]  # the SOFTMAX row gone, no final newline
    r = parse_compiler_output(text)
    assert r["ops_on_tpu"] == 6
    assert r["counts_trusted"] is False
    assert any("may be cut" in w for w in r["warnings"])


def test_unknown_status_is_counted_as_unmapped_with_a_warning():
    r = parse_compiler_output(OPLOG + "MEAN                           2          Some new reason\n")
    assert r["ops_on_cpu"] == 3
    assert any("unknown operator status" in w for w in r["warnings"])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_bytes_parse_like_utf8(encoding):
    r = parse_compiler_output(OPLOG.encode(encoding))
    assert (r["ops_on_tpu"], r["ops_on_cpu"], r["counts_trusted"]) == (6, 1, True)
    assert any("UTF-16" in w for w in r["warnings"])


def test_nul_and_ansi_and_crlf_are_removed():
    dirty = "\x1b[1m" + OPLOG.replace("\n", "\r\n").replace("CONV_2D", "CONV_2D\x00", 1) + "\x1b[0m"
    r = parse_compiler_output(dirty)
    assert (r["ops_on_tpu"], r["ops_on_cpu"]) == (6, 1)
    assert r["warnings"] == ["removed 1 NUL characters"]


def test_merge_keeps_the_logs_distrust():
    console = ("Edge TPU Compiler version 16.0.384591198\nModel compiled successfully in 5 ms.\n"
               "Input model: m.tflite\nOutput model: m_edgetpu.tflite\n")
    cut = OPLOG.replace("Operation is working on an unsupported data type", "Operation is")
    r = parse_compiler_files(console, cut)
    assert r["counts_trusted"] is False
    assert any(w.startswith("op log: ") for w in r["warnings"])


def test_cli_reads_a_utf16_log(tmp_path, capsys):
    import json
    from benchmark.compile.__main__ import main
    p = tmp_path / "m_edgetpu.log"
    p.write_bytes(OPLOG.encode("utf-16"))
    assert main(["--parse-log", str(p)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["ops_on_tpu"], out["ops_on_cpu"], out["counts_trusted"]) == (6, 1, True)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/edgetpu (real compiler logs) absent")
def test_real_logs_are_trusted_and_warning_free_of_cuts():
    for path in sorted(SHARED.glob("*.log")):
        r = parse_compiler_output(path.read_bytes())
        assert r["counts_trusted"], path.name
        assert not any("cut" in w for w in r["warnings"]), (path.name, r["warnings"])


# -- property tests: never raises, counts never exceed what the rows say -------------------

_lines = st.lists(st.sampled_from(OPLOG.splitlines() + [
    "Model compiled successfully in 3 ms.", "Number of operations that will run on CPU: 1",
    "Internal compiler error. Aborting!", "... All other operators were mapped successfully",
    "\x00", "\x1b[31m", "", "CONV_2D 3", "Compilation failed!"]), max_size=30)


@settings(max_examples=150, deadline=None)
@given(_lines, st.booleans())
def test_parser_total_on_random_line_mixes(lines, final_newline):
    text = "\n".join(lines) + ("\n" if final_newline else "")
    r = parse_compiler_output(text)
    assert isinstance(r["warnings"], list)
    assert isinstance(r["counts_trusted"], bool)
    for key in ("ops_on_tpu", "ops_on_cpu"):
        assert r[key] is None or r[key] >= 0


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_parser_total_on_arbitrary_bytes(data):
    r = parse_compiler_output(data)
    assert r["succeeded"] in (True, False, None)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=len(OPLOG)))
def test_any_truncation_never_overcounts(cut):
    r = parse_compiler_output(OPLOG[:cut])
    tpu, cpu = r["ops_on_tpu"] or 0, r["ops_on_cpu"] or 0
    assert tpu <= 6 and cpu <= 1
    start = OPLOG.index("CONV_2D")
    inside_a_row = start < cut < len(OPLOG) and OPLOG[cut - 1] != "\n"
    if inside_a_row:  # the cut lands inside a table row: the parser must say so
        assert r["counts_trusted"] is False


def test_decode_log_reports_replacements():
    assert logparse.decode_log(b"\xff\xfeA\x00")[0] == "A"
