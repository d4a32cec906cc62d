"""On-disk cache of decoded image arrays: one directory of ``.npy`` files per key.

Arrays are written to a temporary directory that is renamed into place, so a
cache entry is either complete or absent. Images are memory-mapped on load.
An array too large for memory is built in a :func:`scratch_npy` file and
handed to :func:`store` as its path, which moves it into the entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark.errors import DataError

_ARRAYS = ("images", "labels", "groups")


def cache_key(description: dict) -> str:
    """Stable 16-hex-digit key of a JSON-serializable description."""
    blob = json.dumps(description, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def load(root: Path, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """Arrays and meta of a cache entry, or None when it is absent.

    Raises
    ------
    DataError
        The entry is there but damaged (a file missing or unreadable).
    """
    d = Path(root) / key
    if not (d / "meta.json").is_file():
        return None
    try:
        arrays = {name: np.load(d / f"{name}.npy", mmap_mode="r" if name == "images" else None)
                  for name in _ARRAYS}
        return arrays, json.loads((d / "meta.json").read_text())
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"cache entry {d} is damaged ({type(e).__name__}: {e}); delete it to "
                        "rebuild it") from None


def scratch_npy(root: Path, key: str, name: str, shape: tuple[int, ...],
                dtype) -> tuple[np.memmap, Path]:
    """A writable memory-mapped ``.npy`` in ``root`` to build the array ``name`` of entry ``key``.

    Pass the returned path (not the array) to :func:`store`, which moves the
    file into the entry; the caller removes it if the build fails.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f".{key}-{name}-{os.getpid()}.npy"
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape), path


def store(root: Path, key: str, arrays: dict[str, np.ndarray | Path], meta: dict) -> Path:
    """Write a cache entry atomically and return its directory.

    An array given as the path of a ``.npy`` file (see :func:`scratch_npy`;
    same file system as ``root``) is moved into the entry, and removed if
    the store fails.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        for name in _ARRAYS:
            value = arrays[name]
            if isinstance(value, (str, Path)):
                os.replace(value, tmp / f"{name}.npy")
            else:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(value))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        if final.exists():  # another process finished first; keep its copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for value in arrays.values():
            if isinstance(value, (str, Path)):
                Path(value).unlink(missing_ok=True)
        raise
    return final


def load_or_build(root: Path, key: str,
                  build: Callable[[], tuple[dict[str, np.ndarray], dict]]
                  ) -> tuple[dict[str, np.ndarray], dict]:
    """The cache entry ``key``, built with ``build()`` and stored first when absent.

    ``build`` returns ``(arrays, meta)``; the result is always read back from
    the cache, so images come memory-mapped either way.
    """
    hit = load(root, key)
    if hit is None:
        store(root, key, *build())
        hit = load(root, key)
    return hit
