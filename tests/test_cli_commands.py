"""edgetpu-bench <command>: one console script over every module's main(argv)."""

import subprocess
import sys

import pytest

from benchmark import commands
from benchmark.commands import COMMANDS, main
from conftest import ROOT

INT8 = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"
EXPECTED = ["clean", "compile", "convert", "devices", "diagnose", "latency", "modelcard", "paper",
            "report", "run", "study", "train"]


def test_the_registry_holds_every_command_lazily():
    assert COMMANDS.names() == EXPECTED
    assert set(commands.SUMMARIES) == set(EXPECTED)


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: edgetpu-bench <command> [args]")
    for name in EXPECTED:
        assert f"\n  {name} " in out
    assert main(["-h"]) == 0 and capsys.readouterr().out == out


def test_no_arguments_lists_the_commands_exit_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: edgetpu-bench" in err and "  compile " in err


def test_unknown_command_is_one_line_exit_2(capsys):
    assert main(["bogus", "--x"]) == 2
    err = capsys.readouterr().err
    assert err == ("edgetpu-bench: error: unknown command 'bogus'; available: "
                   + ", ".join(EXPECTED) + "\n")


def test_a_registered_command_runs_with_its_prog(capsys):
    from benchmark.cli import prog_name
    seen = {}

    def fake(argv):
        seen.update(argv=argv, prog=prog_name("python -m fake"))
        if argv == ["fail"]:
            raise TypeError("oops")
        return 5

    COMMANDS.register("fake", fake)
    try:
        assert main(["fake", "a", "--b"]) == 5
        assert seen == {"argv": ["a", "--b"], "prog": "edgetpu-bench fake"}
        assert main(["fake", "fail"]) == 1
        assert capsys.readouterr().err.startswith("edgetpu-bench fake: internal error: TypeError")
        assert "fake" in commands.usage()
    finally:
        COMMANDS.unregister("fake")
    assert prog_name("python -m fake") == "python -m fake"


def test_compile_via_the_command(tmp_path, capsys):
    assert main(["compile", str(INT8), "--analyze-only", "-o", str(tmp_path)]) == 0
    assert "14 ops on the Edge TPU, 0 on the CPU (analyzer)" in capsys.readouterr().out
    assert (tmp_path / "signnet_int8_compile.json").is_file()
    assert main(["compile", str(tmp_path / "missing.tflite")]) == 3
    assert capsys.readouterr().err.startswith("edgetpu-bench compile: error: model file not found")


def test_subcommand_help_and_argparse_errors_return_codes(capsys):
    assert main(["compile", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: edgetpu-bench compile ")
    assert main(["latency", "--no-such-option"]) == 2
    assert "edgetpu-bench latency: error: the following arguments are required: model" in \
        capsys.readouterr().err


def test_version(capsys):
    from benchmark import __version__
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"edgetpu-bench {__version__}\n"


def test_run_help_via_python_m():
    r = subprocess.run([sys.executable, "-m", "benchmark.commands", "run", "--help"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: ") and "--model" in r.stdout


@pytest.mark.parametrize("module", ["benchmark.compile", "benchmark.latency"])
def test_python_m_entry_points_still_work(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: python -m {module}")


def test_listing_imports_no_command_module():
    code = ("import sys; from benchmark.commands import main; main(['--help']); "
            "print(sorted(m for m in ('benchmark.run', 'benchmark.train', 'benchmark.convert', "
            "'benchmark.compile.__main__', 'benchmark.report', 'benchmark.latency', "
            "'benchmark.paper', 'benchmark.modelcard', 'tensorflow') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "[]"
