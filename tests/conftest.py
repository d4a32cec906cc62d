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


@pytest.fixture(scope="session")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow", reason="TensorFlow (the 'train' extra) not installed")


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
