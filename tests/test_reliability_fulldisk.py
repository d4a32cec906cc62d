"""A disk that fills up: refused before any work when known, one line and a rerun when not.

Mid-run faults are injected in the atomic writer (:func:`benchmark.results.atomic_write_bytes`
fsyncs every file it writes): ``os.fsync`` raises ``ENOSPC`` for the first file whose
temporary's name matches a pattern, as a file system that fills up does. Asserted for each
command: exit code 3, one ``error:`` line naming the file and "No space left on device",
the files already written kept (byte-identical), no temporary left, and a rerun (``--resume``
for a run) finishing the work. The refusal before any work is checked on a real, tiny
tmpfs when this process may mount one, and with a patched ``shutil.disk_usage`` otherwise.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from collections import namedtuple
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main_wrapper
from conftest import ROOT

INT8 = ROOT / "models" / "signnet" / "full" / "signnet_int8.tflite"
RUN_ARGS = ["--split", "all", "--limit", "6", "--workers", "1", "--quiet",
            "--no-prediction-cache"]
NOSPACE = "No space left on device"


@pytest.fixture
def disk_fills_at(monkeypatch):
    """``disk_fills_at(pattern)``: the fsync of the first file matching ``pattern`` fails."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to name the file being written")
    real = os.fsync
    state = {"pattern": None, "hit": None}

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if state["pattern"] and state["hit"] is None and fnmatch(name, state["pattern"]):
            state["hit"] = name
            raise OSError(errno.ENOSPC, NOSPACE)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    def arm(pattern):
        state.update(pattern=pattern, hit=None)
        return state
    return arm


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(root).rglob("*")) if p.is_file() and p.name != ".lock"}


def _temporaries(*roots: Path) -> list[Path]:
    return [p for r in roots if Path(r).exists() for p in Path(r).rglob("*") if ".tmp" in p.name]


def _main(module: str, argv: list, capsys) -> tuple[int, str]:
    import importlib
    main = importlib.import_module(module).main
    code = main_wrapper(module.removesuffix(".__main__"), main, [str(a) for a in argv])
    return code, capsys.readouterr().err


def _one_line(err: str, prog: str, path_part: str) -> None:
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith(f"{prog}: error: ") and NOSPACE in lines[-1], err
    assert path_part in lines[-1], err
    assert "Traceback" not in err and "internal error" not in err, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the same command, to compare the resumed one with."""
    out = tmp_path_factory.mktemp("ref") / "run"
    code = main_wrapper("benchmark.run", __import__("benchmark.run").run.main,
                        [*RUN_ARGS, "--no-report", "--out", str(out)])
    assert code == 0
    return out


def test_run_disk_full_in_the_second_split_then_resume(tmp_path, disk_fills_at, reference,
                                                       capsys):
    out = tmp_path / "run"
    hit = disk_fills_at("*/verification/.predictions_int8.npz.tmp*")
    code, err = _main("benchmark.run", [*RUN_ARGS, "--no-report", "--out", out], capsys)
    assert code == 3 and hit["hit"], err
    _one_line(err, "benchmark.run", str(out / "verification" / "predictions_int8.npz"))
    assert not _temporaries(out)
    kept = _tree(out / "full")
    ref = _tree(reference / "full")
    assert sorted(kept) == sorted(ref)                # the finished split, complete: its
    assert {k: v for k, v in kept.items() if k != "results.json"} == \
        {k: v for k, v in ref.items() if k != "results.json"}    # arrays byte-identical
    assert not (out / "verification" / "results.json").exists()
    code, err = _main("benchmark.run", [*RUN_ARGS, "--no-report", "--out", out, "--resume"],
                      capsys)
    assert code == 0, err
    assert _tree(out / "full") == kept
    for split in ("full", "verification"):
        for v in ("float", "int8"):
            name = f"{split}/predictions_{v}.npz"
            assert (out / name).read_bytes() == (reference / name).read_bytes()
    assert (out / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()


def test_run_disk_full_while_writing_the_report_then_rerun(tmp_path, disk_fills_at, capsys):
    """The issue's case: a complete run, the disk fills writing report.html."""
    out = tmp_path / "run"
    disk_fills_at(str(out / ".report.html.tmp*"))
    code, err = _main("benchmark.run", [*RUN_ARGS, "--out", out], capsys)
    assert code == 3, err
    _one_line(err, "benchmark.run", str(out / "report.html"))
    assert (out / "results.json").is_file() and not (out / "report.html").exists()
    assert not _temporaries(out)
    results = _tree(out)
    code, err = _main("benchmark.report", [out], capsys)           # the report alone
    assert code == 0, err
    assert (out / "report.html").is_file()
    assert {k: v for k, v in _tree(out).items() if k in results} == results
    (out / "report.html").unlink()
    (out / "report.md").unlink()
    disk_fills_at(None)
    code, err = _main("benchmark.run", [*RUN_ARGS, "--out", out, "--resume"], capsys)
    assert code == 0, err                                          # or the whole run again
    assert (out / "report.html").is_file()


def _small_run(root: Path) -> Path:
    from test_report_fast import small_run
    cm = np.array([[3, 1], [0, 4]])
    return small_run(root / "run", {"float": cm, "int8": cm}, ["a", "b"])


def test_report_disk_full(tmp_path, disk_fills_at, capsys):
    run = _small_run(tmp_path)
    before = _tree(run)
    out = tmp_path / "rep" / "r.html"
    disk_fills_at("*/.r.md.tmp*")            # report.html written, report.md fails
    code, err = _main("benchmark.report", [run, "--out", out], capsys)
    assert code == 3, err
    _one_line(err, "benchmark.report", str(out.with_suffix(".md")))
    assert {k: v for k, v in _tree(run).items() if k in before} == before
    assert not _temporaries(tmp_path)
    disk_fills_at(None)
    code, err = _main("benchmark.report", [run, "--out", out], capsys)   # the rerun replaces
    assert code == 0, err                                                # its own report.html
    assert out.is_file() and out.with_suffix(".md").is_file()


def test_compile_disk_full(tmp_path, disk_fills_at, capsys):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "mine.txt").write_text("kept\n")
    disk_fills_at("*/.signnet_int8_compile.json.tmp*")
    code, err = _main("benchmark.compile.__main__",
                      ["--analyze-only", INT8, "--out-dir", tmp_path / "c"], capsys)
    assert code == 3, err
    _one_line(err, "benchmark.compile", str(tmp_path / "c" / "signnet_int8_compile.json"))
    assert sorted(os.listdir(tmp_path / "c")) == ["mine.txt"]
    disk_fills_at(None)
    code, err = _main("benchmark.compile.__main__",
                      ["--analyze-only", INT8, "--out-dir", tmp_path / "c"], capsys)
    assert code == 0, err
    assert (tmp_path / "c" / "signnet_int8_compile.json").is_file()


def test_latency_disk_full(tmp_path, disk_fills_at, capsys):
    disk_fills_at("*/.lat.json.tmp*")
    code, err = _main("benchmark.latency", [INT8, "--runs", 2, "--warmup", 0, "--json",
                                            tmp_path / "lat.json"], capsys)
    assert code == 3, err
    _one_line(err, "benchmark.latency", str(tmp_path / "lat.json"))
    assert os.listdir(tmp_path) == []


def _tiny_tmpfs(where: Path, size: str) -> Path:
    where.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip() or p.returncode})")
    return where


@pytest.fixture
def tiny_disk(tmp_path):
    d = _tiny_tmpfs(tmp_path / "tiny", "1m")
    yield d
    subprocess.run(["umount", str(d)], check=False)


def test_run_on_a_real_tiny_disk_is_refused_before_any_work(tiny_disk, capsys):
    """A 1 MiB tmpfs: the estimate (incl. MARGIN_BYTES) does not fit, refused, nothing written."""
    code, err = _main("benchmark.run", [*RUN_ARGS, "--out", tiny_disk / "run"], capsys)
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"benchmark.run: error: --out {tiny_disk / 'run'}: needs about ")
    assert "free on the file system of" in line
    assert os.listdir(tiny_disk) == []


def test_full_disk_estimate_for_every_split_before_evaluating(tmp_path, monkeypatch, capsys):
    """Free space for the fixed files but not for the split's arrays: refused once the split's
    size is known, before it is evaluated; with room again, the same command runs."""
    from benchmark import preflight
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage
    free = {"bytes": preflight.MARGIN_BYTES + preflight.RUN_FIXED_BYTES + 1000}
    out = tmp_path / "run"
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 0, free["bytes"])
                        if str(p).startswith(str(tmp_path)) else real(p))
    code, err = _main("benchmark.run", [*RUN_ARGS, "--no-report", "--out", out], capsys)
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"benchmark.run: error: --out {out / 'full'}: needs about 16.1 MiB, "
                           "only 16.1 MiB free"), line
    assert not out.exists()     # nothing evaluated, and the new run directory removed
    free["bytes"] = 10 ** 9
    code, err = _main("benchmark.run", [*RUN_ARGS, "--no-report", "--out", out], capsys)
    assert code == 0, err
