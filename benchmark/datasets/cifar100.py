"""CIFAR-100 from the official python release or from a partial ``.npz`` of it.

Sources (``--data-dir`` may name the file or a folder holding it):

- ``cifar-100-python.tar.gz``, the official archive (pickles ``train``,
  ``test``, ``meta`` with ``b"data"`` N x 3072 uint8 channel-major,
  ``b"fine_labels"``, ``b"filenames"``; ``meta`` has ``b"fine_label_names"``);
- its extracted folder ``cifar-100-python/``;
- an ``.npz`` with ``test_images``/``train_images`` (N, 32, 32, 3) uint8,
  ``test_fine_labels``/``train_fine_labels`` and ``fine_label_names``, such as
  the partial copy of the first images of each batch. Its arrays are checked, not cast:
  images must be channels-last RGB of uint8 (or of integers within 0..255), labels integer
  class ids, one per image; float images (e.g. scaled to [0, 1]), channels-first arrays,
  pixel values outside 0..255 and labels of another length are one-line DataErrors.

Row layout of the returned arrays: rows ``0 .. n_test-1`` are the test
images in file order (so a prediction's ``index`` under the verification
split is the image's position in the test batch), rows ``n_test ..`` the
training images in file order. The training images form the training /
calibration pool and are group 0; the test images are the verification
group, so calibration and evaluation never share an image.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from benchmark.datasets import cache
from benchmark.datasets.base import Dataset
from benchmark.datasets.entry import DatasetEntry, LoadRequest, NoOptions
from benchmark.errors import DataError

LOADER_VERSION = 1
TEST_GROUP = -1
ARCHIVE = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"


def find_source(data_dir: str | Path) -> Path:
    """The CIFAR-100 file or folder at or directly inside ``data_dir``."""
    p = Path(data_dir)
    if p.is_file() and (p.suffix == ".npz" or p.name.endswith((".tar.gz", ".tgz"))):
        return p
    if p.is_dir():
        if (p / "test").is_file() and (p / "meta").is_file():
            return p
        for cand in (p / ARCHIVE, p / FOLDER):
            if cand.exists():
                return find_source(cand)
        npz = sorted(p.glob("*.npz"))
        if len(npz) == 1:
            return npz[0]
        if len(npz) > 1:
            raise DataError(f"{p} holds several .npz files ({', '.join(n.name for n in npz)}); "
                            "pass the one to use as --data-dir")
    raise DataError(f"no CIFAR-100 data at {p}: expected {ARCHIVE}, its extracted {FOLDER}/ "
                    "folder, or a .npz with test_images/train_images (give it with --data-dir)")


def fingerprint(source: Path) -> dict:
    """SHA-256 of the source file(s), for the run record and the cache key."""
    files = [source] if source.is_file() else [source / n for n in ("train", "test", "meta")]
    out = {}
    for f in files:
        if not f.is_file():
            continue
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        out[f.name] = h.hexdigest()
    return out


def _unpickle(blob: bytes, name: str) -> dict:
    try:
        d = pickle.loads(blob, encoding="bytes")
    except Exception as e:  # pickle raises many types on foreign bytes
        raise DataError(f"{name}: not a CIFAR python pickle ({type(e).__name__})") from None
    if not isinstance(d, dict):
        raise DataError(f"{name}: not a CIFAR python pickle (a {type(d).__name__})")
    return d


def pixels_uint8(x, where: str) -> np.ndarray:
    """``x`` as uint8 when it holds 8-bit pixel values; DataError naming ``where`` otherwise.

    Float arrays (for example images scaled to [0, 1]), values outside 0..255
    and non-numeric arrays are refused, never wrapped or truncated.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating):
        hi = float(np.nanmax(x)) if x.size else 0.0
        hint = " (images scaled to [0, 1]? store round(x * 255) as uint8)" if hi <= 1.0 else ""
        raise DataError(f"{where} holds {x.dtype} values (max {hi:.4g}); expected uint8 pixel "
                        f"values 0..255{hint}")
    if not np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise DataError(f"{where} holds {x.dtype} values; expected uint8 pixel values 0..255")
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
    if lo < 0 or hi > 255:
        raise DataError(f"{where} has pixel values {lo}..{hi}, outside 0..255 (not 8-bit "
                        "images?)")
    return x.astype(np.uint8)


def labels_int(y, where: str) -> np.ndarray:
    """``y`` as int64 class ids; DataError naming ``where`` for floats (``3.0``) or other types."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where} has shape {y.shape}; expected one label per image (N,)")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DataError(f"{where} holds {y.dtype} values; expected integer class ids")
    return y.astype(np.int64)


def _npz_part(z, part: str, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """``<part>_images`` (N, 32, 32, 3) uint8 and ``<part>_fine_labels`` of an npz, checked."""
    key = f"{part}_images"
    x = np.asarray(z[key])
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        raise DataError(f"{source}: {key} has shape {x.shape}, channels first; expected "
                        "channels last (N, 32, 32, 3): store x.transpose(0, 2, 3, 1)")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(f"{source}: {key} has shape {x.shape}; expected (N, 32, 32, 3) RGB")
    x = pixels_uint8(x, f"{source}: {key}")
    y = labels_int(z[f"{part}_fine_labels"], f"{source}: {part}_fine_labels")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{source}: {key} has {x.shape[0]} images but {part}_fine_labels has "
                        f"{y.shape[0]} labels")
    return x, y


def _batch(d: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = pixels_uint8(d[b"data"], f"{name}: data")
        labels = labels_int(d[b"fine_labels"], f"{name}: fine_labels")
    except KeyError as e:
        raise DataError(f"{name}: missing key {e.args[0]!r} (not CIFAR-100?)") from None
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DataError(f"{name}: data has shape {data.shape} for {labels.shape[0]} labels, "
                        "expected (N, 3072)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _names(meta: dict, name: str) -> tuple[str, ...]:
    try:
        return tuple(n.decode() if isinstance(n, bytes) else str(n)
                     for n in meta[b"fine_label_names"])
    except KeyError:
        raise DataError(f"{name}: no fine_label_names (not CIFAR-100?)") from None


def read(source: Path) -> dict:
    """Read ``source`` into ``{"test": (x, y), "train": (x, y), "class_names": names}``."""
    if source.suffix == ".npz":
        try:
            with np.load(source, allow_pickle=False) as z:
                missing = [k for k in ("test_images", "test_fine_labels", "fine_label_names")
                           if k not in z.files]
                if missing:
                    raise DataError(f"{source}: missing {', '.join(missing)}")
                out = {"class_names": tuple(str(n) for n in z["fine_label_names"]),
                       "test": _npz_part(z, "test", source)}
                if "train_images" in z.files:
                    out["train"] = _npz_part(z, "train", source)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise DataError(f"cannot read {source}: {e} (a truncated or damaged .npz?)") from None
        except KeyError as e:
            raise DataError(f"{source}: missing {e.args[0]}") from None
        return out
    if source.is_dir():
        present = {n for n in ("train", "test", "meta") if (source / n).is_file()}

        def blob(n):
            try:
                return (source / n).read_bytes()
            except OSError as e:
                raise DataError(f"cannot read {source / n}: {e.strerror}") from None
    else:
        try:
            tar = tarfile.open(source, "r:*")
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        except (OSError, tarfile.TarError, EOFError) as e:
            raise DataError(f"cannot read {source}: {e}") from None
        present = set(members)

        def blob(n):
            if n not in members:
                raise DataError(f"{source} has no {FOLDER}/{n}")
            return tar.extractfile(members[n]).read()
    out = {"class_names": _names(_unpickle(blob("meta"), "meta"), "meta"),
           "test": _batch(_unpickle(blob("test"), "test"), "test")}
    if "train" in present:  # optional: without it there is nothing to calibrate on
        out["train"] = _batch(_unpickle(blob("train"), "train"), "train")
    return out


def arrays(parts: dict, *, image_size: int = 32) -> dict:
    """Stack test then train rows; resize when the model wants another size."""
    xt, yt = parts["test"]
    xs, ys = parts.get("train", (np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64)))
    k = len(parts["class_names"])
    for name, y in (("test", yt), ("train", ys)):
        if y.size and (y.min() < 0 or y.max() >= k):
            raise DataError(f"{name} labels outside 0..{k - 1}")
    images = np.concatenate([xt, xs])
    if images.shape[1:3] != (image_size, image_size):
        from PIL import Image
        images = np.stack([np.asarray(Image.fromarray(im).resize(
            (image_size, image_size), Image.BILINEAR)) for im in images])
    groups = np.concatenate([np.full(yt.size, TEST_GROUP, np.int64), np.zeros(ys.size, np.int64)])
    return {"images": np.ascontiguousarray(images), "labels": np.concatenate([yt, ys]),
            "groups": groups, "n_test": int(yt.size), "n_train": int(ys.size)}


def write_official_archive(path: Path, parts: dict) -> Path:
    """Write ``parts`` (as returned by :func:`read`) as an official-format ``.tar.gz``.

    For tests and for turning a partial copy back into the official layout.
    """
    def pickled(x, y):
        return pickle.dumps({b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
                             b"fine_labels": [int(v) for v in y],
                             b"coarse_labels": [0] * len(y),
                             b"filenames": [f"img_{i}.png".encode() for i in range(len(y))]})
    files = {"meta": pickle.dumps({b"fine_label_names": [n.encode() for n in
                                                         parts["class_names"]]}),
             "test": pickled(*parts["test"])}
    if "train" in parts:
        files["train"] = pickled(*parts["train"])
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# --------------------------------------------------------------------------------------------
# the registered dataset
# --------------------------------------------------------------------------------------------

def check_source(data_dir: Path, options: NoOptions) -> None:
    """DataError unless a CIFAR-100 source is at ``data_dir`` (:func:`find_source`; no decoding)."""
    find_source(data_dir)


def load_request(req: LoadRequest, options: NoOptions) -> Dataset:
    """The ``cifar100`` dataset (read in full each time; small enough not to be cached)."""
    source = find_source(req.data_dir)
    parts = read(source)
    a = arrays(parts, image_size=req.image_size)
    if a["n_train"] == 0:
        raise DataError(f"{source} has no training images (needed to calibrate "
                        "the int8 model and for the splits)")
    description = {"dataset": "cifar100", "loader_version": LOADER_VERSION,
                   "image_size": req.image_size, "source_file": str(source),
                   "source": fingerprint(source)}
    meta = dict(description, cache_key=cache.cache_key(description),
                n_images=int(a["labels"].size), n_test=a["n_test"], n_train=a["n_train"],
                layout=f"rows 0..{a['n_test'] - 1} are the test images in file order, rows "
                       f"{a['n_test']}..{a['n_test'] + a['n_train'] - 1} the training images "
                       "in file order")
    return Dataset(name="cifar100", images=a["images"], labels=a["labels"], groups=a["groups"],
                   class_names=parts["class_names"], verification_groups=(TEST_GROUP,),
                   meta=meta, train_pool=a["groups"] != TEST_GROUP)


DATASET = DatasetEntry(
    name="cifar100", load=load_request,
    summary="CIFAR-100, 100 classes (the official python release or a .npz of it)",
    data_dir="cifar-100-python.tar.gz, its extracted folder, or a .npz of it",
    check_source=check_source)
