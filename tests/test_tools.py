"""Shell tools: shellcheck, Raspberry Pi setup (dry run) and run_benchmark on the CPU."""

import shutil
import subprocess
import tarfile

import pytest

from conftest import ROOT

SCRIPTS = sorted(str(p) for p in (ROOT / "tools").rglob("*.sh"))


def sh(*args, **kw):
    return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600, **kw)


@pytest.mark.skipif(shutil.which("shellcheck") is None,
                    reason="shellcheck not installed (apt-get install shellcheck; CI installs it)")
def test_shellcheck_is_clean():
    r = subprocess.run(["shellcheck", *SCRIPTS], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_setup_dry_run_changes_nothing(tmp_path):
    venv = tmp_path / "venv"
    r = sh("tools/pi/setup.sh", "--dry-run", "--venv", venv)
    assert r.returncode == 0, r.stderr
    assert "apt-get install -y libedgetpu1-std" in r.stdout
    assert f"{venv}/bin/python -m pip install" in r.stdout
    assert not venv.exists()
    r = sh("tools/pi/setup.sh", "--dry-run", "--max", "--venv", venv)
    assert "libedgetpu1-max" in r.stdout
    bad = sh("tools/pi/setup.sh", "--bogus")
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr


def test_run_benchmark_on_cpu_packs_an_archive(tmp_path):
    import sys
    out = tmp_path / "pi"
    r = sh("tools/pi/run_benchmark.sh", "--devices", "cpu", "--splits", "verification",
           "--limit", "30", "--out", out, env={"PY": sys.executable, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "signnet-verification-cpu" / "results.json").is_file()
    with tarfile.open(f"{out}.tar.gz") as t:
        names = t.getnames()
    assert "pi/host.txt" in names and "pi/signnet-verification-cpu/results.json" in names
    assert "cpus:" in (out / "host.txt").read_text()


def test_run_benchmark_records_a_missing_edgetpu_and_fails(tmp_path):
    import sys
    out = tmp_path / "pi"
    r = sh("tools/pi/run_benchmark.sh", "--devices", "edgetpu", "--splits", "verification",
           "--out", out, env={"PY": sys.executable, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert "libedgetpu.so.1 is not installed" in (out / "failures.txt").read_text()
    dry = sh("tools/pi/run_benchmark.sh", "--dry-run", "--out", tmp_path / "dry")
    assert dry.returncode == 0 and "--device edgetpu" in dry.stdout


def test_compile_all_dry_run_lists_the_shipped_models():
    r = sh("tools/compile_all.sh", "--dry-run")
    assert r.returncode == 0
    assert "models/signnet/full/signnet_int8.tflite" in r.stdout
    assert "models/signnet/verification/signnet_int8.tflite" in r.stdout
