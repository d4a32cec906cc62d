"""CompileConfig: typed options from the (unchanged) command line, validation naming the option."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from benchmark.compile.__main__ import compiler_command
from benchmark.compile.config import (COMPILER_DEFAULT_TIMEOUT, CompileConfig, build_parser,
                                      parse_args)
from benchmark.errors import UsageError


def test_defaults():
    cfg = parse_args(["m.tflite"])
    assert cfg == CompileConfig(models=(Path("m.tflite"),))
    assert cfg.timeout_sec == COMPILER_DEFAULT_TIMEOUT == 180 and cfg.out_dir is None
    assert not cfg.parse_only


def test_short_and_long_options_are_backward_compatible():
    short = parse_args(["a.tflite", "b.tflite", "-o", "out", "-m", "13", "-n", "2", "-a",
                        "-t", "600", "--analyze-only", "--json"])
    long = parse_args(["a.tflite", "b.tflite", "--out-dir", "out", "--min-runtime-version", "13",
                       "--num-segments", "2", "--enable-multiple-subgraphs", "--timeout-sec",
                       "600", "--analyze-only", "--json"])
    assert short == long == CompileConfig(
        models=(Path("a.tflite"), Path("b.tflite")), out_dir=Path("out"), min_runtime_version=13,
        num_segments=2, enable_multiple_subgraphs=True, timeout_sec=600, analyze_only=True,
        json=True)
    assert compiler_command(short, Path("a.tflite"), Path("out")) == [
        "edgetpu_compiler", "-s", "-o", "out", "-t", "600", "-m", "13", "-n", "2", "-a",
        "a.tflite"]
    assert compiler_command(parse_args(["a.tflite"]), Path("a.tflite"), Path("o")) == [
        "edgetpu_compiler", "-s", "-o", "o", "a.tflite"]


def test_parse_log_mode():
    cfg = parse_args(["--parse-log", "x.log", "--console", "c.txt"])
    assert cfg.parse_only and cfg.parse_log == Path("x.log") and cfg.console == Path("c.txt")


@pytest.mark.parametrize("kwargs, message", [
    ({"num_segments": 0}, "--num-segments must be at least 1, got 0"),
    ({"min_runtime_version": -1}, "--min-runtime-version must be at least 1, got -1"),
    ({"timeout_sec": 0}, "--timeout-sec must be at least 1, got 0"),
    ({"timeout_sec": None}, "--timeout-sec must be a whole number, got None"),
    ({"num_segments": "2"}, "--num-segments must be a whole number, got '2'"),
    ({"num_segments": True}, "--num-segments must be a whole number, got True"),
    ({"json": "yes"}, "--json is a flag"),
    ({"models": (Path("m.tflite"),), "console": Path("c")}, "not both"),
])
def test_validate_names_the_option(kwargs, message):
    with pytest.raises(UsageError, match=message):
        CompileConfig(**kwargs).validate()


def test_parser_errors_stay_argparse_errors(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["-t", "soon"])
    assert e.value.code == 2 and "invalid int value: 'soon'" in capsys.readouterr().err


def test_resolved_out_dir(tmp_path, monkeypatch):
    assert CompileConfig(out_dir=Path("given")).resolved_out_dir() == Path("given")
    monkeypatch.chdir(tmp_path)
    now = datetime(2026, 12, 1, 23, 59, 1, tzinfo=timezone.utc)
    first = CompileConfig().resolved_out_dir(now)
    assert first == Path("runs/compile-20261201-235901") and not first.exists()
    first.mkdir(parents=True)
    assert CompileConfig().resolved_out_dir(now) == Path("runs/compile-20261201-235901-2")


def test_inspect_option():
    cfg = parse_args(["--inspect", "a_edgetpu.tflite", "b_edgetpu.tflite", "--json"])
    assert cfg.inspect == (Path("a_edgetpu.tflite"), Path("b_edgetpu.tflite")) and cfg.json
    assert not cfg.models and not cfg.parse_only
    with pytest.raises(UsageError, match="--inspect reads compiled models on its own"):
        parse_args(["m.tflite", "--inspect", "a_edgetpu.tflite"])
    with pytest.raises(UsageError, match="--inspect"):
        parse_args(["--inspect", "a_edgetpu.tflite", "--parse-log", "x.log"])
