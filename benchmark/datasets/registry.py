"""Dataset registry: ``load_dataset(name, ...)`` by name."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.datasets import cache
from benchmark.datasets.base import Dataset
from benchmark.errors import UsageError

DATASETS = ("carolo-synth", "gtsrb", "cifar100", "imagefolder", "csv", "imagenet")


def load_dataset(name: str, *, image_size: int = 80, seed: int = 0,
                 options: dict | None = None, cache_dir: Path | None = None,
                 verbose: bool = True, data_dir: Path | None = None,
                 on_bad_image: str = "fail", num_classes: int | None = None) -> Dataset:
    """Load (rendering or reading from the cache) the dataset ``name``.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    image_size : int
        Side of the square RGB images, the model's input size.
    seed : int
        Dataset seed (carolo-synth renders from it).
    options : dict, optional
        Dataset-specific options; for carolo-synth ``n_sessions`` and
        ``per_class_per_session``.
    cache_dir : Path, optional
        Defaults to :func:`benchmark.paths.cache_root`.
    data_dir : Path, optional
        Where a real dataset's files are (GTSRB: the official archives;
        imagefolder: the class-folder root; csv: the manifest file; imagenet:
        the WordNet id folders of the validation images).
    on_bad_image : {"fail", "skip"}
        Unreadable images stop the load (naming the file) or are skipped and
        listed in ``meta["skipped"]``.
    num_classes : int, optional
        imagefolder/csv: the number of classes the data must have (labels
        ``0..N-1``); a mismatch is a DataError naming the folder or label.
    """
    options = dict(options or {})
    if name in ("imagefolder", "csv"):
        from benchmark.datasets import userdata
        return userdata.load(name, data_dir, image_size=image_size, options=options,
                             num_classes=num_classes, cache_dir=cache_dir, verbose=verbose,
                             on_bad_image=on_bad_image)
    if num_classes is not None:
        raise UsageError(f"--num-classes is for the imagefolder and csv datasets; {name} has a "
                         "fixed class list")
    if name == "carolo-synth":
        return _load_carolo_synth(image_size=image_size, seed=seed, options=options,
                                  cache_dir=cache_dir, verbose=verbose)
    if name == "gtsrb":
        return _load_gtsrb(image_size=image_size, options=options, data_dir=data_dir,
                           cache_dir=cache_dir, verbose=verbose, on_bad_image=on_bad_image)
    if name == "cifar100":
        return _load_cifar100(image_size=image_size, options=options, data_dir=data_dir)
    if name == "imagenet":
        from benchmark.datasets import imagenet
        return imagenet.load(data_dir, image_size=image_size, seed=seed, options=options,
                             cache_dir=cache_dir, verbose=verbose, on_bad_image=on_bad_image)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")


def _load_carolo_synth(*, image_size, seed, options, cache_dir, verbose) -> Dataset:
    from benchmark.datasets import carolo_synth
    from benchmark.paths import cache_root

    fields = {f.name for f in dataclasses.fields(carolo_synth.SynthSpec)}
    unknown = set(options) - (fields - {"seed", "image_size"})
    if unknown:
        raise ValueError(f"unknown carolo-synth option(s): {', '.join(sorted(unknown))}")
    spec = carolo_synth.SynthSpec(seed=seed, image_size=image_size, **options)
    import PIL

    # Pillow draws the shapes; a different Pillow may rasterize edges differently.
    description = {"dataset": "carolo-synth", "renderer_version": carolo_synth.RENDERER_VERSION,
                   "spec": dataclasses.asdict(spec), "pillow": PIL.__version__}
    key = cache.cache_key(description)
    root = Path(cache_dir) if cache_dir is not None else cache_root()

    def render():
        t0 = time.perf_counter()
        if verbose:
            print(f"rendering carolo-synth ({spec.n_sessions} sessions x 30 classes x "
                  f"{spec.per_class_per_session} images, {image_size}px) into {root / key}",
                  file=sys.stderr)
        images, labels, sessions = carolo_synth.render_arrays(spec)
        meta = dict(description, cache_key=key, n_images=int(labels.size),
                    render_seconds=round(time.perf_counter() - t0, 2))
        return {"images": images, "labels": labels, "groups": sessions}, meta

    arrays, meta = cache.load_or_build(root, key, render)
    n_held = max(1, spec.n_sessions // 4)
    held = tuple(range(spec.n_sessions - n_held, spec.n_sessions))
    return Dataset(name="carolo-synth", images=arrays["images"],
                   labels=np.asarray(arrays["labels"], np.int64),
                   groups=np.asarray(arrays["groups"], np.int64),
                   class_names=tuple(carolo_synth.CLASS_NAMES),
                   verification_groups=held, meta=meta)


def _load_gtsrb(*, image_size, options, data_dir, cache_dir, verbose, on_bad_image) -> Dataset:
    from benchmark.datasets import gtsrb
    from benchmark.paths import cache_root

    unknown = set(options) - {"roi_crop"}
    if unknown:
        raise ValueError(f"unknown gtsrb option(s): {', '.join(sorted(unknown))}")
    if data_dir is None:
        raise ValueError("gtsrb needs --data-dir (the folder with the official GTSRB archives)")
    roi_crop = bool(options.get("roi_crop", False))
    try:
        fingerprint = gtsrb.source_fingerprint(Path(data_dir))
    except OSError as e:
        raise gtsrb.MissingData(f"cannot read {data_dir}: {e}") from None
    description = {"dataset": "gtsrb", "loader_version": gtsrb.LOADER_VERSION,
                   "image_size": image_size, "roi_crop": roi_crop, "source": fingerprint,
                   "on_bad_image": on_bad_image}
    key = cache.cache_key(description)
    root = Path(cache_dir) if cache_dir is not None else cache_root()

    def decode():
        t0 = time.perf_counter()
        records, sources = gtsrb.read_records(data_dir)
        if verbose:
            print(f"decoding {len(records)} GTSRB images ({image_size}px"
                  f"{', ROI crop' if roi_crop else ''}) into {root / key}", file=sys.stderr)
        images, keep, skipped = gtsrb.decode(records, sources, image_size=image_size,
                                             roi_crop=roi_crop, on_bad_image=on_bad_image)
        labels = np.array([r.label for r in records], np.int64)
        groups = np.array([r.group for r in records], np.int64)
        meta = dict(description, cache_key=key, n_images=int(keep.sum()), skipped=skipped,
                    n_train_images=int(sum(r.source == "train" for r in records)),
                    decode_seconds=round(time.perf_counter() - t0, 2))
        return {"images": images[keep], "labels": labels[keep], "groups": groups[keep]}, meta

    arrays, meta = cache.load_or_build(root, key, decode)
    groups = np.asarray(arrays["groups"], np.int64)
    return Dataset(name="gtsrb", images=arrays["images"],
                   labels=np.asarray(arrays["labels"], np.int64), groups=groups,
                   class_names=gtsrb.CLASS_NAMES, verification_groups=(gtsrb.TEST_GROUP,),
                   meta=meta, train_pool=groups != gtsrb.TEST_GROUP, full_split_by_group=True)


def _load_cifar100(*, image_size, options, data_dir) -> Dataset:
    from benchmark.datasets import cifar100

    if options:
        raise ValueError(f"unknown cifar100 option(s): {', '.join(sorted(options))}")
    if data_dir is None:
        raise ValueError("cifar100 needs --data-dir (cifar-100-python.tar.gz, its extracted "
                         "folder, or a .npz of it)")
    source = cifar100.find_source(data_dir)
    parts = cifar100.read(source)
    a = cifar100.arrays(parts, image_size=image_size)
    if a["n_train"] == 0:
        raise cifar100.DataError(f"{source} has no training images (needed to calibrate "
                                 "the int8 model and for the splits)")
    description = {"dataset": "cifar100", "loader_version": cifar100.LOADER_VERSION,
                   "image_size": image_size, "source_file": str(source),
                   "source": cifar100.fingerprint(source)}
    meta = dict(description, cache_key=cache.cache_key(description),
                n_images=int(a["labels"].size), n_test=a["n_test"], n_train=a["n_train"],
                layout=f"rows 0..{a['n_test'] - 1} are the test images in file order, rows "
                       f"{a['n_test']}..{a['n_test'] + a['n_train'] - 1} the training images "
                       "in file order")
    return Dataset(name="cifar100", images=a["images"], labels=a["labels"], groups=a["groups"],
                   class_names=parts["class_names"], verification_groups=(cifar100.TEST_GROUP,),
                   meta=meta, train_pool=a["groups"] != cifar100.TEST_GROUP)


def trained_dataset_options(train_meta: dict) -> dict:
    """Dataset options recorded when a model was trained (so it is evaluated on the same data)."""
    if "dataset_options" in train_meta:
        return dict(train_meta["dataset_options"])
    spec = train_meta.get("dataset_meta", {}).get("spec", {})
    return {k: v for k, v in spec.items() if k not in ("seed", "image_size")}
