"""Report figures shared across runs: ``<cache>/figures/<key>.png``.

A figure's key (:meth:`benchmark.report.FigureJob.key`) hashes the drawing
function, exactly the data it draws, :data:`benchmark.plots.RENDER_VERSION`,
the DPI and the versions of matplotlib, Pillow and numpy; the same key gives
byte-identical PNG bytes (the report tests check that drawing is
deterministic). So a new run whose data was drawn before (a warm
``benchmark.run`` repeating a command: its predictions are byte-identical)
reads its figures from here instead of drawing them; the run's own
``.figures`` directory still gets a copy, so a rebuild does not depend on
this cache.

The directory is bounded: after storing, the least recently used files
(modification time, refreshed on every hit) are removed until at most
:data:`MAX_BYTES` remain. Removing the directory is always safe.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Sub-directory of the cache (``--cache-dir``, else ``$EDGETPU_BENCH_CACHE``, else datasets/cache).
SUBDIR = "figures"
#: Size the shared figure cache is trimmed to (least recently used first).
MAX_BYTES = 256 * 2 ** 20


def shared_dir(cache_dir: str | Path | None = None) -> Path:
    """``<cache_dir or the default cache>/figures``."""
    from benchmark.paths import cache_root
    return (Path(cache_dir) if cache_dir else cache_root()) / SUBDIR


def touch(path: Path) -> None:
    """Mark a cached figure as just used (its mtime orders :func:`trim`)."""
    try:
        os.utime(path)
    except OSError:
        pass                      # a read-only cache still serves its figures


def trim(directory: Path, max_bytes: int = MAX_BYTES) -> list[Path]:
    """Remove the least recently used ``*.png`` of ``directory`` beyond ``max_bytes`` in total;
    return what was removed (nothing when the directory is missing or unwritable)."""
    files = []
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.name.endswith(".png") and e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    files.append((st.st_mtime_ns, e.name, st.st_size))
    except OSError:
        return []
    total = sum(f[2] for f in files)
    removed = []
    for _, name, size in sorted(files):
        if total <= max_bytes:
            break
        path = directory / name
        try:
            path.unlink()
        except OSError:
            continue
        total -= size
        removed.append(path)
    return removed
