"""Runtime pairing (benchmark/backends/pairing.py): detection with faked dpkg/ctypes, every
branch of the compatibility table, the refusal before the delegate loads, the child probe."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest

from conftest import ROOT

from benchmark.backends import pairing
from benchmark.backends.pairing import (BAD, GOOD, UNKNOWN, EdgeTPULibrary, Interp,
                                        check_pairing, classify_label,
                                        classify_package_version, judge)
from benchmark.backends.runtime import Runtime
from benchmark.errors import BackendUnavailable

CORAL_LABEL = "BuildLabel(COMPILER=6.3.0 20170516,DATE=redacted,TIME=redacted), RuntimeVersion(14)"
REBUILD_LABEL = "BuildLabel(COMPILER=14.2.0,DATE=Feb 22 2026,TIME=09:51:57), RuntimeVersion(14)"


def lib(version, package="libedgetpu1-std"):
    return classify_package_version(package, version)


def fake_runtime(package, version):
    return Runtime(package=package, version=version, Interpreter=object, load_delegate=None)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(pairing, "_WARNED", set())
    monkeypatch.delenv("EDGETPU_BENCH_PAIRING", raising=False)


# --- detection ---------------------------------------------------------------------------

@pytest.mark.parametrize("version, build, tf", [
    ("16.0", "coral-16.0", None), ("15.0", "coral-15.0", None), ("14.1", "coral-14.1", None),
    ("13.0", "coral-13.0", None), ("16.0tf2.17.1-1", "rebuild", "2.17.1"),
    ("16.0TF2.13.1-2", "rebuild", "2.13.1"), ("16.0tf2.18.1-1", "rebuild", "2.18.1"),
    ("16.0pp3", "rebuild", "2.10.1"), ("16.0-0ppa1", "rebuild", "2.8.4"),
    ("17.0~beta", "unknown", None)])
def test_package_versions_are_classified(version, build, tf):
    got = lib(version)
    assert (got.build, got.tf, got.found_by, got.version) == (build, tf, "dpkg", version)


class FakeRun:
    """Stands in for subprocess.run: returns the given dpkg-query stdout, records the call."""

    def __init__(self, stdout="", exc=None):
        self.stdout, self.exc, self.calls = stdout, exc, []

    def __call__(self, cmd, **kw):
        self.calls.append(cmd)
        if self.exc:
            raise self.exc
        return subprocess.CompletedProcess(cmd, 0 if self.stdout else 1, self.stdout, "")


def test_dpkg_query_output_is_read():
    run = FakeRun("libedgetpu1-std:arm64\t16.0tf2.17.1-1\tii \n")
    got = pairing.dpkg_libedgetpu(run)
    assert (got.package, got.version, got.build, got.tf) == \
        ("libedgetpu1-std", "16.0tf2.17.1-1", "rebuild", "2.17.1")
    assert run.calls[0][:2] == ["dpkg-query", "-W"]
    assert run.calls[0][-2:] == ["libedgetpu1-std", "libedgetpu1-max"]


def test_dpkg_removed_package_or_no_dpkg_is_none():
    # 'rc' = removed, config files left: not installed.
    assert pairing.dpkg_libedgetpu(FakeRun("libedgetpu1-max\t16.0\trc \n")) is None
    assert pairing.dpkg_libedgetpu(FakeRun("")) is None
    assert pairing.dpkg_libedgetpu(FakeRun(exc=FileNotFoundError("dpkg-query"))) is None


def test_dpkg_query_on_path_is_really_run(tmp_path, monkeypatch):
    stub = tmp_path / "dpkg-query"
    stub.write_text("#!/bin/sh\nprintf 'libedgetpu1-max\\t16.0\\tii \\n'\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    got = pairing.dpkg_libedgetpu()
    assert (got.package, got.build) == ("libedgetpu1-max", "coral-16.0")


class FakeFunc:
    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


class FakeCDLL:
    """ctypes.CDLL stand-in: a library whose edgetpu_version() returns ``label``."""

    def __init__(self, label=None, error=None):
        self.label, self.error, self.loaded = label, error, []

    def __call__(self, name):
        self.loaded.append(name)
        if self.error:
            raise self.error
        obj = type("Lib", (), {})()
        if self.label is not None:
            obj.edgetpu_version = FakeFunc(self.label.encode())
        return obj


def test_ctypes_edgetpu_version_is_read_when_dpkg_knows_nothing():
    cdll = FakeCDLL(CORAL_LABEL)
    got = pairing.detect_library("/opt/lib/libedgetpu.so.1", run=FakeRun(""), cdll=cdll)
    assert cdll.loaded == ["/opt/lib/libedgetpu.so.1"]
    assert (got.found_by, got.build, got.runtime_version) == ("ctypes", "coral-16.0", 14)
    assert got.describe() == f"libedgetpu ({CORAL_LABEL})"
    other = pairing.ctypes_libedgetpu("x", FakeCDLL(REBUILD_LABEL))
    assert (other.build, other.runtime_version) == ("unknown", 14)


def test_unloadable_library_or_missing_symbol_is_version_unknown():
    none = pairing.detect_library("x", run=FakeRun(""), cdll=FakeCDLL(error=OSError("no such")))
    assert (none.found_by, none.build) == ("none", "unknown")
    assert pairing.ctypes_libedgetpu("x", FakeCDLL(label=None)) is None


def test_dpkg_wins_over_ctypes():
    cdll = FakeCDLL(REBUILD_LABEL)
    got = pairing.detect_library("x", run=FakeRun("libedgetpu1-std\t16.0\tii \n"), cdll=cdll)
    assert got.found_by == "dpkg" and cdll.loaded == []


def test_installed_interpreters_come_from_distribution_metadata():
    versions = {"ai-edge-litert": "2.3.0", "tensorflow-cpu": "2.21.0", "pycoral": "2.0.0"}

    def version_of(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]
    got = pairing.installed_interpreters(version_of)
    assert got == [Interp("ai_edge_litert", "2.3.0"), Interp("tensorflow", "2.21.0"),
                   Interp("pycoral", "2.0.0")]


# --- the compatibility table -------------------------------------------------------------

@pytest.mark.parametrize("version, package, interp_version, status, cited", [
    ("16.0", "tflite_runtime", "2.5.0.post1", GOOD, "pycoral"),
    ("16.0", "tflite_runtime", "2.14.0", BAD, "#812"),
    ("16.0", "tensorflow", "2.21.0", BAD, "#812"),
    ("16.0", "ai_edge_litert", "2.3.0", BAD, "#812"),
    ("16.0", "tflite_runtime", "2.1.0.post1", BAD, "#259"),
    ("16.0", "tflite_runtime", "2.11.1", UNKNOWN, "#812"),
    ("15.0", "tflite_runtime", "2.5.0", GOOD, "#259"),
    ("15.0", "tflite_runtime", "2.1.0.post1", BAD, "#259"),
    ("15.0", "tflite_runtime", "2.14.0", UNKNOWN, ""),
    ("14.1", "tflite_runtime", "2.5.0", BAD, "#214"),
    ("14.1", "tflite_runtime", "2.1.0", UNKNOWN, ""),
    ("13.0", "tflite_runtime", "2.1.0", GOOD, "#44"),
    ("13.0", "tflite_runtime", "1.15.0", BAD, "#44"),
    ("16.0tf2.17.1-1", "tflite_runtime", "2.17.1", GOOD, "feranick"),
    ("16.0tf2.17.1-1", "tensorflow", "2.17.0", GOOD, "feranick"),
    ("16.0tf2.17.1-1", "tflite_runtime", "2.14.0", UNKNOWN, ""),
    ("16.0tf2.13.1-2", "tflite_runtime", "2.15.0", GOOD, "#812"),
    ("16.0tf2.13.1-2", "tflite_runtime", "2.16.1", UNKNOWN, ""),
    ("16.0tf2.17.1-1", "ai_edge_litert", "1.2.0", UNKNOWN, "LiteRT#3611"),
    ("17.0~beta", "tflite_runtime", "2.17.1", UNKNOWN, ""),
])
def test_every_branch_of_the_table(version, package, interp_version, status, cited):
    v = judge(lib(version), Interp(package, interp_version))
    assert v.status == status, v.line()
    assert cited in v.source


def test_every_table_row_is_reachable():
    """Each row is hit by at least one case of test_every_branch_of_the_table (no dead rows)."""
    cases = [("16.0", "tflite_runtime", "2.5.0"), ("16.0", "tflite_runtime", "2.12.0"),
             ("16.0", "ai_edge_litert", "1.0"), ("16.0", "tflite_runtime", "1.15"),
             ("16.0", "tflite_runtime", "2.8"), ("15.0", "tflite_runtime", "2.5.0"),
             ("15.0", "tflite_runtime", "2.1"), ("14.0", "tflite_runtime", "2.3"),
             ("13.0", "tflite_runtime", "2.1.0"), ("13.0", "tflite_runtime", "1.15"),
             ("16.0tf2.16.1-1", "tflite_runtime", "2.16.1"),
             ("16.0tf2.13.1-2", "tflite_runtime", "2.14.1"),
             ("16.0tf2.16.1-1", "ai_edge_litert", "1.0")]
    hit = set()
    for version, package, iv in cases:
        v = judge(lib(version), Interp(package, iv))
        hit |= {i for i, r in enumerate(pairing.COMPATIBILITY)
                if (r.evidence, r.source) == (v.evidence, v.source)}
    assert hit == set(range(len(pairing.COMPATIBILITY)))


def test_unknown_library_says_why():
    v = judge(EdgeTPULibrary(found_by="none"), Interp("tflite_runtime", "2.17.1"))
    assert v.status == UNKNOWN and "could not be read" in v.evidence
    v = judge(classify_label(REBUILD_LABEL), Interp("tflite_runtime", "2.17.1"))
    assert v.status == UNKNOWN and "TensorFlow version is not known" in v.evidence


def test_an_unreadable_interpreter_version_is_unknown_not_bad():
    v = judge(lib("16.0"), Interp("tflite_runtime", "unknown"))
    assert v.status == UNKNOWN and "version could not be read" in v.evidence


def test_choose_prefers_known_good_then_unknown():
    interps = [Interp("ai_edge_litert", "2.3.0"), Interp("tflite_runtime", "2.17.1")]
    assert pairing.choose(lib("16.0tf2.17.1-1"), interps).interpreter.package == "tflite_runtime"
    assert pairing.choose(lib("16.0"), interps).status == BAD
    assert pairing.choose(lib("16.0"), []) is None


# --- check_pairing: what the backend calls before load_delegate ----------------------------

def test_known_good_passes_silently(capsys):
    rt = fake_runtime("tflite_runtime", "2.17.1")
    got, verdict = check_pairing(rt, lib=lib("16.0tf2.17.1-1"), interpreters=[])
    assert got is rt and verdict.status == GOOD
    assert capsys.readouterr().err == ""


def test_known_bad_is_refused_with_one_line_saying_what_to_install():
    rt = fake_runtime("ai_edge_litert", "2.3.0")
    with pytest.raises(BackendUnavailable) as e:
        check_pairing(rt, lib=lib("16.0"), interpreters=[Interp("ai_edge_litert", "2.3.0")])
    msg = str(e.value)
    assert "\n" not in msg and e.value.exit_code == 4
    assert msg.startswith("refusing to load the Edge TPU delegate: libedgetpu1-std 16.0 with "
                          "ai_edge_litert 2.3.0: known-bad")
    assert "google-coral/edgetpu#812" in msg
    assert "16.0tf2.17.1-1 with tflite_runtime 2.17.1" in msg and "tools/pi/setup.sh" in msg


def test_unknown_warns_once_and_proceeds(capsys):
    rt = fake_runtime("tflite_runtime", "2.14.0")
    for _ in range(2):
        got, verdict = check_pairing(rt, lib=lib("16.0tf2.17.1-1"), interpreters=[])
        assert got is rt and verdict.status == UNKNOWN
    err = capsys.readouterr().err
    assert err.count("warning: untested Edge TPU runtime pairing, running anyway") == 1
    assert "16.0tf2.17.1-1 with tflite_runtime 2.14.0" in err


def test_a_known_good_installed_interpreter_replaces_the_default(capsys):
    wanted = fake_runtime("tflite_runtime", "2.17.1")
    asked = []

    def find(package):
        asked.append(package)
        return wanted
    interps = [Interp("ai_edge_litert", "2.3.0"), Interp("tflite_runtime", "2.17.1")]
    got, verdict = check_pairing(fake_runtime("ai_edge_litert", "2.3.0"),
                                 lib=lib("16.0tf2.17.1-1"), interpreters=interps, find=find)
    assert got is wanted and verdict.status == GOOD and asked == ["tflite_runtime"]
    assert "note: the Edge TPU runs with tflite_runtime 2.17.1" in capsys.readouterr().err
    # The same rescue for a known-bad default (Coral's 16.0 with tflite_runtime 2.5 beside it).
    got, _ = check_pairing(fake_runtime("ai_edge_litert", "2.3.0"), lib=lib("16.0"),
                           interpreters=[Interp("tflite_runtime", "2.5.0.post1")],
                           find=lambda p: fake_runtime(p, "2.5.0.post1"))
    assert (got.package, got.version) == ("tflite_runtime", "2.5.0.post1")


def test_an_explicit_choice_is_never_replaced():
    interps = [Interp("ai_edge_litert", "2.3.0"), Interp("tflite_runtime", "2.5.0.post1")]
    with pytest.raises(BackendUnavailable, match="known-bad"):
        check_pairing(fake_runtime("ai_edge_litert", "2.3.0"), prefer="ai_edge_litert",
                      lib=lib("16.0"), interpreters=interps, find=pytest.fail)


def test_a_matching_interpreter_that_does_not_load_is_skipped(capsys):
    def find(package):
        raise BackendUnavailable("tflite_runtime: ImportError: numpy.core.multiarray failed")
    with pytest.raises(BackendUnavailable, match="refusing"):
        check_pairing(fake_runtime("ai_edge_litert", "2.3.0"), lib=lib("16.0"),
                      interpreters=[Interp("tflite_runtime", "2.5.0")], find=find)
    assert "would match libedgetpu1-std 16.0 but does not load" in capsys.readouterr().err


def test_pairing_off_turns_the_refusal_into_a_warning(monkeypatch, capsys):
    monkeypatch.setenv("EDGETPU_BENCH_PAIRING", "off")
    rt = fake_runtime("ai_edge_litert", "2.3.0")
    got, verdict = check_pairing(rt, lib=lib("16.0"), interpreters=[])
    assert got is rt and verdict.status == BAD
    assert "EDGETPU_BENCH_PAIRING=off, loading a known-bad pair" in capsys.readouterr().err


def test_pycoral_is_judged_by_its_tflite_runtime(monkeypatch):
    monkeypatch.setattr(pairing.metadata, "version",
                        lambda name: {"tflite-runtime": "2.5.0.post1"}[name])
    got, verdict = check_pairing(fake_runtime("pycoral", "2.0.0"), lib=lib("16.0"),
                                 interpreters=[])
    assert verdict.status == GOOD and verdict.interpreter == Interp("tflite_runtime",
                                                                    "2.5.0.post1")


def test_the_backend_refuses_before_the_delegate_is_loaded(monkeypatch, tmp_path):
    from benchmark.backends import edgetpu
    model = tmp_path / "m_edgetpu.tflite"
    model.write_bytes(b"not read: tpu_proof is faked")
    monkeypatch.setattr(edgetpu, "tpu_proof", lambda path, source=None: {})
    monkeypatch.setattr(edgetpu, "_pycoral_make_interpreter", lambda: None)
    monkeypatch.setattr(pairing, "detect_library", lambda library=None: lib("16.0"))
    loaded = []
    rt = Runtime("ai_edge_litert", "2.3.0", Interpreter=object,
                 load_delegate=lambda *a: loaded.append(a))
    with pytest.raises(BackendUnavailable, match="refusing to load the Edge TPU delegate"):
        edgetpu.EdgeTPUBackend(model, library="/fake/libedgetpu.so.1", runtime=rt)
    assert loaded == []


def test_the_backends_info_records_the_pairing_verdict(monkeypatch, tmp_path):
    """The verdict the backend ran with is in info() (results.json's runtime record), also
    through the Edge TPU child process."""
    from benchmark.backends import edgetpu, isolated
    from benchmark.backends.fake import FakeEdgeTPUBackend, make_fake_compiled
    from benchmark.backends.runtime import find_runtime
    model = tmp_path / "m_int8_edgetpu.tflite"
    make_fake_compiled(ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite",
                       model)
    real = find_runtime()           # the fake runs as "fake-<package>" <its version>
    tf = real.version
    here = pairing.judge(pairing.detect_library("libedgetpu.so.1"),
                         Interp("fake-" + real.package, tf)).as_dict()
    monkeypatch.setattr(pairing, "detect_library", lambda library=None: lib(f"16.0tf{tf}-1"))
    with FakeEdgeTPUBackend(model) as b:
        rec = b.info()["pairing"]
    assert rec["status"] == GOOD and rec["library"]["version"] == f"16.0tf{tf}-1"
    assert rec["library"]["build"] == "rebuild" and rec["library"]["tf"] == tf
    assert rec["interpreter"]["package"].startswith("fake-") and rec["source"]
    # the child process judges this machine's own libedgetpu (here: none, version unknown)
    if here["status"] == BAD:
        pytest.skip("this machine's libedgetpu is known-bad with the fake's interpreter")
    monkeypatch.setattr(edgetpu, "find_delegate_library", lambda system=None: "libedgetpu.so.1")
    with isolated.IsolatedBackend(model, target="benchmark.backends.fake:FakeEdgeTPUBackend",
                                  timeout=60) as child:
        rec = child.info()["pairing"]
    assert rec == here and rec["interpreter"]["package"].startswith("fake-")


# --- the probe ---------------------------------------------------------------------------

def py(code):
    return [sys.executable, "-c", code]


def test_probe_ok_returns_the_childs_last_line():
    assert pairing.probe("m.tflite", py("print('x'); print('probe ok: fine')")) == \
        "probe ok: fine"


def test_probe_segfault_is_one_line_naming_the_pairing():
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    with pytest.raises(BackendUnavailable) as e:
        pairing.probe("m.tflite", py(code))
    assert "died of SIGSEGV" in str(e.value) and "mismatch" in str(e.value)
    assert "\n" not in str(e.value)


def test_probe_hang_times_out():
    with pytest.raises(BackendUnavailable, match="no answer within 1 s"):
        pairing.probe("m.tflite", py("import time; time.sleep(30)"), timeout=1)


@pytest.mark.parametrize("error, cause", [
    ("RuntimeError: Internal: Unsupported data type in custom op handler: 0Node number 1 "
     "(EdgeTpuDelegateForCustomOp) failed to prepare.", "do not match"),
    ("ValueError: Failed to load delegate from libedgetpu.so.1", "no device or no permission"),
    ("RuntimeError: Failed to prepare for TPU. Failed precondition: Package requires runtime "
     "version (14), which is newer than this runtime version (13).", "newer runtime"),
])
def test_probe_failure_names_the_likely_cause(error, cause):
    code = f"import sys; print('Traceback ...', file=sys.stderr); print({error!r}, " \
           "file=sys.stderr); sys.exit(1)"
    with pytest.raises(BackendUnavailable) as e:
        pairing.probe("m.tflite", py(code))
    assert error in str(e.value) and cause in str(e.value)


def test_probe_child_loads_delegate_and_invokes(monkeypatch, capsys):
    import numpy as np
    calls = []

    class Interp_:
        def __init__(self, model_path, experimental_delegates):
            calls.append(("interpreter", model_path, experimental_delegates))

        def allocate_tensors(self):
            calls.append("allocate")

        def get_input_details(self):
            return [{"index": 0, "shape": np.array([1, 4, 4, 3]), "dtype": np.uint8}]

        def set_tensor(self, index, value):
            calls.append(("set", index, value.shape))

        def invoke(self):
            calls.append("invoke")
    rt = Runtime("tflite_runtime", "2.17.1", Interp_,
                 lambda lib, opts: calls.append(("delegate", lib, opts)) or "token")
    monkeypatch.setattr("benchmark.backends.runtime.find_runtime", lambda package: rt)
    assert pairing.main(["--child", "m_edgetpu.tflite", "--library", "lib.so",
                         "--runtime", "tflite_runtime", "--device", "usb:0"]) == 0
    assert calls[0] == ("delegate", "lib.so", {"device": "usb:0"})
    assert calls[1] == ("interpreter", "m_edgetpu.tflite", ["token"])
    assert calls.count("invoke") == 2
    assert capsys.readouterr().out.startswith(
        "probe ok: m_edgetpu.tflite on the Edge TPU usb:0 with tflite_runtime 2.17.1")


def test_probe_command_runs_this_module():
    cmd = pairing.probe_command("m.tflite", library="lib.so", package="tflite_runtime",
                                device="pci:0")
    assert cmd[:3] == [sys.executable, "-m", "benchmark.backends.pairing"]
    assert cmd[3:] == ["--child", "m.tflite", "--library", "lib.so", "--runtime",
                       "tflite_runtime", "--device", "pci:0"]


# --- command line and docs ---------------------------------------------------------------

def test_cli_without_libedgetpu_is_one_line_exit_4(tmp_path):
    env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    (tmp_path / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "dpkg-query").chmod(0o755)
    r = subprocess.run([sys.executable, "-m", "benchmark.backends.pairing",
                        "--library", str(tmp_path / "absent.so")],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    # An explicit --library that cannot be read is "version unknown", not an error.
    assert r.returncode == 0, r.stderr
    assert "pairing:" in r.stdout and "unknown" in r.stdout
    r = subprocess.run([sys.executable, "-m", "benchmark.backends.pairing"], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=120)
    if r.returncode == 0:
        pytest.skip("a libedgetpu is installed here")
    assert r.returncode == 4
    assert r.stderr.startswith("benchmark.backends.pairing: error: libedgetpu not found")
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_reports_the_chosen_pair(monkeypatch, capsys):
    monkeypatch.setattr(pairing, "detect_library", lambda library=None: lib("16.0tf2.17.1-1"))
    monkeypatch.setattr(pairing, "installed_interpreters", lambda: [
        Interp("ai_edge_litert", "2.3.0"), Interp("tflite_runtime", "2.17.1")])
    assert pairing.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["libedgetpu: libedgetpu1-std 16.0tf2.17.1-1 [rebuild, found by dpkg]",
                   "interpreter: ai_edge_litert 2.3.0: unknown",
                   "interpreter: tflite_runtime 2.17.1: known-good",
                   "pairing: " + judge(lib("16.0tf2.17.1-1"),
                                       Interp("tflite_runtime", "2.17.1")).line()]
    monkeypatch.setattr(pairing, "detect_library", lambda library=None: lib("16.0"))
    with pytest.raises(BackendUnavailable, match="refusing"):
        pairing.main([])


def test_docs_hold_the_table_the_code_uses():
    doc = (ROOT / "docs" / "edge-tpu.md").read_text()
    assert pairing.table_markdown() in doc


@pytest.mark.edgetpu
def test_real_device_pairing_and_probe(capsys):
    """On a machine with libedgetpu and an Edge TPU: the installed pair is not known-bad and
    the child-process probe loads the delegate on Coral's MobileNet v1 0.25 and invokes it."""
    from benchmark.backends import edgetpu
    from conftest import SHARED
    model = SHARED / "edgetpu" / "pairs" / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    if edgetpu.find_delegate_library() is None:
        pytest.skip("no Edge TPU runtime (libedgetpu) on this machine")
    if not model.is_file():
        pytest.skip("../shared/edgetpu/pairs not present")
    assert pairing.main(["--probe", str(model)]) == 0
    out = capsys.readouterr().out
    assert "pairing: " in out and "probe ok: " in out
