"""Shared fixtures: paths, CLI runner, optional-dependency skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def run_cli(*args, env=None, cwd=ROOT, timeout=900):
    """Run ``python -m <args>`` and return the CompletedProcess (text, captured)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=e, timeout=timeout)


def run_main(module: str, *args, env=None) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` run in this process, what ``run_cli`` returns.

    ``main_wrapper`` (what ``-m`` runs) gives the exit code; stdout and stderr are
    captured (neither is a terminal, as in a subprocess); ``env`` is set and the
    working directory is the repository while it runs. TensorFlow is imported once
    per test process instead of once per command (about 10 s each on 2 cores): for
    tests about what a command computes and writes, not about the process itself.
    """
    import contextlib
    import importlib
    import io

    from benchmark.cli import main_wrapper
    main = importlib.import_module(module).main
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in (env or {}).items():
            mp.setenv(k, v)
        mp.chdir(ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main_wrapper(module, main, argv)
    return subprocess.CompletedProcess([module, *argv], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow", reason="TensorFlow (the 'train' extra) not installed")


@pytest.fixture
def linked_cache(tmp_path):
    """A --cache-dir with the default cache's dataset entries linked in (no predictions and
    no conversions of its own), so a test's runs neither render images again nor see another
    test's cached predictions."""
    return link_datasets(tmp_path / "cache")


def link_datasets(d: Path) -> Path:
    """Make ``d`` with the default cache's dataset entries linked in (see linked_cache)."""
    from benchmark.paths import cache_root
    d.mkdir()
    root = cache_root()
    for entry in (root.iterdir() if root.is_dir() else ()):
        if entry.is_dir() and (entry / "meta.json").is_file():
            (d / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
    return d


@pytest.fixture
def evaluate_calls(monkeypatch):
    """Names of the variants benchmark.evaluate.evaluate_variant was called for (it still runs)."""
    from benchmark import evaluate
    seen = []
    real = evaluate.evaluate_variant

    def counting(variant, *args, **kwargs):
        seen.append(variant.name)
        return real(variant, *args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_variant", counting)
    return seen


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment for a test module's CLI runs: a cache of its own, TensorFlow quiet."""
    return {"EDGETPU_BENCH_CACHE": str(tmp_path_factory.mktemp("cache")),
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def read_results(run_dir):
    """A run's top-level results.json, through the run-directory reader."""
    from benchmark.rundir import read_run
    return read_run(run_dir).top


def load_predictions(run_dir, variant, split=None):
    """``probs``/``labels``/``index`` of a variant, through the run-directory reader."""
    from benchmark.rundir import read_run
    run = read_run(run_dir)
    sr = run.splits[split] if split else next(iter(run.splits.values()))
    return sr.predictions(variant)
