"""Temporary files and folders the harness writes, and removing the ones a killed process left.

Every temporary the harness creates while writing something atomically (a
results file, a dataset cache entry, a converted model, a download, a
SavedModel export) has a name that says who made it::

    .<target name>.tmp-<pid>-<random>[.part]     (files and folders beside the target)
    edgetpu-bench-<what>-<pid>-<random>          (folders in the system temporary directory)

A temporary whose process is no longer running is stale: a SIGKILL, a power
cut or a full disk stopped that process before it could rename or delete it.
:func:`sweep` finds and removes those (``edgetpu-bench clean``; every dataset
load sweeps the cache first). A temporary of a process that is still running
(another run, a study worker) is never touched. Folders left by an older
version of the harness (no pid in the name) are removed only when their
newest file is more than a day old.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

#: The marker in every temporary's name, followed by the owner's pid.
TAG = ".tmp-"
SYSTEM_PREFIX = "edgetpu-bench-"
_OWNED = re.compile(r"\.tmp-(\d+)(?:-|$)")
_SYSTEM = re.compile(r"^edgetpu-bench-[a-z]+-(\d+)-")
# Names the harness gave temporaries before they carried a pid (dataset cache entries
# ``.<key>-<random>``, atomic files ``.<name>.<random>``, downloads ``… .part``).
_LEGACY = re.compile(r"^\.[^/]+\.(?:[a-z0-9_]{8})(?:\.part)?$|^\.[0-9a-f]{16,}-[a-z0-9_]{8}$")
LEGACY_AGE_SEC = 24 * 3600


def prefix(target_name: str) -> str:
    """The ``prefix=`` for :mod:`tempfile` beside a file or folder called ``target_name``.

    Examples
    --------
    >>> prefix("results.json") == f".results.json.tmp-{os.getpid()}-"
    True
    """
    return f".{target_name}{TAG}{os.getpid()}-"


def system_prefix(what: str) -> str:
    """The ``prefix=`` for a folder in the system temporary directory."""
    return f"{SYSTEM_PREFIX}{what}-{os.getpid()}-"


def owner_pid(name: str) -> int | None:
    """The pid in a temporary's name, or None when the name carries none.

    Examples
    --------
    >>> owner_pid(".results.json.tmp-123-ab12cd"), owner_pid("edgetpu-bench-export-9-x")
    (123, 9)
    >>> owner_pid("results.json") is None
    True
    """
    m = _OWNED.search(name) or _SYSTEM.match(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclasses.dataclass(frozen=True)
class Stale:
    """A temporary left behind: its path, its size and the process that made it."""

    path: Path
    bytes: int
    pid: int | None

    def describe(self) -> str:
        who = f"process {self.pid}" if self.pid is not None else "an older harness version"
        return f"{self.path} ({human(self.bytes)}, left by {who})"


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _size_and_age(path: Path) -> tuple[int, float]:
    """Total bytes and the newest modification time under ``path``."""
    if not path.is_dir() or path.is_symlink():
        st = path.lstat()
        return st.st_size, st.st_mtime
    total, newest = 0, path.lstat().st_mtime
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except FileNotFoundError:
                continue
            total += st.st_size
            newest = max(newest, st.st_mtime)
    return total, newest


def _stale_entry(path: Path, now: float, *, legacy: bool) -> Stale | None:
    pid = owner_pid(path.name)
    if pid is not None:
        if pid_alive(pid):
            return None
        return Stale(path, _size_and_age(path)[0], pid)
    if legacy and _LEGACY.match(path.name):
        size, newest = _size_and_age(path)
        if now - newest > LEGACY_AGE_SEC:
            return Stale(path, size, None)
    return None


def find_stale(root: Path, *, max_depth: int = 3, legacy: bool = True) -> list[Stale]:
    """Stale temporaries under ``root`` (down to ``max_depth`` folder levels).

    Parameters
    ----------
    root : Path
        A cache folder, a run folder or a model folder. A missing root has none.
    max_depth : int
        How deep to look; the caches keep their entries at most three levels down.
    legacy : bool
        Also report pid-less temporaries of older versions (older than a day).

    Returns
    -------
    list of Stale
        Sorted by path; a stale folder is listed once, not its contents.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    now, found = time.time(), []
    level = [root]
    for _ in range(max_depth):
        nxt = []
        for d in level:
            try:
                children = sorted(d.iterdir())
            except OSError:
                continue
            for child in children:
                hit = _stale_entry(child, now, legacy=legacy)
                if hit is not None:
                    found.append(hit)
                elif child.is_dir() and not child.is_symlink():
                    nxt.append(child)
        level = nxt
    return found


def find_stale_system() -> list[Stale]:
    """Stale ``edgetpu-bench-*`` folders in the system temporary directory."""
    tmp = Path(tempfile.gettempdir())
    try:
        children = sorted(p for p in tmp.iterdir() if p.name.startswith(SYSTEM_PREFIX))
    except OSError:
        return []
    return [s for s in (_stale_entry(p, time.time(), legacy=False) for p in children) if s]


def remove(stale: list[Stale]) -> list[Stale]:
    """Delete what :func:`find_stale` found (the owner is checked again first).

    Returns
    -------
    list of Stale
        What was removed. An entry that disappeared meanwhile, or whose
        process has come back (pid reuse), is skipped.
    """
    removed = []
    for s in stale:
        if s.pid is not None and pid_alive(s.pid):
            continue
        try:
            if s.path.is_dir() and not s.path.is_symlink():
                shutil.rmtree(s.path)
            else:
                s.path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:  # not ours to delete (another user's cache), read-only disk
            print(f"cannot remove the stale temporary {s.path}: {e.strerror or e}",
                  file=sys.stderr)
            continue
        removed.append(s)
    return removed


def sweep(root: Path, *, log=None) -> list[Stale]:
    """Remove the stale temporaries under ``root``; ``log`` gets one line per removal."""
    removed = remove(find_stale(root))
    if log is not None:
        for s in removed:
            log(f"removed a stale temporary: {s.describe()}")
    return removed
