"""Fetch a dataset's archives with checksum verification: ``--download``.

``python -m benchmark.datasets.download --dataset gtsrb --data-dir D [--url U]``
puts the three GTSRB archives into ``D``. Each file is streamed into a
temporary file next to its destination, hashed on the way, and renamed into
place only when it matches the table below (the reference copy's size and
SHA-256, or the official release's MD5), so the data dir never
holds a partial or wrong archive under the real name. A file that is already
there with the right hash is not downloaded again.

The base URL is, in this order, ``--download-url``/``--url``, the environment
variable ``EDGETPU_BENCH_GTSRB_URL``, or the official GTSRB archive. ``http``,
``https`` and ``file`` URLs work (a ``file://`` mirror is handy offline).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from benchmark import __version__, tempfiles
from benchmark.cli import main_wrapper
from benchmark.errors import DataError, UsageError
from benchmark.results import _umask


@dataclass(frozen=True)
class Archive:
    """One file to fetch: name (relative to the base URL and the data dir) and its content.

    A file is accepted when it is the reference copy (``size`` and ``sha256``)
    or, when ``official_md5`` is given, the official release's file with that
    MD5 (the only digest the release is published with; its size is not
    pinned).
    """

    name: str
    size: int
    sha256: str
    official_md5: str | None = None

    def accepts(self, size: int, sha256: str, md5: str | None) -> bool:
        """Whether a file with this size and these digests is this archive."""
        if size == self.size and sha256 == self.sha256:
            return True
        return self.official_md5 is not None and md5 == self.official_md5

    def expected(self) -> str:
        s = f"{self.size} bytes, sha256 {self.sha256}"
        return s + (f" (or the official release, md5 {self.official_md5})"
                    if self.official_md5 else "")


#: Official base URL of the GTSRB release (Institut für Neuroinformatik, via ERDA).
GTSRB_OFFICIAL_URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"

#: Per dataset: environment variable overriding the base URL, and the default base URL.
BASE_URLS = {"gtsrb": ("EDGETPU_BENCH_GTSRB_URL", GTSRB_OFFICIAL_URL)}

#: Expected files per dataset. Size and SHA-256 are those of the reference copy this
#: project's GTSRB results were computed on (the 32x32 re-packaging of the official
#: release described in datasets/gtsrb.md). The MD5s are the official release's, as
#: published with it and used by torchvision's and TensorFlow Datasets' GTSRB loaders.
FILES: dict[str, tuple[Archive, ...]] = {
    "gtsrb": (
        Archive("GTSRB_Final_Training_Images.zip", 103_021_343,
                "2198972c41e820707abc5c9938c43157e18e7671f5b521f17b2306d271ed5e4a",
                "f33fd80ac59bff73c82d25ab499e03a3"),
        Archive("GTSRB_Final_Test_Images.zip", 32_809_380,
                "c7d31c7b1304f24cf4b1ffad53c6350f2a94167bc2c678030a5ef73f01c18a56",
                "c7e4e6327067d32654124b0fe9e82185"),
        Archive("GTSRB_Final_Test_GT.zip", 62_461,
                "2328452d236df0fd9a9bdba4914f632080df075d65fffab710d38aebbe4eb5c9",
                "fe31e9c9270bbcd7b84b7f21a9d9d9e5"),
    ),
}

_CHUNK = 1 << 20
_TIMEOUT = 60.0


def base_url(dataset: str, url: str | None = None) -> str:
    """The base URL to fetch ``dataset`` from (always ending in ``/``).

    Parameters
    ----------
    dataset : str
        A key of :data:`FILES`.
    url : str, optional
        Explicit base URL; wins over the environment variable and the default.

    Raises
    ------
    UsageError
        Unknown dataset, or a URL that is not ``http``, ``https`` or ``file``.
    """
    if dataset not in BASE_URLS:
        raise UsageError(f"--download is not available for dataset {dataset!r}; "
                         f"it is for: {', '.join(sorted(BASE_URLS))}")
    env, default = BASE_URLS[dataset]
    chosen = url or os.environ.get(env) or default
    scheme = urllib.parse.urlsplit(chosen).scheme
    if scheme not in ("http", "https", "file"):
        raise UsageError(f"download URL must start with http://, https:// or file://, "
                         f"got {chosen!r}")
    return chosen if chosen.endswith("/") else chosen + "/"


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digests(path: str | Path) -> tuple[str, str]:
    """Hex SHA-256 and MD5 of a file in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


class Progress:
    """Text progress of one download on ``stream``.

    On a terminal a bar is redrawn in place (at most 10 times a second);
    otherwise one line is printed each time another 10 % has arrived.
    """

    def __init__(self, name: str, total: int, stream: TextIO | None = None):
        self.name, self.total = name, max(int(total), 0)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self._decile = 0
        self._last_draw = 0.0

    def update(self, n: int) -> None:
        """Account for ``n`` more bytes."""
        self.done += n
        if self.total <= 0:
            return
        frac = min(self.done / self.total, 1.0)
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or frac >= 1.0:
                self._last_draw = now
                bar = "#" * int(frac * 30)
                self.stream.write(f"\r{self.name} [{bar:<30}] {frac:4.0%} "
                                  f"{self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB")
                self.stream.flush()
        else:
            decile = int(frac * 10)
            if decile > self._decile:
                self._decile = decile
                print(f"{self.name}: {decile * 10}% ({self.done / 1e6:.1f}/"
                      f"{self.total / 1e6:.1f} MB)", file=self.stream, flush=True)

    def close(self) -> None:
        """End the in-place bar with a newline."""
        if self.tty and self.total > 0:
            self.stream.write("\n")
            self.stream.flush()


@contextlib.contextmanager
def _closing(bar: Progress | None):
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _open(url: str, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": f"edgetpu-bench/{__version__}"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DataError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"cannot download {url}: {e.reason}") from None
    except (OSError, http.client.HTTPException) as e:
        raise DataError(f"cannot download {url}: {e}") from None


def fetch(url: str, dest: str | Path, archive: Archive, *, progress: bool = True,
          timeout: float = _TIMEOUT, stream: TextIO | None = None) -> None:
    """Download ``url`` to ``dest`` if and only if it is ``archive`` (size and SHA-256).

    The bytes go to a hidden temporary file in ``dest``'s folder that is
    renamed to ``dest`` after verification and deleted on any failure.

    Parameters
    ----------
    url : str
    dest : path
    archive : Archive
        Expected size and SHA-256.
    progress : bool
        Show a progress bar (or 10 % lines) on ``stream``.
    timeout : float
        Seconds a connect or read may stall.
    stream : file, optional
        Where progress goes (default ``sys.stderr``).

    Raises
    ------
    DataError
        Network failure, wrong size or wrong SHA-256 (naming the file, the
        expected and the actual hash), or an unwritable data dir.
    """
    dest = Path(dest)
    resp = _open(url, timeout)
    with resp:
        _check_length(url, resp.headers.get("Content-Length"), archive)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=tempfiles.prefix(dest.name), suffix=".part",
                                            dir=dest.parent)
        except OSError as e:
            raise DataError(f"cannot write into {dest.parent}: {e.strerror}") from None
        tmp = Path(tmp_name)
        bar = Progress(archive.name, archive.size, stream) if progress else None
        try:
            with os.fdopen(fd, "wb") as f, _closing(bar):
                size, sha, md5 = _stream(resp, f, url, tmp, archive, bar)
            if not archive.accepts(size, sha, md5):
                raise DataError(f"checksum mismatch for {archive.name} from {url}: expected "
                                f"{archive.expected()}, got {size} bytes, sha256 {sha}, "
                                f"md5 {md5}; nothing was saved")
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _check_length(url: str, length: str | None, archive: Archive) -> None:
    """DataError when the announced length cannot be the (size-pinned) archive."""
    if (archive.official_md5 is None and length is not None and length.strip().isdigit()
            and int(length) != archive.size):
        raise DataError(f"{url} is {int(length)} bytes, expected {archive.size} for "
                        f"{archive.name} (sha256 {archive.sha256}): not the expected file, "
                        "is the base URL right?")


def _stream(resp, f, url: str, tmp: Path, archive: Archive,
            bar: Progress | None) -> tuple[int, str, str]:
    """Copy ``resp`` into the open file ``f`` (synced); its size, SHA-256 and MD5."""
    h, md5 = hashlib.sha256(), hashlib.md5()
    while True:
        try:
            chunk = resp.read(_CHUNK)
        except (OSError, http.client.HTTPException) as e:
            raise DataError(f"download of {url} broke off after {f.tell()} bytes: "
                            f"{e or type(e).__name__}") from None
        if not chunk:
            break
        h.update(chunk)
        md5.update(chunk)
        try:
            f.write(chunk)
        except OSError as e:
            raise DataError(f"cannot write {tmp}: {e.strerror}") from None
        if bar:
            bar.update(len(chunk))
        if archive.official_md5 is None and f.tell() > archive.size:
            raise DataError(f"{url} is larger than the {archive.size} bytes "
                            f"expected for {archive.name}: not the expected file")
    f.flush()
    os.fsync(f.fileno())
    return f.tell(), h.hexdigest(), md5.hexdigest()


def download_dataset(dataset: str, data_dir: str | Path | None, *, url: str | None = None,
                     progress: bool = True,
                     log: Callable[[str], None] | None = None) -> list[tuple[Path, bool]]:
    """Make sure every file of ``dataset`` is in ``data_dir`` with the right SHA-256.

    Parameters
    ----------
    dataset : str
        A key of :data:`FILES` (``gtsrb``).
    data_dir : path
        Destination folder; created when missing.
    url : str, optional
        Base URL (see :func:`base_url`).
    progress : bool
        Progress bars on stderr.
    log : callable, optional
        Receives one status line per file.

    Returns
    -------
    list of (Path, bool)
        Each file and whether it was downloaded now (False: already there).

    Raises
    ------
    UsageError
        No ``data_dir``, unknown dataset or bad URL.
    DataError
        A download failed, or a file already in ``data_dir`` has the wrong
        content (it is left alone; delete it to download it again).
    """
    base = base_url(dataset, url)
    if data_dir is None:
        raise UsageError(f"--download needs --data-dir (where to put the {dataset} files)")
    data_dir = Path(data_dir)
    from benchmark.preflight import check_output_dir
    check_output_dir(data_dir, option="--data-dir", need_bytes=sum(   # before fetching anything
        a.size for a in FILES[dataset] if not (data_dir / a.name).is_file()))
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create data dir {data_dir}: {e.strerror}") from None
    out = []
    for archive in FILES[dataset]:
        dest = data_dir / archive.name
        if _present(dest, archive):
            if log:
                log(f"{archive.name}: present, checksum OK")
            out.append((dest, False))
            continue
        src = urllib.parse.urljoin(base, urllib.parse.quote(archive.name))
        if log:
            log(f"downloading {src} ({archive.size / 1e6:.1f} MB) into {data_dir}")
        fetch(src, dest, archive, progress=progress)
        if log:
            log(f"{archive.name}: {dest.stat().st_size} bytes, checksum OK")
        out.append((dest, True))
    return out


def _present(dest: Path, archive: Archive) -> bool:
    """Whether ``dest`` already is ``archive``; DataError when it is another file."""
    if not dest.is_file():
        return False
    size = dest.stat().st_size
    sha, md5 = file_digests(dest)
    if not archive.accepts(size, sha, md5):
        raise DataError(f"{dest} exists but is not the expected file ({size} bytes, "
                        f"sha256 {sha}; expected {archive.expected()}): delete it "
                        "to download it again")
    return True


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.datasets.download",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="gtsrb", choices=sorted(FILES),
                   help="dataset to fetch (default gtsrb)")
    p.add_argument("--data-dir", required=True, help="folder to put the archives into")
    p.add_argument("--url", "--download-url", dest="url",
                   help="base URL of the archives (default: $EDGETPU_BENCH_GTSRB_URL or the "
                        "official GTSRB archive)")
    p.add_argument("--quiet", action="store_true", help="no progress, only the file list")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    for path, fresh in download_dataset(args.dataset, args.data_dir, url=args.url,
                                        progress=not args.quiet, log=log):
        print(f"{path}  {path.stat().st_size} bytes  {'downloaded' if fresh else 'present'}")
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.datasets.download", main))
