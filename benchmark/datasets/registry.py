"""The dataset registry: ``load_dataset(name, ...)`` and ``validate_dataset(name, ...)`` by name.

Built-in datasets are lazy references (``module:attribute``) to their
:class:`~benchmark.datasets.entry.DatasetEntry`, so listing the names
(``choices=``, "available: ..." messages) imports no loader, and looking one
up imports only its module. Register your own with
``DATASETS.register(name, entry)`` (or :func:`register_dataset`); that never
hides the built-in ones.

:data:`DATASETS` is the registry itself; for old callers it also behaves as
the collection of names (``name in DATASETS``, ``for name in DATASETS``,
``choices=DATASETS``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmark.datasets.entry import (ON_BAD_IMAGE, DatasetEntry, LoadRequest, check_readable,
                                      parse_options)
from benchmark.errors import UsageError
from benchmark.registry import Registry

_BUILTIN = {
    "carolo-synth": "benchmark.datasets.carolo_synth:DATASET",
    "gtsrb": "benchmark.datasets.gtsrb:DATASET",
    "cifar100": "benchmark.datasets.cifar100:DATASET",
    "imagefolder": "benchmark.datasets.userdata:IMAGEFOLDER",
    "csv": "benchmark.datasets.userdata:CSV",
    "imagenet": "benchmark.datasets.imagenet:DATASET",
}

DATASETS: Registry[DatasetEntry] = Registry("dataset", builtins=_BUILTIN, option="--dataset")


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Register ``entry`` under its name (ValueError when the name is taken)."""
    return DATASETS.register(entry.name, entry)


def get_dataset(name: str) -> DatasetEntry:
    """The registered dataset ``name``; :class:`~benchmark.errors.UsageError` lists the known."""
    return DATASETS.get(name)


def list_datasets() -> list[str]:
    """Registered dataset names, sorted (imports no loader)."""
    return DATASETS.names()


def _which(predicate) -> str:
    return " and ".join(DATASETS.filter(predicate))


def validate_dataset(name: str, *, options: dict | None = None, data_dir=None,
                     num_classes: int | None = None, on_bad_image: str = "fail",
                     download: bool = False):
    """Every check of a dataset request that needs no decoding; returns the typed options.

    Checks that ``name`` is registered, ``on_bad_image`` and ``num_classes``
    are valid for it, every option is known and well typed, and the data dir
    is given when needed, exists and is readable (with ``download``, a
    downloadable dataset's data dir may not exist yet). A run's planning
    stage calls this before it writes anything; :func:`load_dataset` calls it
    first.

    Raises
    ------
    UsageError
        Unknown dataset, bad option (named), ``num_classes`` for a dataset
        with a fixed class list, bad ``on_bad_image``, missing data dir,
        ``download`` for a dataset that cannot be downloaded.
    DataError
        The data dir (or a file an option names) is missing or unreadable.
    """
    entry = DATASETS.get(name)
    if on_bad_image not in ON_BAD_IMAGE:
        raise UsageError(f"--on-bad-image must be {' or '.join(ON_BAD_IMAGE)}, "
                         f"got {on_bad_image!r}")
    if num_classes is not None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise UsageError(f"--num-classes must be an integer >= 1, got {num_classes!r}")
        if not entry.variable_classes:
            raise UsageError(f"--num-classes is for the {_which(lambda e: e.variable_classes)} "
                             f"datasets; {name} has a fixed class list")
    if download and not entry.downloadable:
        raise UsageError(f"--download is not available for dataset {name!r}; it is for: "
                         f"{', '.join(DATASETS.filter(lambda e: e.downloadable))}")
    opts = parse_options(entry, options)
    if entry.data_dir is None:
        return opts
    if data_dir is None:
        raise UsageError(f"{name} needs --data-dir ({entry.data_dir})")
    path = Path(data_dir)
    if download and not path.exists():
        return opts
    if entry.check_source is not None:
        entry.check_source(path, opts)
    check_readable(path)
    return opts


def load_dataset(name: str, *, image_size: int = 80, seed: int = 0,
                 options: dict | None = None, cache_dir: Path | None = None,
                 verbose: bool = True, data_dir: Path | None = None,
                 on_bad_image: str = "fail", num_classes: int | None = None):
    """Load (rendering or reading from the cache) the dataset ``name``.

    Parameters
    ----------
    name : str
        A name in :data:`DATASETS`.
    image_size : int
        Side of the square RGB images, the model's input size.
    seed : int
        Dataset seed (carolo-synth renders from it).
    options : dict, optional
        Dataset-specific options (see each entry's options dataclass); for
        carolo-synth ``n_sessions`` and ``per_class_per_session``, gtsrb
        ``roi_crop``, imagefolder/csv ``holdout``, csv ``class_names``.
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

    Raises
    ------
    UsageError, DataError
        As :func:`validate_dataset` (called first), and DataError for
        unreadable or inconsistent data found while loading.
    """
    from benchmark.paths import cache_root
    from benchmark.tempfiles import sweep

    opts = validate_dataset(name, options=options, data_dir=data_dir, num_classes=num_classes,
                            on_bad_image=on_bad_image)
    cache_dir = Path(cache_dir) if cache_dir is not None else cache_root()
    sweep(cache_dir, log=lambda line: print(line, file=sys.stderr))
    request = LoadRequest(name=name, image_size=image_size, seed=seed,
                          cache_dir=cache_dir,
                          verbose=verbose, data_dir=None if data_dir is None else Path(data_dir),
                          on_bad_image=on_bad_image, num_classes=num_classes)
    return DATASETS.get(name).load(request, opts)


def trained_dataset_options(train_meta) -> dict:
    """Dataset options recorded when a model was trained (so it is evaluated on the same data).

    ``train_meta`` is a :class:`benchmark.artifacts.TrainMeta` or the dict of
    a ``train_meta.json``.
    """
    if not isinstance(train_meta, dict):
        train_meta = train_meta.to_json()
    if "dataset_options" in train_meta:
        return dict(train_meta["dataset_options"])
    spec = train_meta.get("dataset_meta", {}).get("spec", {})
    return {k: v for k, v in spec.items() if k not in ("seed", "image_size")}
