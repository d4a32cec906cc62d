"""Which images calibrate the activation ranges: ``--calibration-from SPEC``.

A SPEC is a comma list of ``key:value`` items, each narrowing or changing
the representative set drawn from the split's training images:

``class:NAME[+NAME...]``
    only images of these classes (names or integer labels);
``group:ID[+ID...]`` (also ``session:`` / ``track:``)
    only images of these recording groups (carolo-synth sessions, GTSRB tracks);
``brightness:F``
    every image's pixels multiplied by ``F`` (rounded, clipped to 0..255): a
    darker (F < 1) or brighter copy of the drawn images;
``folder:PATH``
    the images of a folder instead (any PIL-readable files, sorted by name,
    resized to the model's input size); the size/seed draw picks among them.

The draw itself (``size`` images, ``seed``) is the one ``benchmark.convert``
always made, so an empty SPEC gives the same set as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import DataError, UsageError

KEYS = ("class", "group", "brightness", "folder")
_ALIASES = {"session": "group", "track": "group"}


@dataclass(frozen=True)
class CalibrationSpec:
    """A parsed ``--calibration-from`` SPEC (all parts optional)."""

    classes: tuple[str, ...] = ()
    groups: tuple[int, ...] = ()
    brightness: float | None = None
    folder: str | None = None

    @property
    def empty(self) -> bool:
        return self == CalibrationSpec()

    def describe(self) -> str:
        """The canonical SPEC string ('' for the plain draw)."""
        parts = []
        if self.classes:
            parts.append("class:" + "+".join(self.classes))
        if self.groups:
            parts.append("group:" + "+".join(str(g) for g in self.groups))
        if self.brightness is not None:
            parts.append(f"brightness:{self.brightness:g}")
        if self.folder:
            parts.append(f"folder:{self.folder}")
        return ",".join(parts)


def parse_spec(spec: str | None) -> CalibrationSpec:
    """Parse a SPEC; UsageError naming ``--calibration-from`` for a bad one.

    Examples
    --------
    >>> parse_spec("class:STOPLINE+3,brightness:0.5").describe()
    'class:STOPLINE+3,brightness:0.5'
    >>> parse_spec("session:2").groups
    (2,)
    """
    values: dict = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.strip().partition(":")
        key = _ALIASES.get(key, key)
        if not sep or key not in KEYS or not value:
            raise UsageError(f"--calibration-from: {item!r} is not one of class:NAME, "
                             "group:ID, brightness:F, folder:PATH")
        try:
            if key == "class":
                values["classes"] = tuple(value.split("+"))
            elif key == "group":
                values["groups"] = tuple(int(v) for v in value.split("+"))
            elif key == "brightness":
                values["brightness"] = float(value)
            else:
                values["folder"] = value
        except ValueError:
            raise UsageError(f"--calibration-from: bad value in {item!r}") from None
    if values.get("brightness") is not None and not values["brightness"] > 0:
        raise UsageError("--calibration-from: brightness must be > 0")
    return CalibrationSpec(**values)


def _class_ids(ds, names) -> set[int]:
    ids = set()
    for n in names:
        if n.isdigit() and int(n) < ds.num_classes:
            ids.add(int(n))
        elif n in ds.class_names:
            ids.add(ds.class_names.index(n))
        else:
            raise UsageError(f"--calibration-from: unknown class {n!r} of {ds.name}")
    return ids


def pool(ds, train_idx: np.ndarray, spec: CalibrationSpec) -> np.ndarray:
    """The training indices the SPEC allows (DataError when none is left)."""
    idx = np.asarray(train_idx)
    if spec.classes:
        idx = idx[np.isin(ds.labels[idx], sorted(_class_ids(ds, spec.classes)))]
    if spec.groups:
        idx = idx[np.isin(ds.groups[idx], spec.groups)]
    if not idx.size:
        raise DataError(f"--calibration-from {spec.describe()}: no training image of "
                        f"{ds.name} matches")
    return idx


def draw(candidates: np.ndarray, size: int, seed: int) -> np.ndarray:
    """The seeded draw ``benchmark.convert`` makes: ``size`` of ``candidates``, sorted."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA11B]))
    return np.sort(rng.choice(candidates, min(size, candidates.size), replace=False))


def folder_images(folder: str | Path, size: int) -> tuple[list[str], np.ndarray]:
    """(file names, RGB uint8 images resized to ``size``) of the images in ``folder``."""
    from PIL import Image, UnidentifiedImageError

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"--calibration-from folder:{folder}: not a directory")
    names, images = [], []
    for p in sorted(q for q in root.iterdir() if q.is_file()):
        try:
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("RGB").resize((size, size))))
        except (UnidentifiedImageError, OSError):
            continue
        names.append(p.name)
    if not images:
        raise DataError(f"--calibration-from folder:{folder}: no readable image")
    return names, np.stack(images).astype(np.uint8)


def adjust(images: np.ndarray, spec: CalibrationSpec) -> np.ndarray:
    """The SPEC's pixel change (brightness) applied to uint8 ``images``."""
    if spec.brightness is None:
        return images
    return np.clip(np.rint(images.astype(np.float32) * spec.brightness), 0, 255).astype(np.uint8)


def select(ds, train_idx: np.ndarray, spec: CalibrationSpec, size: int, seed: int,
           image_size: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(indices, uint8 images, record)`` of the calibration set a SPEC picks.

    ``indices`` index ``ds`` (or the folder's sorted files); ``record`` is what
    ``representative_indices.json`` stores about the SPEC (empty for none).
    """
    if spec.folder:
        names, images = folder_images(spec.folder, image_size)
        idx = draw(np.arange(len(names)), size, seed)
        record = {"calibration_from": spec.describe(), "files": [names[i] for i in idx]}
        return idx, adjust(images[idx], spec), record
    idx = draw(pool(ds, train_idx, spec), size, seed)
    record = {"calibration_from": spec.describe()} if not spec.empty else {}
    return idx, adjust(ds.images[idx], spec), record


def images_of(ds, record: dict, image_size: int) -> np.ndarray:
    """The uint8 calibration images a ``representative_indices.json`` record describes."""
    spec = parse_spec(record.get("calibration_from"))
    idx = np.asarray(record.get("indices", []), dtype=np.int64)
    if spec.folder:
        names, images = folder_images(spec.folder, image_size)
        return adjust(images[idx], spec)
    if idx.size and (idx.min() < 0 or idx.max() >= len(ds)):
        raise DataError(f"representative indices out of range for {ds.name} ({len(ds)} images)")
    return adjust(ds.images[idx], spec)
