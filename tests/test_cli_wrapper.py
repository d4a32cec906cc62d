"""benchmark.cli.main_wrapper: user errors are one line with their exit code, bugs say so."""

import pytest

from benchmark.cli import main_wrapper
from benchmark.errors import BackendUnavailable, DataError, UsageError


def _raising(exc):
    def main(argv):
        raise exc
    return main


@pytest.fixture(autouse=True)
def no_debug(monkeypatch):
    monkeypatch.delenv("EDGETPU_BENCH_DEBUG", raising=False)


@pytest.mark.parametrize("exc, code", [(UsageError("bad --x"), 2), (DataError("no file"), 3),
                                       (BackendUnavailable("no tpu"), 4)])
def test_bench_errors_keep_their_exit_code(capsys, exc, code):
    assert main_wrapper("prog", _raising(exc)) == code
    err = capsys.readouterr().err
    assert err == f"prog: error: {exc}\n"


@pytest.mark.parametrize("cls, errno_, reason", [
    (FileNotFoundError, 2, "No such file or directory"),
    (PermissionError, 13, "Permission denied"),
    (IsADirectoryError, 21, "Is a directory"),
    (NotADirectoryError, 20, "Not a directory"),
    (FileExistsError, 17, "File exists")])
def test_file_errors_name_the_file_exit_3(capsys, cls, errno_, reason):
    assert main_wrapper("prog", _raising(cls(errno_, reason, "/data/m.tflite"))) == 3
    assert capsys.readouterr().err == f"prog: error: /data/m.tflite: {reason}\n"


@pytest.mark.parametrize("errno_, reason", [(28, "No space left on device"),
                                            (122, "Disk quota exceeded"),
                                            (30, "Read-only file system")])
def test_full_or_read_only_file_system_is_exit_3(capsys, errno_, reason):
    assert main_wrapper("prog", _raising(OSError(errno_, reason, "/runs/a/x.npz"))) == 3
    assert capsys.readouterr().err == f"prog: error: /runs/a/x.npz: {reason}\n"


def test_real_missing_file_is_exit_3(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert main_wrapper("prog", lambda argv: missing.read_text()) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "internal error" not in err


@pytest.mark.parametrize("exc", [ValueError("could not convert"), TypeError("bad operand"),
                                 KeyError("k"), AttributeError("no attr"),
                                 OSError(5, "Input/output error")])
def test_other_exceptions_are_bugs_exit_1(capsys, exc):
    assert main_wrapper("prog", _raising(exc)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"prog: internal error: {type(exc).__name__}: ")
    assert err.endswith("(this is a bug; set EDGETPU_BENCH_DEBUG=1 for a traceback)\n")


def test_multiline_bug_message_stays_one_line(capsys):
    assert main_wrapper("prog", _raising(ValueError("first\nsecond"))) == 1
    assert capsys.readouterr().err.startswith("prog: internal error: ValueError: first (")


@pytest.mark.parametrize("exc", [ValueError("boom"), FileNotFoundError(2, "gone", "/f")])
def test_debug_reraises(monkeypatch, exc):
    monkeypatch.setenv("EDGETPU_BENCH_DEBUG", "1")
    with pytest.raises(type(exc)):
        main_wrapper("prog", _raising(exc))


def test_success_systemexit_and_interrupt(capsys):
    assert main_wrapper("prog", lambda argv: 0) == 0
    assert main_wrapper("prog", lambda argv: len(argv), ["a", "b"]) == 2
    with pytest.raises(SystemExit):
        main_wrapper("prog", _raising(SystemExit(2)))
    assert main_wrapper("prog", _raising(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "prog: interrupted\n"
