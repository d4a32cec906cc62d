"""Where the project keeps shipped models and the dataset cache."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def models_root() -> Path:
    """Directory of shipped trained artifacts (``$EDGETPU_BENCH_MODELS`` overrides)."""
    return Path(os.environ.get("EDGETPU_BENCH_MODELS", PROJECT_ROOT / "models"))


def cache_root() -> Path:
    """Dataset cache directory (``$EDGETPU_BENCH_CACHE`` overrides); git-ignored."""
    return Path(os.environ.get("EDGETPU_BENCH_CACHE", PROJECT_ROOT / "datasets" / "cache"))
