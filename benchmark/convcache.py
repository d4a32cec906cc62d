"""The converted-model cache: pretrained weights and observer variants converted once, reused.

``--weights`` (and any ``--act-observer`` other than the shipped min-max)
needs a conversion (TensorFlow) before evaluation. Its artifacts go to
``<cache>/converted/<model>-<split>-<observer>-<key>/``, where the key hashes
the source file's bytes, the dataset's cache key, the seed, the observer and
the converter version, so a changed input is never mistaken for a finished
conversion. A directory is complete once ``convert_meta.json`` exists: it is
built in a temporary sibling and renamed into place.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

from benchmark.artifacts import read_train_meta

Log = Callable[[str], None] | None


def cache_dir_for(cache_dir: str | Path | None) -> Path:
    from benchmark.paths import cache_root
    return Path(cache_dir) if cache_dir else cache_root()


def conversion_key(*, model: str, source_sha256: str, split: str, dataset_key, seed: int,
                   observer: str, preprocessing: dict | None = None,
                   calibration: dict | None = None) -> str:
    """The cache key of one conversion (stable across runs and machines); ``calibration``:
    the calibration set of a calibration-sweep variant (:func:`ensure_calibrated`)."""
    from benchmark.convert import CONVERT_VERSION
    from benchmark.datasets.cache import cache_key
    desc = {"model": model, "source": source_sha256, "split": split, "dataset": dataset_key,
            "seed": seed, "act_observer": observer, "convert_version": CONVERT_VERSION}
    if preprocessing is not None:
        desc["preprocessing"] = preprocessing
    if calibration is not None:
        desc["calibration"] = calibration
    return cache_key(desc)


def ensure_converted(entry, split: str, ds, source: Path, train_meta: dict | None, *,
                     observer: str, seed: int, data_dir, cache_dir, log: Log, user=None
                     ) -> tuple[Path, dict]:
    """``(artifact dir, train_meta)`` of ``source`` converted for ``split`` (cached).

    ``user``: the :class:`~benchmark.models.user.UserModel` when ``source`` is a
    model given by path (its preprocessing is part of the key: it makes the
    calibration inputs).
    """
    from benchmark.models.user import source_sha256

    key = conversion_key(model=entry.name, source_sha256=source_sha256(source), split=split,
                         dataset_key=ds.meta.get("cache_key"), seed=seed, observer=observer,
                         preprocessing=user.preprocessing.record() if user else None)
    out = cache_dir_for(cache_dir) / "converted" / f"{entry.name}-{split}-{observer}-{key}"
    with conversion_lock(out):     # two processes asking for the same conversion: one builds it
        return _ensure(out, entry, split, ds, source, train_meta, observer=observer, seed=seed,
                       data_dir=data_dir, log=log, user=user)


@contextlib.contextmanager
def conversion_lock(out: Path):
    """Hold an exclusive ``flock`` on ``<out>.lock`` (waits while another process holds it)."""
    import fcntl
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _ensure(out: Path, entry, split: str, ds, source: Path, train_meta: dict | None, *,
            observer: str, seed: int, data_dir, log: Log, user=None) -> tuple[Path, dict]:
    if (out / "convert_meta.json").is_file():
        if log:
            log(f"[{split}] using the models converted earlier in {out}")
        return out, read_train_meta(out / "train_meta.json").to_json()
    if log:
        log(f"[{split}] converting {source.name} ({observer} activation ranges) into {out}")
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with contextlib.redirect_stdout(sys.stderr if log else io.StringIO()):
            if user is not None:
                convert_user(entry, user, ds, split, tmp, seed=seed, observer=observer)
            else:
                _convert_into(tmp, entry, split, ds, source, train_meta, observer=observer,
                              seed=seed, data_dir=data_dir)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, read_train_meta(out / "train_meta.json").to_json()


def _convert_into(tmp: Path, entry, split, ds, source: Path, train_meta, *, observer, seed,
                  data_dir) -> None:
    from benchmark.convert import convert_keras, convert_pretrained, load_pretrained
    from benchmark.results import write_json
    if train_meta is None:
        convert_pretrained(entry, source, ds, split, tmp, data_dir=data_dir, data_seed=seed,
                           observer=observer)
    else:
        train_idx, _ = ds.split(split, seed=seed)
        convert_keras(load_pretrained(entry, source), entry, ds, train_idx, tmp, split=split,
                      observer=observer)
        write_json(tmp / "train_meta.json", dict(train_meta, source_model=str(source)))


def convert_user(entry, um, ds, split: str, out: Path, *, seed: int,
                 observer: str) -> None:
    """Convert a user's ``.keras`` / SavedModel into ``out`` (float + int8, train_meta.json).

    The same PTQ path as a trained SignNet (:func:`benchmark.convert.convert_keras`):
    the representative set is a seeded draw from ``split``'s training images of ``ds``.
    """
    from benchmark.artifacts import TrainMeta
    from benchmark.convert import convert_keras
    from benchmark.results import environment, write_json
    from benchmark.models.user import load_source, source_sha256
    model = load_source(um.kind, um.source, entry.input_size)
    train_idx, eval_idx = ds.split(split, seed=seed)
    sha = source_sha256(um.source)
    convert_keras(model, entry, ds, train_idx, out, split=split, observer=observer,
                  source_sha256=sha)
    meta = TrainMeta(
        model=entry.name, dataset=ds.name, split=split, source="pretrained",
        weights=str(um.source), weights_sha256=sha,
        dataset_meta={k: ds.meta[k] for k in ("cache_key", "source", "loader_version", "layout")
                      if k in ds.meta},
        data_dir=ds.meta.get("data_dir"), num_classes=int(model.output_shape[-1]),
        class_names=list(um.class_names or []), input_size=entry.input_size,
        preprocessing=um.preprocessing.record(), n_train=int(train_idx.size),
        n_eval=int(eval_idx.size), data_seed=seed, environment=environment())
    write_json(out / "train_meta.json", meta.to_json())


def ensure_calibrated(entry, split: str, ds, source: Path, jobs: list[tuple[int, int]], *,
                      spec: str | None, observer: str, seed: int, pretrained: bool,
                      cache_dir, log: Log) -> dict[tuple[int, int], Path]:
    """``{(size, draw seed): int8 .tflite}``: ``source`` converted once per calibration set.

    The calibration-sweep variants of ``benchmark.run --calibration-sizes``: each
    job's representative set is the seeded draw ``benchmark.convert`` makes
    (:func:`benchmark.quant.calibration.select`, narrowed or changed by ``spec``)
    from ``split``'s training images of ``ds`` (split with the data ``seed``).
    Each conversion is cached in its own ``converted/<model>-<split>-cal<size>s<seed>-<key>/``
    (int8 model, ``representative_indices.json``, ``convert_meta.json``); the key
    adds the calibration images' bytes to :func:`conversion_key`, so a changed
    folder or dataset is never mistaken for a finished conversion. Only missing
    ones are converted (TensorFlow), sharing one load and SavedModel export.
    """
    import hashlib

    from benchmark.models.user import source_sha256
    from benchmark.quant.calibration import parse_spec, select
    parsed, sha = parse_spec(spec), source_sha256(source)
    train_idx, _ = ds.split(split, seed=seed)
    out, todo = {}, []
    for size, draw_seed in jobs:
        idx, images, record = select(ds, train_idx, parsed, size, draw_seed, entry.input_size)
        cal = {"size": size, "seed": draw_seed, "from": parsed.describe(),
               "images": hashlib.sha256(images.tobytes()).hexdigest()}
        key = conversion_key(model=entry.name, source_sha256=sha, split=split,
                             dataset_key=ds.meta.get("cache_key"), seed=seed,
                             observer=observer, calibration=cal)
        d = cache_dir_for(cache_dir) / "converted" / f"{entry.name}-{split}-cal{size}s" \
            f"{draw_seed}-{key}"
        out[(size, draw_seed)] = d / f"{entry.name}_int8.tflite"
        todo.append((d, idx, images, dict(record, seed=draw_seed)))
    _Calibrator(entry, source, pretrained, split, ds, observer, log).run(todo)
    return out


class _Calibrator:
    """Converts the missing calibration variants (the model loaded and exported once)."""

    def __init__(self, entry, source: Path, pretrained: bool, split: str, ds, observer: str,
                 log: Log):
        self.entry, self.source, self.pretrained = entry, source, pretrained
        self.split, self.ds, self.observer, self.log = split, ds, observer, log
        self.tf = self.export = self.diff = None

    def run(self, todo: list) -> None:
        from benchmark.convert import SavedModelExport
        with SavedModelExport() as saved:
            for d, idx, images, record in todo:
                with conversion_lock(d):
                    if (d / "convert_meta.json").is_file():
                        if self.log:
                            self.log(f"[{self.split}] using the calibration variant converted "
                                     f"earlier in {d}")
                        continue
                    self._build(d, idx, images, record, saved)

    def _prepare(self, probe) -> None:
        from benchmark.cli import require_tensorflow
        from benchmark.convert import check_export, export_model, load_pretrained
        self.tf = require_tensorflow("the calibration sweep")
        if self.pretrained:
            trained = load_pretrained(self.entry, self.source)
        else:
            from benchmark.kerasfile import load_keras
            trained = load_keras(self.source)
        self.export = export_model(trained, self.entry)
        self.diff = check_export(trained, self.export, probe)

    def _build(self, d: Path, idx, images, record: dict, saved) -> None:
        from benchmark.artifacts import ConvertMeta
        from benchmark.convert import to_tflite, write_variant
        from benchmark.results import environment, write_json
        rep = self.entry.preprocess(images)
        if self.export is None:
            self._prepare(rep[:8])
        if self.log:
            self.log(f"[{self.split}] converting {self.source.name} with {idx.size} "
                     f"calibration images (seed {record['seed']}) into {d}")
        tmp = d.with_name(d.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            ranges: dict = {}
            with contextlib.redirect_stdout(sys.stderr if self.log else io.StringIO()):
                blob = to_tflite(self.tf, self.export, rep, "uint8", observer=self.observer,
                                 observer_report=ranges, export=saved)
                report = {"int8": write_variant(blob, "int8", tmp / f"{self.entry.name}_int8"
                                                ".tflite", any_ops=self.entry.any_ops)}
            write_json(tmp / "representative_indices.json", {
                "dataset": self.ds.name, "dataset_cache_key": self.ds.meta.get("cache_key"),
                "split": self.split, "size": int(idx.size), "indices": idx.tolist(), **record})
            write_json(tmp / "convert_meta.json", ConvertMeta(
                io_type="uint8", representative_size=int(idx.size), seed=record["seed"],
                act_observer=self.observer, activation_ranges=ranges or None,
                export_max_abs_diff=self.diff, variants=report, environment=environment(),
                extra={k: record[k] for k in ("calibration_from",) if k in record}).to_json())
            shutil.rmtree(d, ignore_errors=True)
            tmp.rename(d)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
