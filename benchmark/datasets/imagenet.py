"""ImageNet (ILSVRC-2012) validation images in class folders: the ``imagenet`` dataset.

``--data-dir`` holds one folder per WordNet id (``n01440764/ILSVRC2012_val_00000293.JPEG``,
...), or a ``train/`` and a ``val/`` folder of that layout (``train/`` is the
calibration pool, ``val/`` is evaluated). See datasets/imagenet.md.

Class index: the position of the WordNet id in the sorted list of the 1000
ILSVRC-2012 ids, the index the Keras (and most other) ImageNet weights use.
The list comes from ``LOC_synset_mapping.txt`` (Kaggle: ``n01440764 tench,
Tinca tinca``), ``synset_words.txt`` (same format) or ``synsets.txt`` (one id
per line) in the data dir or its parent, so a subset of the class folders
keeps the standard indices; without such a file the data dir must have all
1000 id folders. Class names are the first comma-separated name after the id
(ids whose name occurs twice, like the two ``crane``, get ``" (<id>)"``
appended), else the id.

Preprocessing, the standard evaluation crop: the shorter side is resized
(bilinear, Pillow) to ``round(input_size * 256 / 224)`` (256 for 224 inputs)
and the centre ``input_size`` x ``input_size`` is cropped, both as
torchvision's ``Resize`` + ``CenterCrop``. Decoding, RGB conversion and
``--on-bad-image`` are those of :mod:`benchmark.datasets.userdata`; the
images are decoded straight into a memory-mapped cache file, so memory does
not grow with the set (50 000 images at 224 px take 7.5 GB of disk).

Splits: with ``train/`` + ``val/``, ``verification`` calibrates on ``train/``
and evaluates ``val/``. Without them ``verification`` evaluates all images
but a seeded, class-stratified 2 % (:data:`CALIBRATION_FRACTION`; at least one
image of each class with two or more) held out for calibration, so
calibration and evaluation never share an image. ``full`` calibrates on a
seeded 90 % of each class of the calibration pool (``train/``, or all
images) and evaluates every image, like every dataset's ``full`` split.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.datasets import cache, userdata
from benchmark.datasets.base import Dataset
from benchmark.datasets.entry import DatasetEntry, LoadRequest, NoOptions
from benchmark.errors import DataError

LOADER_VERSION = 2  # 2: names equal up to case get their WordNet id
NUM_CLASSES = 1000
#: Class-list files looked for in the data dir, then in its parent, in this order.
SYNSET_FILES = ("LOC_synset_mapping.txt", "synset_words.txt", "synsets.txt")
#: Shorter side before the centre crop, relative to the crop (256 / 224).
RESIZE_RATIO = 256 / 224
#: Without train/ + val/: share of each class held out for calibration.
CALIBRATION_FRACTION = 0.02
#: Group of the evaluated images (``val/``, or all but the calibration share).
EVAL_GROUP = userdata.TEST_GROUP
_WNID = re.compile(r"n\d{8}")
_EXAMPLE = "n01440764"


@dataclass(frozen=True)
class Synsets:
    """The class list: sorted WordNet ids, their display names, where they came from."""

    wnids: tuple[str, ...]
    names: tuple[str, ...]
    source: str


def find_synset_file(data_dir: Path) -> Path | None:
    """The first of :data:`SYNSET_FILES` in ``data_dir``, then in its parent; None if none."""
    for folder in (data_dir, data_dir.resolve().parent):
        for name in SYNSET_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def read_synsets(path: Path) -> Synsets:
    """Parse a class-list file: lines ``<wnid>[ <names, comma separated>]``.

    Raises
    ------
    DataError
        Unreadable file, a line not starting with a WordNet id, a repeated
        id, or not exactly 1000 ids; naming the file (and line).
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise DataError(f"cannot read class list {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"class list {path} is not UTF-8 text: {e.reason}") from None
    entries: dict[str, str] = {}
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        wnid, _, rest = line.strip().partition(" ")
        if not _WNID.fullmatch(wnid):
            raise DataError(f"{path} line {i}: {line.strip()[:40]!r} does not start with a "
                            f"WordNet id like {_EXAMPLE}")
        if wnid in entries:
            raise DataError(f"{path} line {i}: {wnid} is listed twice")
        entries[wnid] = rest.split(",")[0].strip() or wnid
    if len(entries) != NUM_CLASSES:
        raise DataError(f"{path} lists {len(entries)} WordNet ids; the ILSVRC-2012 class list "
                        f"has {NUM_CLASSES}")
    wnids = tuple(sorted(entries))
    # names equal up to case ("Cardigan" the corgi, "cardigan" the sweater) are told apart
    # too: class-name matching (benchmark.classmap) compares names case-folded
    count = Counter(n.casefold() for n in entries.values())
    names = tuple(entries[w] if count[entries[w].casefold()] == 1 else f"{entries[w]} ({w})"
                  for w in wnids)
    return Synsets(wnids, names, str(path))


def shorter_side(input_size: int) -> int:
    """Side the shorter image edge is resized to before the centre crop (256 for 224)."""
    return int(round(input_size * RESIZE_RATIO))


def resize_center_crop(rgb, image_size: int):
    """Resize the shorter side to :func:`shorter_side` (bilinear), crop the centre square.

    The same arithmetic as torchvision's ``Resize(s)`` + ``CenterCrop(image_size)``:
    the longer side becomes ``int(s * long / short)`` and the crop's offset is
    ``int(round((side - image_size) / 2))``.
    """
    from PIL import Image

    s = shorter_side(image_size)
    w, h = rgb.size
    if w <= h:
        size = (s, int(s * h / w))
    else:
        size = (int(s * w / h), s)
    if size != (w, h):
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left = int(round((size[0] - image_size) / 2.0))
    top = int(round((size[1] - image_size) / 2.0))
    return rgb.crop((left, top, left + image_size, top + image_size))


def list_imagenet(data_dir: str | Path) -> tuple[userdata.Listing, Synsets]:
    """Images, standard labels and the class list of an ImageNet folder.

    Raises
    ------
    DataError
        Missing folder, no or non-WordNet-id class folders, folders not in
        the class list, no class list and not all 1000 folders, or no images.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"imagenet data dir {root} is not a folder: it should hold the "
                        f"validation images in WordNet id folders ({root}/{_EXAMPLE}/*.JPEG)")
    parts, layout, folders = userdata.class_folders(root, eval_dirs=("val",))
    if not folders:
        raise DataError(f"no class folders in {root}: put the images into {root}/<wnid>/ "
                        f"(like {_EXAMPLE}/), or train/<wnid>/ and val/<wnid>/")
    odd = sorted(f for f in folders if not _WNID.fullmatch(f))
    if odd:
        raise DataError(f"folder {root / odd[0]} is not a WordNet id like {_EXAMPLE}: imagenet "
                        f"wants {root}/<wnid>/<image>, or train/<wnid>/ and val/<wnid>/")
    path = find_synset_file(root)
    if path is not None:
        synsets = read_synsets(path)
        unknown = sorted(folders - set(synsets.wnids))
        if unknown:
            raise DataError(f"class folder {unknown[0]} is not among the WordNet ids in {path}")
    elif len(folders) == NUM_CLASSES:
        wnids = tuple(sorted(folders))
        synsets = Synsets(wnids, wnids, "the 1000 class folders")
    else:
        raise DataError(f"{root} has {len(folders)} of the {NUM_CLASSES} class folders and no "
                        f"class list: put LOC_synset_mapping.txt (Kaggle) or synsets.txt (the "
                        f"{NUM_CLASSES} ILSVRC-2012 WordNet ids, one per line) into {root} or "
                        f"{root.resolve().parent} so each folder gets its standard class index")
    items = userdata.folder_items(root, parts, {w: i for i, w in enumerate(synsets.wnids)
                                                if w in folders})
    if not items:
        raise DataError(f"no images ({', '.join(userdata.IMAGE_EXTENSIONS)}) in the class "
                        f"folders under {root}")
    listing = userdata.Listing(items, synsets.names, explicit_split=len(parts) == 2,
                               layout=layout)
    return listing, synsets


def load(data_dir: str | Path | None, *, image_size: int = 224, seed: int = 0,
         options: dict | None = None, cache_dir: Path | None = None, verbose: bool = True,
         on_bad_image: str = "fail") -> Dataset:
    """Load the ``imagenet`` dataset, decoding (resize + centre crop) through the cache.

    Parameters
    ----------
    data_dir : path
        WordNet id folders, or ``train/`` + ``val/`` of them.
    image_size : int
        The model's input size: the crop side.
    seed : int
        Seeds the choice of the calibration share (without ``train/``) and
        is not part of the decode cache key.
    options : dict, optional
        None accepted (a UsageError lists any given).
    cache_dir : Path, optional
        Defaults to :func:`benchmark.paths.cache_root`.
    verbose : bool
        Report decoding progress on stderr.
    on_bad_image : {"fail", "skip"}

    Returns
    -------
    Dataset
        1000 classes; ``verification`` evaluates group -1 (``val/``, or all
        but the calibration share), ``full`` is described in the module
        docstring.
    """
    from benchmark.datasets.registry import load_dataset

    return load_dataset("imagenet", image_size=image_size, seed=seed, options=options,
                        cache_dir=cache_dir, verbose=verbose, data_dir=data_dir,
                        on_bad_image=on_bad_image)


# --------------------------------------------------------------------------------------------
# the registered dataset
# --------------------------------------------------------------------------------------------

def check_source(data_dir: Path, options: NoOptions) -> None:
    """DataError unless ``data_dir`` is a folder."""
    if not data_dir.is_dir():
        raise DataError(f"imagenet data dir {data_dir} is not a folder: it should hold the "
                        f"validation images in WordNet id folders ({data_dir}/{_EXAMPLE}/*.JPEG)")


def load_request(req: LoadRequest, options: NoOptions) -> Dataset:
    """The ``imagenet`` dataset of ``req``: decoded through the cache, then split."""
    from PIL import __version__ as pillow_version

    image_size = req.image_size
    listing, synsets = list_imagenet(req.data_dir)
    description = {"dataset": "imagenet", "loader_version": LOADER_VERSION,
                   "image_size": image_size, "resize_shorter_side": shorter_side(image_size),
                   "crop": "center", "interpolation": "bilinear",
                   "on_bad_image": req.on_bad_image, "pillow": pillow_version,
                   "source": userdata.fingerprint(listing)}
    key = cache.cache_key(description)

    def build():
        t0 = time.perf_counter()
        if req.verbose:
            print(f"decoding {len(listing.items)} imagenet images (shorter side "
                  f"{shorter_side(image_size)}, centre {image_size}px crop) from "
                  f"{req.data_dir} into {req.cache_dir / key}", file=sys.stderr)
        arrays, n_kept, skipped, modes = _decode_to_scratch(
            listing.items, req.cache_dir, key, image_size, req.on_bad_image, req.verbose)
        meta = dict(description, cache_key=key, data_dir=str(req.data_dir),
                    layout=listing.layout, explicit_split=listing.explicit_split,
                    class_names=list(synsets.names), wnids=list(synsets.wnids),
                    class_list=synsets.source, n_images=n_kept, skipped=skipped, modes=modes,
                    decode_seconds=round(time.perf_counter() - t0, 2))
        return arrays, meta

    arrays, meta = cache.load_or_build(req.cache_dir, key, build)
    return _split_dataset(req, listing, arrays, meta)


def _split_dataset(req: LoadRequest, listing: userdata.Listing, arrays: dict,
                   meta: dict) -> Dataset:
    """The dataset of the cached arrays, each image in the calibration pool or evaluated."""
    items, seed = listing.items, req.seed
    item_index = np.asarray(arrays["groups"], np.int64)
    if listing.explicit_split:
        evaluated = np.array([it.part == "test" for it in items], bool)
        rule = "train/ calibrates, val/ is evaluated"
    else:
        evaluated = ~userdata.holdout_mask(items, CALIBRATION_FRACTION, seed=seed)
        rule = (f"a seeded (seed {seed}), class-stratified {CALIBRATION_FRACTION:.0%} of the "
                "images calibrates, the rest is evaluated")
    evaluated = evaluated[item_index]
    if evaluated.all() or not evaluated.any():
        what = "calibration" if evaluated.all() else "evaluation"
        hint = ("put images into both" if listing.explicit_split else
                "give a class folder at least two images, or use train/ and val/")
        raise DataError(f"{req.data_dir}: no images for {what} ({rule}): {hint}")
    groups = np.where(evaluated, EVAL_GROUP, item_index)
    meta = dict(meta, split_rule=rule, n_evaluated=int(evaluated.sum()),
                n_calibration_pool=int((~evaluated).sum()))
    return Dataset(name="imagenet", images=arrays["images"],
                   labels=np.asarray(arrays["labels"], np.int64), groups=groups,
                   class_names=tuple(meta["class_names"]), verification_groups=(EVAL_GROUP,),
                   meta=meta, train_pool=(groups != EVAL_GROUP) if listing.explicit_split
                   else None)


def _decode_to_scratch(items, root: Path, key: str, image_size: int, on_bad_image: str,
                       verbose: bool):
    """Decode ``items`` into memory-mapped scratch files for :func:`cache.store`.

    Returns ``(arrays, n_kept, skipped, modes)``; ``arrays["images"]`` is the
    path of the scratch ``.npy`` (moved into the cache entry by the store),
    ``arrays["groups"]`` the position of each kept image in ``items``.
    """
    shape = (len(items), image_size, image_size, 3)
    path = cache.new_scratch(root, key, "images", shape, np.uint8)
    reported = [0]

    def progress(done, total):  # every 5000 images (chunks end anywhere) and at the end
        if verbose and (done // 5000 > reported[0] or done == total):
            reported[0] = done // 5000
            print(f"  {done}/{total} images decoded", file=sys.stderr)

    try:
        keep, skipped, modes = userdata.decode_to_npy(items, path, image_size=image_size,
                                                      on_bad_image=on_bad_image,
                                                      resize=resize_center_crop,
                                                      progress=progress)
        kept = np.flatnonzero(keep)
        if kept.size == 0:
            raise DataError(f"none of the {len(items)} images is readable")
        # compact, chunk by chunk, into a file of the kept rows
        path = cache.compact_rows(root, key, "images-kept", path, kept)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    labels = np.array([items[i].label for i in kept], np.int64)
    return ({"images": path, "labels": labels, "groups": kept.astype(np.int64)},
            int(kept.size), skipped, modes)


DATASET = DatasetEntry(
    name="imagenet", load=load_request,
    summary="ImageNet (ILSVRC-2012) validation images in WordNet id folders, 1000 classes",
    data_dir="the validation images in WordNet id folders, see datasets/imagenet.md",
    check_source=check_source)
