"""On-disk cache of decoded image arrays: one directory of ``.npy`` files per key.

Arrays are written to a temporary directory that is renamed into place, so a
cache entry is either complete or absent. Images are memory-mapped on load.
An array too large for memory is built in a :func:`scratch_npy` (or
:func:`new_scratch`) file, filled chunk by chunk (see
:mod:`benchmark.datasets.parallel`), and handed to :func:`store` as its path,
which moves it into the entry. :func:`release` gives the resident pages of
mapped rows back once they are no longer needed, so reading a large set
does not grow the process's memory.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark import tempfiles
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


def new_scratch(root: Path, key: str, name: str, shape: tuple[int, ...], dtype) -> Path:
    """Like :func:`scratch_npy` but only creates the (sparse, zero) file and returns its path.

    Fill it with :func:`benchmark.datasets.parallel.fill` (or
    :func:`benchmark.datasets.parallel.open_rows`).
    """
    array, path = scratch_npy(root, key, name, shape, dtype)
    del array
    return path


def compact_rows(root: Path, key: str, name: str, path: Path, kept: np.ndarray,
                 block: int = 1024) -> Path:
    """The rows ``kept`` (sorted indices) of the scratch ``.npy`` at ``path``, as a new scratch.

    Copied ``block`` rows at a time, releasing the pages of both files as it
    goes, so memory stays flat. ``path`` is removed once the copy is
    complete (and returned unchanged when every row is kept); the new file
    is removed if the copy fails.
    """
    source = np.load(path, mmap_mode="r")
    kept = np.asarray(kept, np.int64)
    if kept.size == source.shape[0]:
        return path
    shape = (int(kept.size),) + source.shape[1:]
    if kept.size == 0:
        dense_path = Path(root) / f".{key}-{name}-{os.getpid()}.npy"
        np.save(dense_path, np.zeros(shape, source.dtype))
    else:
        dense, dense_path = scratch_npy(root, key, name, shape, source.dtype)
        try:
            for start in range(0, kept.size, block):
                rows = kept[start:start + block]
                dense[start:start + rows.size] = source[rows]
                release(dense, start, start + rows.size)
                release(source, int(rows[0]), int(rows[-1]) + 1)
            dense.flush()
        except BaseException:
            del dense
            dense_path.unlink(missing_ok=True)
            raise
        del dense
    del source
    Path(path).unlink()
    return dense_path


def _mapping(array: np.ndarray) -> tuple[mmap.mmap | None, str | None]:
    """The ``mmap`` of the ``np.memmap`` behind ``array`` (itself or a base) and its mode."""
    a = array
    while a is not None:
        mm = getattr(a, "_mmap", None)
        if isinstance(mm, mmap.mmap):
            return mm, getattr(a, "mode", None)
        a = getattr(a, "base", None)
    return None, None


def _row_span(array: np.ndarray, start: int, stop: int) -> tuple[int, int]:
    """Byte offsets (from the array's data pointer) of the lowest and past-the-highest byte
    of rows ``[start, stop)``."""
    lo = start * array.strides[0]
    hi = (stop - 1) * array.strides[0] + array.itemsize
    for d, s in zip(array.shape[1:], array.strides[1:]):
        if s < 0:
            lo += (d - 1) * s
        else:
            hi += (d - 1) * s
    return lo, hi


def release(array: np.ndarray, start: int = 0, stop: int | None = None) -> int:
    """Drop the resident pages of rows ``[start, stop)`` of a memory-mapped array.

    ``madvise(MADV_DONTNEED)`` on the pages that hold those rows (the page
    range is rounded outwards): they leave the process's resident set (RSS)
    and stay in the page cache (or, written, in the file), so reading the
    rows again is correct and cheap. Works on an ``np.memmap`` (e.g.
    ``Dataset.images`` of a cached dataset) and on any view of one (a slice,
    ``np.asarray`` of it); a no-op returning 0 for in-memory arrays,
    copy-on-write maps (``mmap_mode="c"``, whose private changes it would
    discard), empty ranges, arrays with a reversed first axis, and
    platforms without ``madvise``.

    Parameters
    ----------
    array : ndarray, shape (N, ...)
    start, stop : int
        Row range (``stop`` default N; clipped to ``[0, N]``).

    Returns
    -------
    int
        Bytes advised (0 when nothing was done).
    """
    mm, mode = _mapping(array)
    if mm is None or mode == "c" or array.ndim == 0 or array.strides[0] < 0 \
            or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return 0
    n = array.shape[0]
    stop = n if stop is None else min(int(stop), n)
    start = max(int(start), 0)
    if stop <= start or array.size == 0:
        return 0
    try:
        base = np.frombuffer(mm, np.uint8).__array_interface__["data"][0]
    except ValueError:  # a closed map
        return 0
    lo, hi = _row_span(array, start, stop)
    lo += array.__array_interface__["data"][0] - base
    hi += array.__array_interface__["data"][0] - base
    lo = max(lo - lo % mmap.PAGESIZE, 0)
    hi = min(hi + (-hi) % mmap.PAGESIZE, len(mm))
    if hi <= lo:
        return 0
    mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    return hi - lo


def store(root: Path, key: str, arrays: dict[str, np.ndarray | Path], meta: dict) -> Path:
    """Write a cache entry atomically and return its directory.

    An array given as the path of a ``.npy`` file (see :func:`scratch_npy`;
    same file system as ``root``) is moved into the entry, and removed if
    the store fails.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    tmp = Path(tempfile.mkdtemp(prefix=tempfiles.prefix(key), dir=root))
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
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        for value in arrays.values():
            if isinstance(value, (str, Path)):
                Path(value).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(final)) from e   # name it (a full disk)
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
