"""GTSRB (German Traffic Sign Recognition Benchmark) from its official release layout.

Reads, zipped or extracted, ``GTSRB/Final_Training/Images/000NN/*.ppm`` with
``GT-000NN.csv`` per class and ``GTSRB/Final_Test/Images/*.ppm`` with the
labels from ``GT-final_test.csv`` (``GTSRB_Final_Test_GT.zip``). CSVs are
``;``-separated: ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``.
Training file names are ``TTTTT_NNNNN.ppm`` (image NNNNN of track TTTTT: ~30
pictures of one physical sign), so images are grouped by (class, track); the
test set, recorded separately, is group -1.
"""

from __future__ import annotations

import csv
import io
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.datasets import cache
from benchmark.datasets.base import Dataset
from benchmark.datasets.entry import DatasetEntry, LoadRequest, option
from benchmark.errors import DataError

LOADER_VERSION = 1
TEST_GROUP = -1

CLASS_NAMES = (
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120",
    "no passing", "no passing for trucks", "right of way at next intersection",
    "priority road", "yield", "stop", "no vehicles", "no trucks", "no entry",
    "general caution", "dangerous curve left", "dangerous curve right", "double curve",
    "bumpy road", "slippery road", "road narrows on the right", "road work",
    "traffic signals", "pedestrians", "children crossing", "bicycles crossing",
    "beware of ice/snow", "wild animals crossing", "end of all limits", "turn right ahead",
    "turn left ahead", "ahead only", "go straight or right", "go straight or left",
    "keep right", "keep left", "roundabout", "end of no passing",
    "end of no passing for trucks",
)

ARCHIVES = ("GTSRB_Final_Training_Images.zip", "GTSRB_Final_Test_Images.zip",
            "GTSRB_Final_Test_GT.zip")


class MissingData(DataError):
    """The GTSRB files are not where they should be."""


@dataclass
class Record:
    source: str          # "train" or "test"
    member: str          # path inside the archive / data dir
    roi: tuple[int, int, int, int]
    label: int
    group: int


class _Source:
    """Files of one part, from a zip archive or an extracted folder."""

    def __init__(self, root: Path, zip_name: str):
        self.zip = root / zip_name if (root / zip_name).is_file() else None
        self.root = root
        try:
            self._z = zipfile.ZipFile(self.zip) if self.zip else None
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"cannot read {self.zip}: {e} (a damaged download? delete it and "
                            "fetch it again, e.g. with --download)") from None

    def exists(self, member: str) -> bool:
        if self._z is not None:
            try:
                self._z.getinfo(member)
                return True
            except KeyError:
                return False
        return (self.root / member).is_file()

    def names(self) -> list[str]:
        if self._z is not None:
            return self._z.namelist()
        return [str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()]

    def read(self, member: str) -> bytes:
        """The member's bytes; a damaged archive member is an OSError naming both."""
        if self._z is None:
            return (self.root / member).read_bytes()
        try:
            return self._z.read(member)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
            raise OSError(f"{member} in {self.zip} is damaged ({e}; a truncated or corrupted "
                          "download? delete the archive and fetch it again)") from None


def _csv_rows(blob: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(blob.decode("utf-8-sig")), delimiter=";"))


def _where(data_dir: Path) -> str:
    return (f"put {', '.join(ARCHIVES)} (or the extracted GTSRB/ folder and GT-final_test.csv) "
            f"into {data_dir}, or add --download to fetch the archives there")


def read_records(data_dir: str | Path) -> tuple[list[Record], dict[str, _Source]]:
    """All labelled images of the release, training first (class, track, image order)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise MissingData(f"GTSRB data dir {data_dir} does not exist: {_where(data_dir)}")
    train = _Source(data_dir, ARCHIVES[0])
    test = _Source(data_dir, ARCHIVES[1])
    gt = _Source(data_dir, ARCHIVES[2])
    records: list[Record] = []
    csvs = sorted(n for n in train.names()
                  if n.startswith("GTSRB/Final_Training/Images/") and n.endswith(".csv"))
    if not csvs:
        raise MissingData(f"no GTSRB training images found: {_where(data_dir)}")
    for name in csvs:
        records += _label_file(train, name, "train")
    gt_name = next((n for n in ("GT-final_test.csv", "GTSRB/Final_Test/Images/GT-final_test.csv")
                    if gt.exists(n)), None) or next(
        (n for n in ("GT-final_test.csv", "GTSRB/Final_Test/Images/GT-final_test.csv")
         if test.exists(n)), None)
    if gt_name is None:
        raise MissingData(f"no GT-final_test.csv (test labels) found: {_where(data_dir)}")
    records += _label_file(gt if gt.exists(gt_name) else test, gt_name, "test")
    return records, {"train": train, "test": test}


def _label_file(src: _Source, name: str, part: str) -> list[Record]:
    """The records of one label CSV (a training class's, or the test set's)."""
    folder = name.rsplit("/", 1)[0]
    out = []
    try:
        blob = src.read(name)
    except OSError as e:
        raise DataError(f"cannot read GTSRB label file {name}: {e}") from None
    line = 1
    try:
        for line, row in enumerate(_csv_rows(blob), start=2):
            label = int(row["ClassId"])
            if part == "train":
                track = int(row["Filename"].split("_")[0])
                out.append(Record("train", f"{folder}/{row['Filename']}", _roi(row), label,
                                  label * 100000 + track))
            else:
                out.append(Record("test", f"GTSRB/Final_Test/Images/{row['Filename']}",
                                  _roi(row), label, TEST_GROUP))
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: not a text file ({e})") from None
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{name} line {line}: not a GTSRB label row ({type(e).__name__}: {e}); "
                        "expected Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId "
                        "with integer ClassId and Roi values") from None
    return out


def _roi(row: dict) -> tuple[int, int, int, int]:
    return (int(row["Roi.X1"]), int(row["Roi.Y1"]), int(row["Roi.X2"]), int(row["Roi.Y2"]))


def decode(records: list[Record], sources: dict, *, image_size: int, roi_crop: bool,
           on_bad_image: str = "fail") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode, optionally crop to the ROI, resize; returns (images, kept mask, skipped names)."""
    images = np.zeros((len(records), image_size, image_size, 3), np.uint8)
    keep, skipped = _decode_into(records, sources, images, image_size, roi_crop, on_bad_image)
    return images, keep, skipped


def _decode_into(records: list[Record], sources: dict, out: np.ndarray, image_size: int,
                 roi_crop: bool, on_bad_image: str) -> tuple[np.ndarray, list[str]]:
    """Decode ``records`` into the rows of ``out``; the kept mask and the skipped names."""
    from PIL import Image, UnidentifiedImageError
    keep = np.ones(len(records), bool)
    skipped = []
    for i, r in enumerate(records):
        try:
            with Image.open(io.BytesIO(sources[r.source].read(r.member))) as im:
                im = im.convert("RGB")
                if roi_crop:
                    x1, y1, x2, y2 = r.roi
                    im = im.crop((x1, y1, x2 + 1, y2 + 1))
                out[i] = np.asarray(im.resize((image_size, image_size),
                                              Image.Resampling.BILINEAR))
        except (OSError, KeyError, UnidentifiedImageError, ValueError) as e:
            if on_bad_image != "skip":
                raise DataError(f"cannot read GTSRB image {r.member}: {e} "
                                "(use --on-bad-image skip to skip unreadable images)") from None
            keep[i] = False
            skipped.append(r.member)
    return keep, skipped


#: Images per decoding task (about 0.3 s) and the fewest worth a process pool.
DECODE_CHUNK = 1024
DECODE_POOL_MIN = 4096
_WORKER_SOURCES: dict[str, dict[str, _Source]] = {}


def _sources(data_dir: Path) -> dict[str, _Source]:
    """The training and test sources of ``data_dir``, opened once per process."""
    key = str(data_dir)
    if key not in _WORKER_SOURCES:
        _WORKER_SOURCES.clear()
        _WORKER_SOURCES[key] = {"train": _Source(data_dir, ARCHIVES[0]),
                                "test": _Source(data_dir, ARCHIVES[1])}
    return _WORKER_SOURCES[key]


def _decode_chunk(path: Path, start: int, stop: int, payload) -> tuple[np.ndarray, list[str]]:
    """A :func:`benchmark.datasets.parallel.fill` task: decode records into rows of ``path``."""
    from benchmark.datasets.parallel import open_rows

    data_dir, records, image_size, roi_crop, on_bad_image = payload
    rows = open_rows(path, start, stop)
    try:
        return _decode_into(records, _sources(data_dir), rows, image_size, roi_crop,
                            on_bad_image)
    finally:
        del rows


def decode_to_npy(records: list[Record], data_dir: Path, path: Path, *, image_size: int,
                  roi_crop: bool, on_bad_image: str = "fail",
                  workers: int | None = None) -> tuple[np.ndarray, list[str]]:
    """:func:`decode` into the existing ``.npy`` file ``path`` (N rows), on every core.

    Chunks of :data:`DECODE_CHUNK` records are decoded in ``workers``
    processes (default: every core, see :mod:`benchmark.datasets.parallel`),
    each reading the archives of ``data_dir`` itself and writing its rows
    straight into the file. Returns the kept mask and the skipped names (in
    record order); rows of skipped images stay zero.
    """
    from benchmark.datasets import parallel

    data_dir = Path(data_dir).absolute()  # workers may run in another directory
    jobs = parallel.tasks(len(records), DECODE_CHUNK, lambda a, b: (
        data_dir, records[a:b], image_size, roi_crop, on_bad_image))
    try:
        from benchmark.progress import bar
        results = parallel.fill(path, _decode_chunk, jobs, workers=workers,
                                min_pool_rows=DECODE_POOL_MIN, progress=bar("decoding GTSRB"))
    finally:
        _WORKER_SOURCES.clear()  # in-process decoding opened the archives here
    keep = np.concatenate([k for k, _ in results]) if results else np.ones(0, bool)
    return keep, [name for _, names in results for name in names]


def source_fingerprint(data_dir: Path) -> dict:
    """Sizes and modification-independent content hashes of the archives/CSVs present."""
    import hashlib
    data_dir = Path(data_dir)
    out = {}
    for name in ARCHIVES:
        p = data_dir / name
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[name] = h.hexdigest()
    if not out:  # extracted layout: hash the label files and the file list
        h = hashlib.sha256()
        for p in sorted(data_dir.rglob("*")):
            if p.is_file():
                rel = str(p.relative_to(data_dir))
                h.update(f"{rel}:{p.stat().st_size}\n".encode())
                if p.suffix == ".csv":
                    h.update(p.read_bytes())
        out["extracted"] = h.hexdigest()
    return out


# --------------------------------------------------------------------------------------------
# the registered dataset
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GtsrbOptions:
    """Options of the ``gtsrb`` dataset."""

    roi_crop: bool = option(False, help="crop each image to its annotated ROI before resizing")


def check_source(data_dir: Path, options: GtsrbOptions) -> None:
    """DataError unless ``data_dir`` is a folder (the archives themselves are read on load)."""
    if not data_dir.is_dir():
        raise MissingData(f"GTSRB data dir {data_dir} does not exist: {_where(data_dir)}")


def load_request(req: LoadRequest, options: GtsrbOptions) -> Dataset:
    """The ``gtsrb`` dataset, decoded through the cache (key: source hashes, size, ROI crop)."""
    data_dir, image_size, roi_crop = req.data_dir, req.image_size, options.roi_crop
    try:
        fingerprint = source_fingerprint(data_dir)
    except OSError as e:
        raise MissingData(f"cannot read {data_dir}: {e}") from None
    description = {"dataset": "gtsrb", "loader_version": LOADER_VERSION,
                   "image_size": image_size, "roi_crop": roi_crop, "source": fingerprint,
                   "on_bad_image": req.on_bad_image}
    key = cache.cache_key(description)
    root = req.cache_dir

    def build():
        t0 = time.perf_counter()
        records, _ = read_records(data_dir)
        if req.verbose:
            print(f"decoding {len(records)} GTSRB images ({image_size}px"
                  f"{', ROI crop' if roi_crop else ''}) into {root / key}", file=sys.stderr)
        keep, skipped, path = _decode_to_scratch(records, data_dir, root, key, image_size,
                                                 roi_crop, req.on_bad_image)
        labels = np.array([r.label for r in records], np.int64)
        groups = np.array([r.group for r in records], np.int64)
        meta = dict(description, cache_key=key, n_images=int(keep.sum()), skipped=skipped,
                    n_train_images=int(sum(r.source == "train" for r in records)),
                    decode_seconds=round(time.perf_counter() - t0, 2))
        return {"images": path, "labels": labels[keep], "groups": groups[keep]}, meta

    arrays, meta = cache.load_or_build(root, key, build)
    groups = np.asarray(arrays["groups"], np.int64)
    return Dataset(name="gtsrb", images=arrays["images"],
                   labels=np.asarray(arrays["labels"], np.int64), groups=groups,
                   class_names=CLASS_NAMES, verification_groups=(TEST_GROUP,),
                   meta=meta, train_pool=groups != TEST_GROUP, full_split_by_group=True)


def _decode_to_scratch(records, data_dir: Path, root: Path, key: str, image_size: int,
                       roi_crop: bool, on_bad_image: str) -> tuple[np.ndarray, list[str], Path]:
    """Decode into a scratch file of the entry ``key``, compacted to the kept images.

    Returns ``(keep, skipped, path)``; the caller stores ``path`` (a scratch
    file is removed when decoding fails).
    """
    shape = (len(records), image_size, image_size, 3)
    path = cache.new_scratch(root, key, "images", shape, np.uint8)
    try:
        keep, skipped = decode_to_npy(records, data_dir, path, image_size=image_size,
                                      roi_crop=roi_crop, on_bad_image=on_bad_image)
        return keep, skipped, cache.compact_rows(root, key, "images-kept", path,
                                                 np.flatnonzero(keep))
    except BaseException:
        path.unlink(missing_ok=True)
        raise


DATASET = DatasetEntry(
    name="gtsrb", load=load_request, options=GtsrbOptions,
    summary="German Traffic Sign Recognition Benchmark, 43 classes (official archives)",
    data_dir="the folder with the official GTSRB archives", check_source=check_source,
    downloadable=True)
