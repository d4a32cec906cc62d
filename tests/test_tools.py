"""Shell tools: shellcheck, Raspberry Pi setup (dry run) and run_benchmark on the CPU."""

import shutil
import subprocess
import sys
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


BOOKWORM = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
            'VERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n')
NOBLE = ('PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
         'VERSION_CODENAME=noble\nID=ubuntu\n')
JAMMY = NOBLE.replace("24.04", "22.04").replace("noble", "jammy")


def stub(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


class FakeHost:
    """A fake machine for setup.sh: PATH stubs for uname, id, dpkg-query, getent, python,
    an os-release file, a device-tree model and a boot folder (nothing real is touched)."""

    def __init__(self, tmp_path, *, arch="aarch64", os_release=BOOKWORM, pyver="311",
                 board="Raspberry Pi 5 Model B Rev 1.0", dpkg="", groups="pi", uid=1000):
        self.root = tmp_path
        bin_ = tmp_path / "bin"
        bin_.mkdir(parents=True)
        stub(bin_ / "uname", f'case "$1" in -m) echo {arch} ;; -r) echo 6.6.51+rpt-rpi-2712 ;; '
                             '*) echo Linux ;; esac\n')
        stub(bin_ / "id", f'case "$1" in -u) echo {uid} ;; -un) echo pi ;; -nG) echo "{groups}" ;;'
                          ' esac\n')
        # dpkg-query -W -f FORMAT PACKAGE: print "<version> ii" for the packages in $dpkg.
        lines = "".join(f'[ "$4" = "{p}" ] && echo "{v} ii" && exit 0\n'
                        for p, v in (x.split("=") for x in dpkg.split() if x))
        stub(bin_ / "dpkg-query", lines + "exit 1\n")
        stub(bin_ / "getent", "exit 2\n")
        self.python = stub(bin_ / "python3", f'echo {pyver}\n')
        (tmp_path / "os-release").write_text(os_release)
        (tmp_path / "model").write_text(board + "\0")
        boot = tmp_path / "boot"
        boot.mkdir()
        (boot / "config.txt").write_text("[all]\n")
        (boot / "cmdline.txt").write_text("console=tty1 root=PARTUUID=1234 rootwait\n")
        self.env = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
                    "EDGETPU_SETUP_OS_RELEASE": str(tmp_path / "os-release"),
                    "EDGETPU_SETUP_DT_MODEL": str(tmp_path / "model"),
                    "EDGETPU_SETUP_BOOT_DIR": str(boot)}

    def setup(self, *args):
        return sh("tools/pi/setup.sh", "--python", self.python, "--venv", self.root / "venv",
                  *args, env=self.env)


def test_setup_dry_run_on_bookworm_aarch64_shows_the_matched_pair(tmp_path):
    host = FakeHost(tmp_path)
    r = host.setup("--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "host: Debian GNU/Linux 12 (bookworm) aarch64, Raspberry Pi 5 Model B Rev 1.0, " \
           "python 3.11" in out
    assert "matched pair: libedgetpu1-std 16.0tf2.17.1-1 + tflite_runtime 2.17.1 (cp311)" in out
    deb = "libedgetpu1-std_16.0tf2.17.1-1.bookworm_arm64.deb"
    whl = "tflite_runtime-2.17.1-cp311-cp311-linux_aarch64.whl"
    assert f"https://github.com/feranick/libedgetpu/releases/download/16.0TF2.17.1-1/{deb}" in out
    assert f"https://github.com/feranick/TFlite-builds/releases/download/v2.17.1/{whl}" in out
    assert f"+ sudo apt-get install -y {tmp_path}/home/.cache/edgetpu-bench/{deb}" in out
    assert "+ sudo usermod -aG plugdev pi" in out
    assert f"{tmp_path}/venv/bin/python -m pip install" in out and "numpy>=1.26,<2" in out
    assert f"-m benchmark.backends.pairing --probe {tmp_path}/home/.cache/edgetpu-bench/" \
           "mobilenet_v1_0.25_128_quant_edgetpu.tflite" in out
    assert "-m benchmark.devices" in out
    assert "PCIe" not in out
    assert not (tmp_path / "venv").exists() and not (tmp_path / "home").exists()


def test_setup_skips_what_is_done_and_replaces_a_mismatched_runtime(tmp_path):
    done = FakeHost(tmp_path / "a", dpkg="libedgetpu1-std=16.0tf2.17.1-1", groups="pi plugdev")
    r = done.setup("--dry-run")
    assert "already installed: libedgetpu1-std 16.0tf2.17.1-1" in r.stdout
    assert "pi is in plugdev" in r.stdout and ".deb" not in r.stdout.split("== USB")[1]
    coral = FakeHost(tmp_path / "b", dpkg="libedgetpu1-std=16.0")
    r = coral.setup("--dry-run", "--max")
    assert "replacing" not in r.stdout  # -max is another package: apt replaces -std
    assert "libedgetpu1-max_16.0tf2.17.1-1.bookworm_arm64.deb" in r.stdout
    r = coral.setup("--dry-run")
    assert "replacing libedgetpu1-std 16.0 (a libedgetpu built for another TFLite" in r.stdout


def test_setup_on_x86_64_hosts(tmp_path):
    deb = FakeHost(tmp_path / "d", arch="x86_64", board="").setup("--dry-run")
    assert deb.returncode == 0
    assert "libedgetpu1-std_16.0tf2.17.1-1.bookworm_amd64.deb" in deb.stdout
    assert "tflite_runtime-2.17.1-cp311-cp311-linux_x86_64.whl" in deb.stdout
    ubu = FakeHost(tmp_path / "u", arch="x86_64", os_release=NOBLE, pyver="312",
                   board="").setup("--dry-run")
    assert ubu.returncode == 0, ubu.stderr
    assert "libedgetpu1-std_16.0tf2.17.1-1.ubuntu24.04_amd64.deb" in ubu.stdout
    assert "tflite_runtime-2.17.1-cp312-cp312-linux_x86_64.whl" in ubu.stdout


@pytest.mark.parametrize("kw, code, message", [
    ({"arch": "x86_64", "os_release": JAMMY}, 2, "unsupported host: Ubuntu 22.04.1 LTS (x86_64)"),
    ({"arch": "armv7l"}, 2, "unsupported host: Debian GNU/Linux 12 (bookworm) (armv7l)"),
    ({"arch": "aarch64", "os_release": NOBLE}, 2, "unsupported host: Ubuntu 24.04.1 LTS (aarch64)"),
    ({"pyver": "39"}, 2, "is Python 3.9: tflite_runtime 2.17.1 wheels"),
])
def test_setup_refuses_hosts_without_a_matched_pair(tmp_path, kw, code, message):
    r = FakeHost(tmp_path, **kw).setup("--dry-run")
    assert r.returncode == code and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_setup_options(tmp_path):
    host = FakeHost(tmp_path)
    bad = host.setup("--bogus")
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr
    missing = sh("tools/pi/setup.sh", "--dry-run", "--python", tmp_path / "nopython",
                 env=host.env)
    assert missing.returncode == 3 and "nopython not found" in missing.stderr
    r = host.setup("--dry-run", "--no-probe")
    assert "--probe" not in r.stdout and "-m benchmark.backends.pairing" in r.stdout
    model = tmp_path / "m_edgetpu.tflite"
    model.write_bytes(b"x")
    r = host.setup("--dry-run", "--probe-model", model)
    assert f"-m benchmark.backends.pairing --probe {model}" in r.stdout
    assert "test_data" not in r.stdout
    r = host.setup("--dry-run", "--probe-model", tmp_path / "absent.tflite")
    assert r.returncode == 3 and "absent.tflite: no such file" in r.stderr
    help_ = sh("tools/pi/setup.sh", "--help")
    assert help_.returncode == 0 and "--pcie" in help_.stdout and "set -euo" not in help_.stdout


def test_setup_pcie_on_a_pi5_shows_driver_group_and_boot_settings(tmp_path):
    host = FakeHost(tmp_path)
    boot = tmp_path / "boot"
    before = (boot / "config.txt").read_text(), (boot / "cmdline.txt").read_text()
    r = host.setup("--dry-run", "--pcie")
    out = r.stdout
    assert r.returncode == 0, r.stderr
    assert "gasket-driver/releases/download/1.0-18.2/gasket-dkms_1.0-18.2_all.deb" in out
    assert "sudo apt-get install -y dkms linux-headers-6.6.51+rpt-rpi-2712" in out
    assert "SUBSYSTEM==\"apex\", MODE=\"0660\", GROUP=\"apex\"" in out
    assert "+ sudo groupadd apex" in out and "+ sudo usermod -aG apex pi" in out
    for line in ("kernel=kernel8.img", "dtparam=pciex1", "dtparam=pciex1_gen=2"):
        assert f"+ echo {line} | sudo tee -a {boot}/config.txt" in out
    assert f"sed -i 1 s/$/ pcie_aspm=off/ {boot}/cmdline.txt" in out
    assert ((boot / "config.txt").read_text(), (boot / "cmdline.txt").read_text()) == before
    (boot / "config.txt").write_text("kernel=kernel8.img\ndtparam=pciex1\n")
    r = host.setup("--dry-run", "--pcie")
    assert f"already in {boot}/config.txt: kernel=kernel8.img" in r.stdout
    assert "+ echo dtparam=pciex1_gen=2" in r.stdout
    pi4 = FakeHost(tmp_path / "pi4", board="Raspberry Pi 4 Model B Rev 1.4").setup(
        "--dry-run", "--pcie")
    assert "groupadd apex" in pi4.stdout and "config.txt" not in pi4.stdout


def test_setup_check_failure_exits_4(tmp_path):
    """Not a dry run: everything is installed already, so only pip (stubbed) and the checks
    run; the pairing check failing (as for a known-bad pair) ends the script with exit 4."""
    host = FakeHost(tmp_path, dpkg="libedgetpu1-std=16.0tf2.17.1-1", groups="pi plugdev")
    venv_py = tmp_path / "venv" / "bin" / "python"
    venv_py.parent.mkdir(parents=True)
    log = tmp_path / "calls.log"
    stub(venv_py, f'echo "$@" >> {log}\n'
                  'case "$*" in *benchmark.backends.pairing*) echo "benchmark.backends.pairing: '
                  'error: refusing to load the Edge TPU delegate" >&2; exit 4 ;; esac\n')
    model = tmp_path / "m_edgetpu.tflite"
    model.write_bytes(b"x")
    r = host.setup("--probe-model", model)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "CHECK FAILED: runtime pairing (exit 4)" in r.stdout
    assert f"CHECK FAILED: delegate on {model} (exit 4)" in r.stdout
    calls = log.read_text().splitlines()
    assert calls[-3:] == ["-m benchmark.backends.pairing", "-m benchmark.devices",
                          f"-m benchmark.backends.pairing --probe {model}"]
    assert any("tflite_runtime-2.17.1-cp311-cp311-linux_aarch64.whl" in c for c in calls)


def test_run_benchmark_on_cpu_packs_an_archive(tmp_path):

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


# --- host <-> Pi: compile_all.sh bundles, run_benchmark.sh runs a bundle ------------------

FAKE_COMPILER = r'''
# Fake edgetpu_compiler: [-s] -o OUT [opts] MODEL -> OUT/<stem>_edgetpu.tflite (a copy), a log
if [ "$1" = "--version" ]; then echo "Edge TPU Compiler version 16.0.384591198"; exit 0; fi
echo "$@" >> "$(dirname "$0")/calls.log"
out=.
while [ $# -gt 1 ]; do case "$1" in -o) out=$2; shift ;; esac; shift; done
stem=$(basename "$1" .tflite)
cp "$1" "$out/${stem}_edgetpu.tflite"
printf 'Edge TPU Compiler version 16.0.384591198\n' > "$out/${stem}_edgetpu.log"
echo "Edge TPU Compiler version 16.0.384591198"
echo "Model compiled successfully in 7 ms."
echo "Compilation succeeded! "
'''


def user_model_dir(tmp_path):
    """A model folder of the user's, not laid out as <model>/<split>/: an int8 and a float
    .tflite, a labels file, metadata and a .keras file the Pi does not need."""
    src = ROOT / "models" / "signnet" / "verification"
    d = tmp_path / "mine" / "mynet"
    d.mkdir(parents=True)
    shutil.copy(src / "signnet_int8.tflite", d / "mynet_int8.tflite")
    shutil.copy(src / "signnet_float.tflite", d / "mynet_float.tflite")
    (d / "labels.txt").write_text("a\nb\n")
    (d / "preprocess.toml").write_text("scale = 1\n")
    (d / "mynet.keras").write_bytes(b"not for the Pi")
    return d


def listing(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_compile_all_without_the_compiler_is_one_line_exit_4(tmp_path):
    r = sh("tools/compile_all.sh", "--out", tmp_path / "b", env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 4 and r.stderr.startswith("compile_all.sh: error: edgetpu_compiler "
                                                     "not found on PATH")
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_compile_all_bundles_any_model_dir_with_a_manifest(tmp_path):
    import json
    d = user_model_dir(tmp_path)
    before = listing(d.parent)
    out = tmp_path / "bundle"
    r = sh("tools/compile_all.sh", "--allow-uncompiled", "--model-dir", d, "--model",
           ROOT / "models/signnet/full/signnet_int8.tflite", "--out", out,
           env={"PY": sys.executable, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: edgetpu_compiler not found" in r.stderr
    assert listing(d.parent) == before  # the sources are not touched
    assert listing(out / "models" / "mynet") == [
        "labels.txt", "mynet_float.tflite", "mynet_int8.tflite", "mynet_int8_compile.json",
        "preprocess.toml"]
    assert (out / "models/signnet/full/signnet_int8.tflite").is_file()
    assert (out / "models/signnet/full/train_meta.json").is_file()
    assert not (out / "models/signnet/full/signnet.keras").exists()
    info = json.loads((out / "bundle.json").read_text())
    assert [m["int8"] for m in info["models"]] == ["models/mynet/mynet_int8.tflite",
                                                   "models/signnet/full/signnet_int8.tflite"]
    assert info["compiler"] is None and all(m["compiled"] is None for m in info["models"])
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=out, capture_output=True,
                           text=True)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "MANIFEST.sha256"]
    assert check.returncode == 0 and check.stdout.count(": OK") == len(files) == 14
    with tarfile.open(f"{out}.tar.gz") as t:
        assert "bundle/MANIFEST.sha256" in t.getnames()


def test_compile_all_runs_the_compiler_into_the_bundle(tmp_path):
    import json
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    stub(bin_ / "edgetpu_compiler", FAKE_COMPILER)
    d = user_model_dir(tmp_path)
    out = tmp_path / "bundle"
    r = sh("tools/compile_all.sh", "--model-dir", d, "--out", out, "--no-tar", "--", "-m", "13",
           env={"PY": sys.executable, "PATH": f"{bin_}:/usr/bin:/bin"})
    assert (out / "models/mynet/mynet_int8_edgetpu.tflite").is_file(), r.stdout + r.stderr
    assert not (d / "mynet_int8_edgetpu.tflite").exists()
    call = (bin_ / "calls.log").read_text()
    assert "-m 13" in call and f"{out}/models/mynet/mynet_int8.tflite" in call
    info = json.loads((out / "bundle.json").read_text())
    assert info["compiler"] == "Edge TPU Compiler version 16.0.384591198"
    assert info["models"][0]["compiled"] == "models/mynet/mynet_int8_edgetpu.tflite"
    assert not (tmp_path / "bundle.tar.gz").exists()


@pytest.mark.parametrize("args, code, message", [
    (["--bogus"], 2, "unknown option --bogus"),
    (["--model-dir", "/nonexistent"], 3, "--model-dir /nonexistent: no such directory"),
    (["--model-dir", "docs"], 3, "no *_int8.tflite below it"),
    (["--model", "/nonexistent_int8.tflite"], 3, "no such file"),
    (["--model", "models/signnet/full/signnet_float.tflite", "--model",
      "models/signnet-gtsrb/full/signnet-gtsrb_int8.tflite", "--model-dir", "models/signnet"],
     0, ""),
])
def test_compile_all_bad_input(tmp_path, args, code, message):
    r = sh("tools/compile_all.sh", "--dry-run", *args, "--out", tmp_path / "b")
    assert r.returncode == code, r.stderr
    assert message in r.stderr


def test_compile_all_refuses_collisions_compiled_inputs_and_a_used_out(tmp_path):
    a, b = tmp_path / "a" / "net", tmp_path / "b" / "net"
    for d in (a, b):
        d.mkdir(parents=True)
        (d / "net_int8.tflite").write_bytes(b"x")
    r = sh("tools/compile_all.sh", "--dry-run", "--model-dir", a, "--model-dir", b)
    assert r.returncode == 2 and "would both go to models/net" in r.stderr
    (a / "net_int8_edgetpu.tflite").write_bytes(b"x")
    r = sh("tools/compile_all.sh", "--dry-run", "--model", a / "net_int8_edgetpu.tflite")
    assert r.returncode == 2 and "is already compiled" in r.stderr
    r = sh("tools/compile_all.sh", "--dry-run", "--out", a)
    assert r.returncode == 2 and "exists and is not empty" in r.stderr


def test_run_benchmark_dry_run_of_a_bundle(tmp_path):
    d = user_model_dir(tmp_path)
    out = tmp_path / "bundle"
    sh("tools/compile_all.sh", "--allow-uncompiled", "--model-dir", d, "--model-dir",
       ROOT / "models/signnet", "--out", out, env={"PY": sys.executable, "PATH": "/usr/bin:/bin"})
    r = sh("tools/pi/run_benchmark.sh", "--dry-run", "--bundle", f"{out}.tar.gz", "--splits",
           "verification", "--devices", "edgetpu", "--data-dir", "/data/signs", "--cache-dir",
           "/cache", "--out", tmp_path / "pi", "--", "--latency", "5")
    assert r.returncode == 0, r.stderr
    runs = [ln for ln in r.stdout.splitlines() if ln.startswith("== ")]
    assert runs == ["== mynet / verification / edgetpu", "== signnet / verification / edgetpu"]
    assert f"--model {out}/models/mynet --split verification" in r.stdout
    assert (f"--model signnet --split verification --device edgetpu --out {tmp_path}/pi/"
            f"signnet-verification-edgetpu --quiet --data-dir /data/signs --cache-dir /cache "
            f"--model-dir {out}/models --latency 5") in r.stdout
    (out / "models/signnet/full/signnet_int8.tflite").write_bytes(b"changed")
    bad = sh("tools/pi/run_benchmark.sh", "--dry-run", "--bundle", out)
    assert bad.returncode == 3 and "files differ from MANIFEST.sha256" in bad.stderr


def test_run_benchmark_options(tmp_path):
    r = sh("tools/pi/run_benchmark.sh", "--dry-run", "--model", "signnet-gtsrb", "--model",
           "/my/net_int8.tflite", "--model-dir", "/my/models", "--dataset", "gtsrb", "--splits",
           "full", "--devices", "cpu", "--out", tmp_path / "pi")
    assert r.returncode == 0, r.stderr
    assert "== signnet-gtsrb / full / cpu" in r.stdout and "== net_int8 / full / cpu" in r.stdout
    assert "--model /my/net_int8.tflite --split full --device cpu" in r.stdout
    assert "--model-dir /my/models --dataset gtsrb" in r.stdout
    bad = sh("tools/pi/run_benchmark.sh", "--bogus")
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr
    help_ = sh("tools/pi/run_benchmark.sh", "--help").stdout
    for var in ("EDGETPU_BENCH_MODELS", "EDGETPU_BENCH_CACHE", "EDGETPU_BENCH_DATA_WORKERS",
                "EDGETPU_BENCH_TPU_TIMEOUT", "EDGETPU_BENCH_PAIRING", "EDGETPU_BENCH_DEBUG",
                "EDGETPU_BENCH_GTSRB_URL"):
        assert var in help_


def test_every_environment_variable_of_the_code_is_documented():
    """grep the package for EDGETPU_BENCH_*: each one is in run_benchmark.sh --help and
    docs/edge-tpu.md (what the Pi scripts document)."""
    import re
    used = set()
    for p in (ROOT / "benchmark").rglob("*.py"):
        used |= set(re.findall(r"EDGETPU_BENCH_[A-Z_]+", p.read_text()))
    assert "EDGETPU_BENCH_CACHE" in used
    help_ = sh("tools/pi/run_benchmark.sh", "--help").stdout
    doc = (ROOT / "docs" / "edge-tpu.md").read_text()
    assert sorted(v for v in used if v not in help_) == []
    assert sorted(v for v in used if v not in doc) == []


@pytest.mark.slow
def test_host_pi_round_trip_on_the_cpu(tmp_path):
    """compile_all bundle -> run_benchmark --bundle (CPU) -> archive -> report merging the
    Pi's run with a host run into one comparison."""
    env = {"PY": sys.executable, "PATH": "/usr/bin:/bin"}
    bundle = tmp_path / "bundle"
    r = sh("tools/compile_all.sh", "--allow-uncompiled", "--model",
           ROOT / "models/signnet/verification/signnet_int8.tflite", "--out", bundle, env=env)
    assert r.returncode == 0, r.stderr
    r = sh("tools/pi/run_benchmark.sh", "--bundle", f"{bundle}.tar.gz", "--devices", "cpu",
           "--limit", "30", "--out", tmp_path / "pi", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    back = tmp_path / "back"
    back.mkdir()
    with tarfile.open(tmp_path / "pi.tar.gz") as t:
        t.extractall(back)
    pi_run = back / "pi" / "signnet-verification-cpu"
    assert (pi_run / "results.json").is_file()
    assert (back / "pi" / "logs" / "signnet-verification-cpu.stdout.txt").is_file()
    host = subprocess.run([sys.executable, "-m", "benchmark.run", "--split", "verification",
                           "--limit", "30", "--out", tmp_path / "host", "--quiet", "--no-report"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert host.returncode == 0, host.stderr
    rep = subprocess.run([sys.executable, "-m", "benchmark.report", pi_run, tmp_path / "host",
                          "--out", tmp_path / "cmp" / "report.html"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert rep.returncode == 0, rep.stderr
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert "<h2>Comparison" in page and str(pi_run) in page and str(tmp_path / "host") in page
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert f"## Run `{pi_run}`" in md and f"## Run `{tmp_path / 'host'}`" in md
