"""Every command that writes refuses a read-only or misplaced output before any work.

The commands run in one child process (tests/fuzz_driver.py) with file permissions
enforced (as root: without CAP_DAC_OVERRIDE, see ``without_root_powers``), so a
read-only folder really is read-only for them. Asserted for each: exit code 2,
one ``error:`` line naming the option and the path, nothing created, no
temporary left, and the user's files beside it byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from test_preflight import without_root_powers

INT8 = ROOT / "models" / "signnet" / "full" / "signnet_int8.tflite"
RO_MESSAGE = "cannot write in {ro} (permission denied or a read-only file system)"


def _tree(root: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def _cases(ro: Path, run: Path, cache: Path) -> list[tuple[str, str, list, str]]:
    """``(id, "module:function", argv, option named in the message)``."""
    run_argv = ["--split", "verification", "--limit", "4", "--workers", "1", "--quiet",
                "--no-report"]
    return [
        ("run-out", "benchmark.run:main", [*run_argv, "--out", ro / "run"], "--out"),
        ("run-cache", "benchmark.run:main",
         [*run_argv, "--out", run.parent / "fresh", "--cache-dir", ro / "cache"], "--cache-dir"),
        ("run-default-cache", "benchmark.run:main",
         [*run_argv, "--out", run.parent / "fresh2"], "the dataset cache"),
        ("report-out", "benchmark.report:main", [run, "--out", ro / "r.html"], "--out"),
        ("report-figures", "benchmark.report:main",
         [run, "--out", run.parent / "r.html", "--figures", ro / "figs"], "--figures"),
        ("compile", "benchmark.compile.__main__:main",
         ["--analyze-only", INT8, "--out-dir", ro / "c"], "--out-dir"),
        ("latency", "benchmark.latency:main",
         [INT8, "--runs", "2", "--warmup", "0", "--json", ro / "lat.json"], "--json"),
        ("train", "benchmark.train:main",
         ["--model", "signnet", "--split", "verification", "--model-dir", ro / "models",
          "--cache-dir", cache], "--model-dir"),
        ("train-cache", "benchmark.train:main",
         ["--model", "signnet", "--split", "verification", "--model-dir",
          run.parent / "models", "--cache-dir", ro / "cache"], "--cache-dir"),
        ("convert", "benchmark.convert:main",
         ["--model", "signnet", "--split", "verification", "--model-dir", ro / "models",
          "--cache-dir", cache], "--model-dir"),
        ("diagnose", "benchmark.diagnose.cli:main",
         ["--model", "signnet", "--split", "verification", "--out", ro / "diag"], "--out"),
        ("study", "benchmark.study.cli:main",
         [ROOT / "results" / "carolo-synth-run.toml", "--out", ro / "study"], "--out"),
        ("actbits", "benchmark.quant.actbits:main", ["--act-bits", "8,4", "--out", ro / "ab"],
         "--out"),
        ("calsweep", "benchmark.quant.calsweep:main",
         ["--calibration-sizes", "8", "--out", ro / "cs"], "--out"),
    ]


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    from test_report_fast import small_run
    root = tmp_path_factory.mktemp("ro")
    ro = root / "ro"
    ro.mkdir()
    (ro / "notes.txt").write_text("the user's own file\n")
    cm = np.array([[3, 1], [0, 4]])
    run = small_run(root / "run", {"float": cm, "int8": cm}, ["a", "b"])
    cache = root / "cache"
    cases = _cases(ro, run, cache)
    os.chmod(ro, 0o555)
    ro_cache = root / "ro-default-cache"
    ro_cache.mkdir(mode=0o555)
    payload = [{"id": i, "command": c, "prog": c.split(":")[0], "argv": [str(a) for a in argv],
                "env": {"EDGETPU_BENCH_CACHE": str(ro_cache if i == "run-default-cache"
                                                   else cache)}}
               for i, c, argv, _ in cases]
    (root / "cases.json").write_text(json.dumps(payload))
    before = _tree(ro), _tree(run)
    p = subprocess.run(without_root_powers([sys.executable, str(ROOT / "tests" / "fuzz_driver.py"),
                                            str(root / "cases.json"), str(root / "out.jsonl")]),
                       capture_output=True, text=True, cwd=root, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    done = {r["id"]: r for r in map(json.loads, (root / "out.jsonl").read_text().splitlines())
            if "code" in r}
    yield {"cases": cases, "done": done, "ro": ro, "ro_cache": ro_cache, "run": run,
           "before": before, "after": (_tree(ro), _tree(run)), "root": root}
    os.chmod(ro, 0o755)


@pytest.mark.parametrize("case", [c[0] for c in _cases(Path("/r"), Path("/r/run"), Path("/c"))])
def test_read_only_output_is_refused_before_any_work(refused, case):
    _, command, argv, option = next(c for c in refused["cases"] if c[0] == case)
    r = refused["done"][case]
    lines = r["stderr"].strip().splitlines()
    ro = refused["ro_cache"] if case == "run-default-cache" else refused["ro"]
    assert r["code"] == 2, r["stderr"]
    assert len(lines) == 1 and "Traceback" not in r["stderr"], r["stderr"]
    assert lines[0].startswith(f"{command.split(':')[0]}: error: {option}")
    assert RO_MESSAGE.format(ro=ro) in lines[0]


def test_nothing_written_and_user_files_identical(refused):
    assert refused["after"] == refused["before"]
    assert sorted(os.listdir(refused["ro"])) == ["notes.txt"]
    left = [p for p in refused["root"].rglob("*") if ".tmp-" in p.name]
    assert not left


def test_the_folder_really_is_read_only_for_the_child(refused):
    p = subprocess.run(without_root_powers(["touch", str(refused["ro"] / "x")]),
                       capture_output=True)
    assert p.returncode != 0
