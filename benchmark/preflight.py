"""Checks on output locations made before any work, so a run does not fail after minutes.

An output folder must be a folder (or creatable: its nearest existing parent
is a writable folder) on a file system with room for what will be written.
Nothing is created here; a failure is one :class:`UsageError` naming the
option and the path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from benchmark.errors import UsageError
from benchmark.tempfiles import human

#: Room kept free beyond the estimate (the report, JSON records, the file system's own use).
MARGIN_BYTES = 16 * 1024 ** 2
#: What a run writes whatever its size: run.json, results.json, metrics.csv.
RUN_FIXED_BYTES = 64 * 1024


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: Path, *, option: str, need_bytes: int = 0,
                     shown: Path | None = None) -> None:
    """Refuse an output folder that cannot be written, before anything is written.

    Parameters
    ----------
    path : Path
        The folder to be written (created when missing).
    option : str
        The option that named it, e.g. ``"--out"``.
    need_bytes : int
        Estimated bytes the command will write there (:data:`MARGIN_BYTES` is
        added).
    shown : Path, optional
        The path the message names (default ``path``; a file's, see
        :func:`check_output_file`).

    Raises
    ------
    UsageError
        When ``path`` is a file, a parent of it is a file, the nearest
        existing folder is not writable (permissions or a read-only file
        system), or the file system has less free space than needed.
    """
    path = Path(path)
    name = f"{option} {shown if shown is not None else path}"
    if path.exists() and not path.is_dir():
        raise UsageError(f"{name}: {'' if shown is None else f'{path} '}is a file, not a folder")
    base = nearest_existing(path)
    if not base.is_dir():
        raise UsageError(f"{name}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UsageError(f"{name}: cannot write in {base} (permission denied or a "
                         "read-only file system)")
    free = shutil.disk_usage(base).free
    if need_bytes and free < need_bytes + MARGIN_BYTES:
        raise UsageError(f"{name}: needs about {human(need_bytes + MARGIN_BYTES)}, "
                         f"only {human(free)} free on the file system of {base}")


def check_output_file(path: Path, *, option: str, need_bytes: int = 0) -> None:
    """Like :func:`check_output_dir` for a file: its folder must be writable."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder, not a file")
    check_output_dir(path.parent, option=option, need_bytes=need_bytes, shown=path)


def estimate_run_bytes(*, n_images: int, num_classes: int, n_variants: int) -> int:
    """Bytes a run's split writes: float32 probabilities, labels, indices, confusion matrices.

    Examples
    --------
    >>> estimate_run_bytes(n_images=1000, num_classes=10, n_variants=2)
    113600
    """
    per_variant = n_images * (num_classes * 4 + 16) + num_classes * num_classes * 8
    return n_variants * per_variant


def check_cache_dir(cache_dir: str | Path | None) -> None:
    """The dataset cache (``--cache-dir``, else ``$EDGETPU_BENCH_CACHE``/``datasets/cache``)
    must be a writable folder: a decoded dataset is stored there before it is used."""
    from benchmark.paths import cache_root
    if cache_dir:
        check_output_dir(Path(cache_dir), option="--cache-dir")
    else:
        check_output_dir(cache_root(), option="the dataset cache ($EDGETPU_BENCH_CACHE or "
                                              "--cache-dir)")


def check_model_dir(path: Path) -> None:
    """A model's artifact folder (``--model-dir``/<model>/<split>) that train/convert write."""
    check_output_dir(path, option="--model-dir")


def check_run_out(out: Path, cache_dir: str | Path | None) -> None:
    """``benchmark.run``'s planning stage: ``--out`` and the dataset cache (nothing created)."""
    check_output_dir(out, option="--out", need_bytes=RUN_FIXED_BYTES)
    check_cache_dir(cache_dir)


def check_split_room(out: Path, *, n_images: int, num_classes: int, n_variants: int) -> None:
    """Once a split's size is known, before it is evaluated: room for its files in ``out``."""
    need = RUN_FIXED_BYTES + estimate_run_bytes(n_images=n_images, num_classes=num_classes,
                                                n_variants=n_variants)
    check_output_dir(out, option="--out", need_bytes=need)


def check_report_outputs(out: Path | None, figures: Path | None, runs) -> None:
    """``benchmark.report``: the HTML file's folder and ``--figures`` (before loading runs)."""
    if out is None:
        out = Path(runs[0]) / "report.html" if len(runs) == 1 else Path("report.html")
        option = "--out (default RUN/report.html)" if len(runs) == 1 else "--out"
    else:
        option = "--out"
    check_output_file(Path(out), option=option)
    if figures is not None:
        check_output_dir(Path(figures), option="--figures")


def check_out_outside_inputs(out: Path, splits, cache_dir: str | Path | None, *,
                             registered: bool) -> None:
    """``--out`` must not be, or lie inside, a folder the run reads.

    The folders are the dataset cache, for a registered model its artifact
    folder (``<model-dir>/<model>/<split>``), and each split's data folder:
    ``--out`` may not be one, and not lie inside an image folder (a run
    directory there would be read as a class by the next run; the other
    loaders read named files). A model given by path is read from wherever the
    user keeps it, so its folder is not one of them.
    """
    from benchmark.paths import cache_root
    inputs = [("the dataset cache", Path(cache_dir) if cache_dir else cache_root(), True)]
    for sp in splits:
        if sp.data_dir:
            inputs.append((f"the data folder of split {sp.split}", Path(sp.data_dir),
                           getattr(sp, "dataset", "imagefolder") == "imagefolder"))
        if registered:
            inputs.append((f"the model folder of split {sp.split}", Path(sp.artifacts), True))
    target = Path(out).resolve()
    for what, folder, not_inside in inputs:
        if folder.is_file():      # a CSV manifest: its rows name the images
            continue
        folder = folder.resolve()
        if target == folder or (not_inside and folder in target.parents):
            raise UsageError(f"--out {out}: {'is' if target == folder else 'inside'} {what} "
                             f"{folder}; choose a folder outside the run's inputs")
