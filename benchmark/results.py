"""Low-level output: atomic writes, JSON/CSV writers, the JSON reader, environment facts.

File names and the run-directory layout belong to :mod:`benchmark.rundir`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from benchmark import __version__, tempfiles
from benchmark.paths import PROJECT_ROOT


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=tempfiles.prefix(path.name), dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from e   # say which file (disk full)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default,
                                         allow_nan=True) + "\n").encode())


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_text_file(path: Path, what: str, *, encoding: str = "utf-8") -> str:
    """The text of ``path``, or a DataError naming ``what`` and the file.

    ``"<what> <path> is missing"`` when it does not exist; ``"cannot read
    <what> <path>: <reason>"`` when it cannot be read or decoded.
    """
    from benchmark.errors import DataError
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") \
            from None


def read_json_file(path: Path, what: str, *, not_object: str = "expected a JSON object") -> dict:
    """A JSON object read from ``path``, or a DataError naming the file and what is wrong.

    ``what`` names the file in the not-found message; ``not_object`` is the
    message when the file holds valid JSON that is not an object.
    """
    from benchmark.errors import DataError
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: {not_object}")
    return data


def write_csv(path: Path, header: list[str], rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def git_hash(root: Path = PROJECT_ROOT) -> str | None:
    """The checkout's commit (with ``-dirty`` when modified), or None outside git."""
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty",
                              "--abbrev=40"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict:
    """Versions and host facts recorded with every run."""
    from benchmark.cpuinfo import cpu_features
    versions = {}
    for pkg in ("numpy", "pillow", "pandas", "tabulate", "matplotlib", "ai-edge-litert",
                "tflite-runtime", "tensorflow", "tensorflow-cpu", "keras", "pycoral"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"edgetpu_bench": __version__, "git": git_hash(), "python": sys.version.split()[0],
            "platform": platform.platform(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "cpu": cpu_features(), "packages": versions}
