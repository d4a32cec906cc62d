"""Temporaries left by killed processes are found and removed; live ones are never touched."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

from benchmark import tempfiles
from conftest import ROOT, run_cli
from test_userdata import make_tree, load


def _killed_child(code: str) -> None:
    """Run ``code`` in a child that SIGKILLs itself at the end (as a kill -9 mid-write would)."""
    script = textwrap.dedent(code) + "\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    p = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr


def test_sigkill_during_a_cache_store_leaves_a_temporary_the_next_load_removes(tmp_path):
    cache = tmp_path / "cache"
    # the real store, killed after its first array is written
    _killed_child(f"""
        import numpy as np, os, signal
        from benchmark.datasets import cache
        real = np.save
        def save_then_die(path, arr):
            real(path, arr)
            os.kill(os.getpid(), signal.SIGKILL)
        np.save = save_then_die
        a = np.zeros((1000, 100), np.uint8)
        cache.store({str(cache)!r}, "0123456789abcdef", {{n: a for n in cache._ARRAYS}}, {{}})
    """)
    left = [p for p in cache.iterdir() if p.name.startswith(".")]
    assert len(left) == 1 and left[0].is_dir() and any(left[0].iterdir())
    assert tempfiles.owner_pid(left[0].name) is not None
    data = make_tree(tmp_path / "data", classes=("a", "b"), per_class=2)
    ds = load("imagefolder", data, tmp_path)  # any dataset load sweeps the cache first
    assert ds.images.shape[0] == 4
    assert not left[0].exists()


def test_a_live_processes_temporary_is_kept(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".results.json.tmp-{child.pid}-abc"
        live.write_text("{}")
        dead = tmp_path / ".results.json.tmp-999999999-abc"  # beyond pid_max: never running
        dead.write_text("{}")
        removed = tempfiles.sweep(tmp_path)
        assert [s.path for s in removed] == [dead]
        assert live.exists() and not dead.exists()
    finally:
        child.kill()
        child.wait()


def test_legacy_temporaries_only_when_older_than_a_day(tmp_path):
    young = tmp_path / ".0123456789abcdef-k2j4h5g6"
    old = tmp_path / ".fedcba9876543210-a1b2c3d4"
    user = tmp_path / ".my_notes.txt"
    for d in (young, old):
        d.mkdir()
        (d / "images.npy").write_bytes(b"x" * 10)
    user.write_text("mine")
    day_ago = time.time() - 2 * tempfiles.LEGACY_AGE_SEC
    os.utime(old / "images.npy", (day_ago, day_ago))
    os.utime(old, (day_ago, day_ago))
    assert [s.path for s in tempfiles.find_stale(tmp_path)] == [old]
    assert user.exists()


def test_atomic_writes_name_their_temporary_with_the_pid(tmp_path, monkeypatch):
    from benchmark import results
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    results.atomic_write_bytes(tmp_path / "x.json", b"{}")
    assert tempfiles.owner_pid(seen[0]) == os.getpid()


def test_clean_command_lists_then_removes(tmp_path):
    cache, run = tmp_path / "cache", tmp_path / "run"
    (cache / "converted" / "m-full-minmax-abc.tmp-999999999").mkdir(parents=True)
    (cache / "converted" / "m-full-minmax-abc.tmp-999999999" / "int8.tflite").write_bytes(
        np.zeros(2048, np.uint8).tobytes())
    run.mkdir()
    (run / ".predictions_int8.npz.tmp-999999998-xyz").write_bytes(b"123")
    (run / "results.json").write_text("{}")
    systmp = tmp_path / "systmp"  # so other processes' temporaries do not count
    (systmp / "edgetpu-bench-export-999999997-q1").mkdir(parents=True)
    env = {"TMPDIR": str(systmp)}
    p = run_cli("benchmark.clean", run, "--cache-dir", cache, "--dry-run", env=env)
    assert p.returncode == 0, p.stderr
    assert "would remove 3 stale temporaries (2.0 KiB)" in p.stdout
    assert (run / ".predictions_int8.npz.tmp-999999998-xyz").exists()
    p = run_cli("benchmark.clean", run, "--cache-dir", cache, env=env)
    assert p.returncode == 0 and "removed 3 stale temporaries" in p.stdout
    assert list(systmp.iterdir()) == []
    assert "left by process 999999999" in p.stdout
    assert sorted(x.name for x in run.iterdir()) == ["results.json"]
    assert list((cache / "converted").iterdir()) == []
    p = run_cli("benchmark.clean", tmp_path / "nope", "--cache-dir", cache, env=env)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "not a folder" in p.stderr
