"""Your own images: the ``imagefolder`` and ``csv`` datasets (see datasets/userdata.md).

``imagefolder``: ``--data-dir ROOT`` holds one sub-folder per class
(``ROOT/<class>/**/*.png``); class names are the sorted folder names and a
label is a name's position. With ``ROOT/train/<class>/`` and
``ROOT/test/<class>/`` (or ``val/``) the test folder is the evaluation part of
the ``verification`` split; without them a deterministic, class-stratified
20 % (option ``holdout``) is held out, chosen by a hash of each file's path.

``csv``: ``--data-dir`` is a manifest ``path,label[,split]`` (optional header;
paths relative to the manifest's folder; a label is an integer or a class
name; split ``train`` or ``test``). Option ``class_names``: a text file with
one class name per line.

Every image is converted to 8-bit RGB (alpha composited on black, 16-bit
scaled down, palette expanded, EXIF orientation applied) and resized
(bilinear) to the model's input. Decoded arrays are cached like GTSRB's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark.datasets import cache
from benchmark.datasets.base import Dataset
from benchmark.datasets.entry import DatasetEntry, LoadRequest, option
from benchmark.errors import DataError, UsageError

LOADER_VERSION = 1
KINDS = ("imagefolder", "csv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".gif")
#: group of the evaluation part of the ``verification`` split
TEST_GROUP = -1
DEFAULT_HOLDOUT = 0.2
_SPLIT_WORDS = {"train": "train", "test": "test", "val": "test"}
_INT = re.compile(r"[+-]?\d+")
#: a number written with a decimal point or an exponent (``3.0``, ``1e2``): not a class id
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+|nan",
                    re.IGNORECASE)
#: :func:`decode` reports progress every this many images
PROGRESS_EVERY = 1000


@dataclass
class Item:
    """One image: where it is, how errors name it, its label and its part."""

    path: Path           # file to read
    name: str            # shown in errors and meta["skipped"]
    rel: str             # location-independent key: path under the root / in the manifest
    label: int
    part: str            # "train", "test", or "" (no explicit split)


@dataclass
class Listing:
    """What a data dir or manifest describes, before any image is decoded."""

    items: list[Item]
    class_names: tuple[str, ...]
    explicit_split: bool
    layout: str


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def _visible(p: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(root).parts)


def class_folders(root: Path, *, eval_dirs: tuple[str, ...] = ("test", "val")
                  ) -> tuple[list[tuple[str, Path]], str, set[str]]:
    """The parts of a class-folder tree and the union of its class folder names.

    Parameters
    ----------
    root : Path
        An existing folder: ``<class>/`` sub-folders, or ``train/<class>/``
        plus one of ``eval_dirs`` (the first one present wins).
    eval_dirs : tuple of str
        Names of the evaluation folder next to ``train/``, by preference.

    Returns
    -------
    parts : list of (part, folder)
        ``[("", root)]``, or ``[("train", root/train), ("test", root/<eval dir>)]``.
    layout : str
        Human-readable description of the layout.
    classes : set of str
        Class folder names (anything not starting with ``.``).

    Raises
    ------
    DataError
        An image directly in a part's folder (its class is unknown).
    """
    top = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    eval_dir = next((d for d in eval_dirs if d in top), None)
    if "train" in top and eval_dir is not None:
        parts = [("train", root / "train"), ("test", root / eval_dir)]
        layout = f"train/ and {eval_dir}/ folders"
    else:
        parts = [("", root)]
        layout = "class folders"
    classes: set[str] = set()
    for _, part_root in parts:
        for p in sorted(part_root.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_dir():
                _utf8_name(p, "class folder")
                classes.add(p.name)
            elif _is_image(p):
                raise DataError(f"image {p} is not inside a class folder: put it into "
                                f"{part_root}/<class name>/{p.name}")
    return parts, layout, classes


def _utf8_name(p: Path, what: str) -> None:
    """DataError naming ``p`` (as bytes) unless its name is valid UTF-8."""
    try:
        str(p).encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{what} {os.fsencode(p)!r} has a name that is not UTF-8: rename it "
                        "(e.g. convmv -f latin1 -t utf8 --notest)") from None


def _raise_unreadable(e: OSError) -> None:
    raise DataError(f"cannot read folder {e.filename}: {e.strerror} (fix its permissions or "
                    "move it out of the data dir)") from None


def _folder_images(folder: Path, root: Path) -> list[str]:
    """Image files under ``folder`` (any depth, hidden ones ignored) as sorted paths under
    ``root``. An unreadable sub-folder is a DataError (never silently dropped); a symlink
    is listed even when it points nowhere, so that reading it fails naming it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=_raise_unreadable):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            p = Path(dirpath) / name
            if name.startswith(".") or not _is_image(p):
                continue
            if p.is_file() or p.is_symlink():
                _utf8_name(p, "image")
                found.append(p.relative_to(root).as_posix())
    return sorted(found)


def folder_items(root: Path, parts: list[tuple[str, Path]], index: dict[str, int]) -> list[Item]:
    """The images below the class folders ``index`` names, labelled by ``index``.

    Within a part, classes come in ``index`` order and a class's images in
    sorted path order (any depth; hidden files and folders are ignored).
    ``Item.rel`` is the path relative to ``root``.

    Raises
    ------
    DataError
        An unreadable folder, or a file or folder name that is not UTF-8.
    """
    items = []
    for part, part_root in parts:
        for cls, label in index.items():
            folder = part_root / cls
            if not folder.is_dir():
                continue
            files = _folder_images(folder, root)
            items += [Item(root / rel, str(root / rel), rel, label, part) for rel in files]
    return items


def check_class_order(root: Path, names: tuple[str, ...]) -> None:
    """DataError when class folders are integers whose sorted order is not numeric order.

    Labels are the positions of the sorted folder names; for ``1 .. 10`` that
    order is ``1, 10, 2, ...``, so label 2 would be folder ``10``: refused,
    with how to fix it (zero-padded names, or a csv manifest).
    """
    if len(names) < 2 or not all(_INT.fullmatch(n) for n in names):
        return
    numeric = sorted(names, key=int)
    if list(names) != numeric:
        i = next(k for k, (a, b) in enumerate(zip(names, numeric)) if a != b)
        width = max(len(n) for n in names)
        raise DataError(f"class folders of {root} are integers that are not zero-padded: sorted "
                        f"by name, label {i} would be folder {names[i]!r}, not {numeric[i]!r}; "
                        f"rename them to {width} digits ({'0' * (width - 1)}1, ...) or list the "
                        "images in a csv manifest")


def list_imagefolder(data_dir: str | Path, *, num_classes: int | None = None) -> Listing:
    """Images and labels of a class-folder tree.

    Parameters
    ----------
    data_dir : path
        ``ROOT`` with ``<class>/`` sub-folders, or ``train/<class>/`` plus
        ``test/<class>/`` (or ``val/<class>/``; ``test/`` wins when both exist).
    num_classes : int, optional
        Required number of classes (the union of class folder names).

    Raises
    ------
    DataError
        Missing root, no class folders, images outside class folders, no
        images, or a class count different from ``num_classes``.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"imagefolder data dir {root} is not a folder: put the images into "
                        f"{root}/<class name>/ (one sub-folder per class)")
    parts, layout, classes = class_folders(root)
    if not classes:
        raise DataError(f"no class folders in {root}: put the images into {root}/<class name>/ "
                        "(or train/<class name>/ and test/<class name>/)")
    names = tuple(sorted(classes))
    check_class_order(root, names)
    if num_classes is not None and len(names) != num_classes:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise DataError(f"{root} has {len(names)} class folders ({shown}) but --num-classes is "
                        f"{num_classes}")
    items = folder_items(root, parts, {n: i for i, n in enumerate(names)})
    if not items:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders "
                        f"under {root}")
    return Listing(items, names, explicit_split=len(parts) == 2, layout=layout)


def _read_class_names(path: Path) -> tuple[str, ...]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise DataError(f"cannot read class names file {path}: {e.strerror}") from None
    while lines and not lines[-1].strip():
        lines.pop()
    names = tuple(line.strip() for line in lines)
    for i, n in enumerate(names, 1):
        if not n:
            raise DataError(f"{path} line {i} is empty: one class name per line, no gaps")
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise DataError(f"{path} lists class {dup[0]!r} more than once")
    if not names:
        raise DataError(f"class names file {path} is empty")
    return names


def list_csv(manifest: str | Path, *, num_classes: int | None = None,
             class_names: str | Path | None = None) -> Listing:
    """Images and labels of a manifest ``path,label[,split]``.

    Parameters
    ----------
    manifest : path
        CSV file; an optional header names the columns ``path``, ``label``
        and ``split`` (any order, other columns ignored); without one the
        columns are positional. Blank lines and lines starting with ``#``
        are skipped. Relative image paths are relative to the manifest's
        folder.
    num_classes : int, optional
        Required number of classes; integer labels must lie in ``0..N-1``.
    class_names : path, optional
        One class name per line (relative paths: to the manifest's folder).
        Integer labels index into it; other labels must be one of its names.
        Without it, integer labels give classes ``"0".."N-1"`` (N from
        ``num_classes`` or the largest label + 1) and name labels give the
        sorted distinct names.

    Raises
    ------
    DataError
        Unreadable manifest, bad rows, labels out of range or unknown,
        inconsistent split column, or a class count different from
        ``num_classes`` — each naming the file and line.
    """
    manifest = Path(manifest)
    text = _read_manifest(manifest)
    base = manifest.parent
    names = None
    if class_names is not None:
        cn = Path(class_names)
        names = _read_class_names(cn if cn.is_absolute() else base / cn)
        if num_classes is not None and len(names) != num_classes:
            raise DataError(f"class names file {cn} has {len(names)} names but --num-classes is "
                            f"{num_classes}")
    rows = _manifest_rows(manifest, text)
    with_split = [r for r in rows if r[3]]
    if with_split and len(with_split) != len(rows):
        line = next(r[0] for r in rows if not r[3])
        raise DataError(f"{manifest} line {line} has no split but other rows do: give every row "
                        "a split (train or test) or none")
    labels, names = _labels(manifest, rows, names, num_classes)
    return Listing(_manifest_items(manifest, rows, labels), names,
                   explicit_split=bool(with_split),
                   layout="manifest with split column" if with_split else "manifest")


def _read_manifest(manifest: Path) -> str:
    """The text of a manifest file; DataError for a folder, a missing file or non-UTF-8."""
    if manifest.is_dir():
        raise DataError(f"csv dataset: --data-dir must be the manifest file (path,label[,split]),"
                        f" {manifest} is a folder (for class folders use --dataset imagefolder)")
    try:
        return manifest.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"cannot read manifest {manifest}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"manifest {manifest} is not UTF-8 text: {e.reason}") from None


def _manifest_rows(manifest: Path, text: str) -> list[tuple[int, str, str, str]]:
    """``(line, path, label, part)`` of every image row; the header (if any) sets the columns."""
    cols, header = None, False
    rows = []
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        lower = [c.lower() for c in cells]
        if cols is None and "path" in lower:
            if "label" not in lower:
                raise DataError(f"{manifest} line {line}: the header has no 'label' column")
            cols = {k: lower.index(k) for k in ("path", "label", "split") if k in lower}
            header = True
            continue
        if cols is None:
            cols = {"path": 0, "label": 1, "split": 2}
        rows.append(_manifest_row(manifest, line, row, cells, cols, header))
    if not rows:
        raise DataError(f"manifest {manifest} lists no images (expected rows path,label[,split])")
    return rows


def _manifest_row(manifest: Path, line: int, row: list[str], cells: list[str], cols: dict,
                  header: bool) -> tuple[int, str, str, str]:
    if len(cells) <= max(cols["path"], cols["label"]) or (not header and len(cells) > 3):
        raise DataError(f"{manifest} line {line}: expected path,label[,split], got "
                        f"{','.join(row)!r} (a header row path,label,... allows more columns)")
    path, label = cells[cols["path"]], cells[cols["label"]]
    split = cells[cols["split"]] if "split" in cols and cols["split"] < len(cells) else ""
    if not path or not label:
        raise DataError(f"{manifest} line {line}: empty path or label")
    if "\x00" in path or "\x00" in label:
        raise DataError(f"{manifest} line {line}: a NUL character in the row (a damaged file?)")
    if split and split.lower() not in _SPLIT_WORDS:
        raise DataError(f"{manifest} line {line}: split {split!r} is not train or test")
    return line, path, label, _SPLIT_WORDS.get(split.lower(), "")


def _manifest_items(manifest: Path, rows, labels: list[int]) -> list[Item]:
    """The manifest rows as items; DataError when one image is listed in both parts."""
    base = manifest.parent
    items, seen = [], {}
    for (line, path, _, part), label in zip(rows, labels):
        p = Path(path)
        p = p if p.is_absolute() else base / p
        key = str(p.resolve())
        if part and seen.setdefault(key, (part, line))[0] != part:
            raise DataError(f"{manifest} lists {path} as {seen[key][0]} (line {seen[key][1]}) "
                            f"and as {part} (line {line})")
        items.append(Item(p, str(p), Path(path).as_posix(), label, part))
    return items


def _labels(manifest: Path, rows, names, num_classes) -> tuple[list[int], tuple[str, ...]]:
    """Integer labels of the manifest rows and the class names."""
    is_int = [bool(_INT.fullmatch(r[2])) for r in rows]
    known = set(names or ())
    for line, _, label, _ in rows:
        if label not in known and _FLOAT.fullmatch(label):
            raise DataError(f"{manifest} line {line}: label {label!r} is written as a float; "
                            "write integer class ids (0, 1, ...) or class names (a class named "
                            f"{label!r} must be listed in a class_names file)")
    if names is None and any(is_int) and not all(is_int):
        line, label = next((r[0], r[2]) for r, i in zip(rows, is_int) if i != is_int[0])
        raise DataError(f"{manifest} line {line}: label {label!r} mixes integer and name labels; "
                        "use one kind, or give a class_names file")
    if names is None and rows and not is_int[0]:
        names = tuple(sorted({r[2] for r in rows}))
        if num_classes is not None and len(names) != num_classes:
            raise DataError(f"{manifest} names {len(names)} classes but --num-classes is "
                            f"{num_classes} (list every class in a class_names file)")
    if names is None:
        ints = [int(r[2]) for r in rows]
        n = num_classes if num_classes is not None else max(ints) + 1
        for (line, _, label, _), v in zip(rows, ints):
            if not 0 <= v < n:
                raise DataError(f"{manifest} line {line}: label {label} is outside 0..{n - 1}"
                                + (f" (--num-classes {num_classes})" if num_classes else ""))
        return ints, tuple(str(i) for i in range(max(n, 1)))
    index = {n: i for i, n in enumerate(names)}
    out = []
    for (line, _, label, _), integer in zip(rows, is_int):
        if integer:
            v = int(label)
            if not 0 <= v < len(names):
                raise DataError(f"{manifest} line {line}: label {label} is outside "
                                f"0..{len(names) - 1} ({len(names)} classes)")
        elif label in index:
            v = index[label]
        else:
            raise DataError(f"{manifest} line {line}: class {label!r} is not a known class name")
        out.append(v)
    return out, names


def to_rgb(im):
    """An 8-bit RGB copy of a Pillow image of any common mode.

    EXIF orientation is applied; 16-bit and 32-bit integer grey (``I;16*``,
    ``I``) is scaled from 0..65535 to 0..255; alpha (RGBA, LA, PA, or a
    transparency key of P/L/RGB images) is composited on black; palette,
    bilevel, CMYK and YCbCr images are converted by Pillow.
    """
    from PIL import Image, ImageOps
    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I"):
        grey = np.asarray(im).astype(np.float64) / 257.0
        return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return im.convert("RGB")


def square_resize(rgb, image_size: int):
    """The default resize of :func:`decode`: bilinear to ``image_size`` x ``image_size``."""
    from PIL import Image
    return rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)


def _unreadable(it: Item, e: Exception) -> str:
    """The one-line message of an image that cannot be read (a dangling symlink said so)."""
    why = e
    if Path(it.path).is_symlink() and not Path(it.path).exists():
        why = f"a symlink to {os.readlink(it.path)}, which does not exist"
    return f"cannot read image {it.name}: {why} (use --on-bad-image skip to skip unreadable images)"


def decode(items: list[Item], *, image_size: int, on_bad_image: str = "fail",
           resize: Callable | None = None, out: np.ndarray | None = None,
           progress: Callable[[int, int], None] | None = None
           ) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, int]]:
    """Read, convert to RGB and resize every item.

    Parameters
    ----------
    items : list of Item
    image_size : int
        Side of the square output images.
    on_bad_image : {"fail", "skip"}
    resize : callable, optional
        ``resize(rgb_image, image_size)`` -> Pillow image of ``image_size`` x
        ``image_size``; default :func:`square_resize` (bilinear, aspect ratio
        not kept).
    out : ndarray of uint8, shape (N, image_size, image_size, 3), optional
        Where to write the images (e.g. a memory map, so a large set never
        sits in memory); default a new in-memory array. Rows of skipped
        images are left as they are.
    progress : callable, optional
        ``progress(done, total)``, called every :data:`PROGRESS_EVERY` images
        and after the last one.

    Returns
    -------
    images : ndarray of uint8, shape (N, image_size, image_size, 3)
        ``out`` when given.
    keep : ndarray of bool, shape (N,)
        False for skipped images.
    skipped : list of str
        Names of the unreadable images (``on_bad_image="skip"``).
    modes : dict
        How many images came in each Pillow mode (``RGB``, ``L``, ``P``, ...).

    Raises
    ------
    DataError
        An unreadable image under ``on_bad_image="fail"``, naming the file.
    """
    from PIL import Image
    resize = resize or square_resize
    images = _output_array(out, (len(items), image_size, image_size, 3))
    keep = np.ones(len(items), bool)
    skipped: list[str] = []
    modes: Counter = Counter()
    for i, it in enumerate(items):
        try:
            images[i], mode = _decode_one(it.path, image_size, resize)
            modes[mode] += 1
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
            if on_bad_image != "skip":
                raise DataError(_unreadable(it, e)) from None
            keep[i] = False
            skipped.append(it.name)
        if progress is not None and ((i + 1) % PROGRESS_EVERY == 0 or i + 1 == len(items)):
            progress(i + 1, len(items))
    return images, keep, skipped, dict(sorted(modes.items()))


#: Images per decoding task and the fewest worth a process pool (:func:`decode_to_npy`).
DECODE_CHUNK = 256
DECODE_POOL_MIN = 1024


def _decode_chunk(path: Path, start: int, stop: int, payload):
    """A :func:`benchmark.datasets.parallel.fill` task: :func:`decode` into rows of ``path``."""
    from benchmark.datasets.parallel import open_rows

    items, image_size, on_bad_image, resize = payload
    rows = open_rows(path, start, stop)
    try:
        _, keep, skipped, modes = decode(items, image_size=image_size,
                                         on_bad_image=on_bad_image, resize=resize, out=rows)
    finally:
        del rows
    return keep, skipped, modes


def decode_to_npy(items: list[Item], path: Path, *, image_size: int, on_bad_image: str = "fail",
                  resize: Callable | None = None, workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None
                  ) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """:func:`decode` into the existing ``.npy`` file ``path`` (N rows), on every core.

    Chunks of :data:`DECODE_CHUNK` items are decoded in ``workers`` processes
    (default: every core, see :mod:`benchmark.datasets.parallel`), each
    written straight into the file; ``resize`` must be a module-level
    function. ``progress(done, total)`` is called after each chunk. Returns
    ``(keep, skipped, modes)`` as :func:`decode` (in item order); rows of
    skipped images stay zero.
    """
    import dataclasses

    from benchmark.datasets import parallel

    def payload(a, b):  # absolute paths: a worker may run in another directory
        chunk = [dataclasses.replace(it, path=Path(it.path).absolute()) for it in items[a:b]]
        return chunk, image_size, on_bad_image, resize

    results = parallel.fill(path, _decode_chunk, parallel.tasks(len(items), DECODE_CHUNK, payload),
                            workers=workers, min_pool_rows=DECODE_POOL_MIN, progress=progress)
    keep = np.concatenate([k for k, _, _ in results]) if results else np.ones(0, bool)
    modes: Counter = Counter()
    for _, _, m in results:
        modes.update(m)
    return keep, [n for _, names, _ in results for n in names], dict(sorted(modes.items()))


def _decode_one(path: Path, image_size: int, resize: Callable) -> tuple[np.ndarray, str]:
    """One image as resized 8-bit RGB, and the Pillow mode it came in."""
    from PIL import Image
    with Image.open(path) as im:
        im.load()
        mode = im.mode
        rgb = to_rgb(im)
    return np.asarray(resize(rgb, image_size)), mode


def _output_array(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` when it is uint8 of ``shape`` (ValueError otherwise, a bug), else a new array."""
    if out is None:
        return np.zeros(shape, np.uint8)
    if out.shape != shape or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 of shape {shape}, got {out.dtype} {out.shape}")
    return out


def holdout_mask(items: list[Item], fraction: float, *, seed: int | None = None) -> np.ndarray:
    """Class-stratified held-out part: ``round(fraction * n)`` images of each class.

    Within a class the images are ordered by the SHA-256 of their path
    (``Item.rel``; with ``seed``, of ``"<seed>:<path>"``), so the choice is
    the same on every run and machine, and adding images moves few of the
    others. A class with at least two images keeps at least one on each
    side; a single image stays on the side that is not held out.
    """
    held = np.zeros(len(items), bool)
    by_class: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        by_class.setdefault(it.label, []).append(i)
    prefix = "" if seed is None else f"{seed}:"
    for idx in by_class.values():
        n = len(idx)
        k = 0 if n < 2 else min(max(int(round(fraction * n)), 1), n - 1)
        order = sorted(idx, key=lambda i: hashlib.sha256(
            (prefix + items[i].rel).encode()).hexdigest())
        held[order[:k]] = True
    return held


def fingerprint(listing: Listing) -> str:
    """SHA-256 of everything the decoded arrays depend on in the source.

    File paths, sizes and modification times, labels, parts and class names
    (so a re-labelled manifest or a touched image decodes anew).
    """
    h = hashlib.sha256()
    h.update(("\n".join(listing.class_names) + "\0").encode())
    for it in listing.items:
        try:
            st = it.path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        h.update(f"{it.path.resolve()}\t{size}\t{mtime}\t{it.label}\t{it.part}\n".encode())
    return h.hexdigest()


def load(kind: str, data_dir: str | Path | None, *, image_size: int, options: dict,
         num_classes: int | None = None, cache_dir: Path | None = None, verbose: bool = True,
         on_bad_image: str = "fail") -> Dataset:
    """Load an ``imagefolder`` or ``csv`` dataset, decoding through the cache.

    The same as ``benchmark.datasets.registry.load_dataset(kind, ...)``.

    Parameters
    ----------
    kind : {"imagefolder", "csv"}
    data_dir : path
        The class-folder root, or the manifest file.
    image_size : int
        Side of the square RGB images, the model's input size.
    options : dict
        ``holdout`` (float in (0, 1), default 0.2: the held-out fraction when
        there is no explicit train/test split); csv: ``class_names`` (file).
    num_classes : int, optional
        Required number of classes.
    cache_dir : Path, optional
        Defaults to :func:`benchmark.paths.cache_root`.
    verbose : bool
        Say on stderr when images are decoded.
    on_bad_image : {"fail", "skip"}

    Returns
    -------
    Dataset
        ``verification`` evaluates the test part (group -1), ``full`` trains
        on a seeded 90 % of each class of the training pool (the train part,
        or all images without an explicit split) and evaluates all images.
    """
    from benchmark.datasets.registry import load_dataset

    if kind not in KINDS:
        raise UsageError(f"userdata loads {' or '.join(KINDS)}, not {kind!r}")
    return load_dataset(kind, image_size=image_size, options=options, cache_dir=cache_dir,
                        verbose=verbose, data_dir=data_dir, on_bad_image=on_bad_image,
                        num_classes=num_classes)


# --------------------------------------------------------------------------------------------
# the registered datasets
# --------------------------------------------------------------------------------------------

def _fraction(v: float) -> bool:
    return 0 < v < 1


_HOLDOUT_HELP = "held-out fraction of each class when there is no explicit train/test split"


@dataclass(frozen=True)
class ImageFolderOptions:
    """Options of the ``imagefolder`` dataset."""

    holdout: float = option(DEFAULT_HOLDOUT, help=_HOLDOUT_HELP, check=_fraction,
                            rule="a fraction in (0, 1)")


@dataclass(frozen=True)
class CsvOptions:
    """Options of the ``csv`` dataset."""

    holdout: float = option(DEFAULT_HOLDOUT, help=_HOLDOUT_HELP, check=_fraction,
                            rule="a fraction in (0, 1)")
    class_names: str | None = option(None, path=True, help="text file of class names, one per "
                                     "line (relative: to the manifest's folder)")


def check_imagefolder(data_dir: Path, options: ImageFolderOptions) -> None:
    """DataError unless ``data_dir`` is a folder."""
    if not data_dir.is_dir():
        raise DataError(f"imagefolder data dir {data_dir} is not a folder: put the images into "
                        f"{data_dir}/<class name>/ (one sub-folder per class)")


def check_csv(manifest: Path, options: CsvOptions) -> None:
    """DataError unless ``manifest`` is a file and the class names file (if any) exists."""
    if manifest.is_dir():
        _read_manifest(manifest)  # raises the folder message
    if not manifest.is_file():
        raise DataError(f"cannot read manifest {manifest}: No such file or directory")
    if options.class_names is not None:
        cn = Path(options.class_names)
        cn = cn if cn.is_absolute() else manifest.parent / cn
        if not cn.is_file():
            raise DataError(f"cannot read class names file {cn}: No such file or directory")


def _listing(req: LoadRequest, options) -> Listing:
    if req.name == "imagefolder":
        return list_imagefolder(req.data_dir, num_classes=req.num_classes)
    return list_csv(req.data_dir, num_classes=req.num_classes, class_names=options.class_names)


def load_request(req: LoadRequest, options) -> Dataset:
    """The ``imagefolder`` or ``csv`` dataset of ``req``, decoded through the cache."""
    from PIL import __version__ as pillow_version

    listing = _listing(req, options)
    description = {"dataset": req.name, "loader_version": LOADER_VERSION,
                   "image_size": req.image_size, "on_bad_image": req.on_bad_image,
                   "holdout": options.holdout, "pillow": pillow_version,
                   "source": fingerprint(listing)}
    key = cache.cache_key(description)
    arrays, meta = cache.load_or_build(
        req.cache_dir, key, lambda: _build(req, listing, options.holdout, description, key))
    groups = np.asarray(arrays["groups"], np.int64)
    return Dataset(name=req.name, images=arrays["images"],
                   labels=np.asarray(arrays["labels"], np.int64), groups=groups,
                   class_names=tuple(meta["class_names"]), verification_groups=(TEST_GROUP,),
                   meta=meta, train_pool=(groups != TEST_GROUP) if meta["explicit_split"]
                   else None)


def _build(req: LoadRequest, listing: Listing, holdout: float, description: dict, key: str):
    """Decode the images of ``listing``: the arrays and meta of its cache entry."""
    t0 = time.perf_counter()
    items = listing.items
    if req.verbose:
        print(f"decoding {len(items)} {req.name} images ({req.image_size}px) from "
              f"{req.data_dir} into {req.cache_dir / key}", file=sys.stderr)
    shape = (len(items), req.image_size, req.image_size, 3)
    path = cache.new_scratch(req.cache_dir, key, "images", shape, np.uint8)
    try:
        keep, skipped, modes = decode_to_npy(items, path, image_size=req.image_size,
                                             on_bad_image=req.on_bad_image)
        if not keep.any():
            raise DataError(f"none of the {len(items)} images under {req.data_dir} is readable")
        path = cache.compact_rows(req.cache_dir, key, "images-kept", path, np.flatnonzero(keep))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    labels = np.array([it.label for it in items], np.int64)
    if listing.explicit_split:
        test = np.array([it.part == "test" for it in items], bool)
    else:
        test = holdout_mask(items, holdout)
    groups = np.where(test, TEST_GROUP, np.arange(len(items))).astype(np.int64)
    meta = dict(description, cache_key=key, data_dir=str(req.data_dir), layout=listing.layout,
                explicit_split=listing.explicit_split, class_names=list(listing.class_names),
                n_images=int(keep.sum()), n_test=int((test & keep).sum()),
                skipped=skipped, modes=modes,
                decode_seconds=round(time.perf_counter() - t0, 2))
    return {"images": path, "labels": labels[keep], "groups": groups[keep]}, meta


IMAGEFOLDER = DatasetEntry(
    name="imagefolder", load=load_request, options=ImageFolderOptions,
    summary="your images, one sub-folder per class (see datasets/userdata.md)",
    data_dir="a folder with one sub-folder per class", check_source=check_imagefolder,
    variable_classes=True)

CSV = DatasetEntry(
    name="csv", load=load_request, options=CsvOptions,
    summary="your images listed in a manifest path,label[,split] (see datasets/userdata.md)",
    data_dir="the manifest file path,label[,split]", check_source=check_csv,
    variable_classes=True)
