"""The plan stage: resolve model, dataset, variants and device; validate everything; write nothing.

:func:`plan_run` turns a :class:`~benchmark.config.RunConfig` into a
:class:`RunPlan` or raises the project's one-line errors. It reads metadata
files and checks that every model file, weights file and data folder exists,
but it creates nothing on disk: a run that cannot succeed fails before its
run directory exists.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmark.config import RunConfig
from benchmark.errors import BackendUnavailable, DataError, UsageError
from benchmark.models.base import ModelEntry
from benchmark.paths import PROJECT_ROOT, models_root
from benchmark.artifacts import read_train_meta
from benchmark.variants import Variant, plan_variants

Log = Callable[[str], None] | None


@dataclass(frozen=True)
class SplitPlan:
    """What one split evaluates and where its inputs are.

    ``convert_from`` is set when the models must first be converted (``--weights``
    or an activation observer other than the shipped min-max): the variants'
    paths are then filled in after conversion.
    """

    split: str
    artifacts: Path
    train_meta: dict | None
    dataset: str
    dataset_options: dict
    data_dir: str | None
    variants: tuple[Variant, ...]
    convert_from: Path | None = None


@dataclass(frozen=True)
class RunPlan:
    config: RunConfig
    entry: ModelEntry
    device: str                      # resolved: "cpu" or "edgetpu"
    out: Path
    splits: tuple[SplitPlan, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = ()      # what planning decided (printed unless --quiet)


def resolve_device(cfg: RunConfig) -> tuple[str, str | None]:
    """``(device, note)``: ``auto`` -> ``edgetpu`` when the delegate library is installed."""
    from benchmark.backends.edgetpu import check_edgetpu_available, find_delegate_library
    if cfg.device == "edgetpu":
        check_edgetpu_available()
        return "edgetpu", None
    if cfg.device == "auto":
        lib = find_delegate_library()
        note = (f"auto: {'Edge TPU runtime ' + lib + ' found' if lib else 'no Edge TPU runtime'}"
                f", using {'the Edge TPU (and the CPU)' if lib else 'the CPU'}")
        return ("edgetpu" if lib else "cpu"), note
    return "cpu", None


def _validate_dataset(cfg: RunConfig, name: str, options: dict, data_dir) -> None:
    """Name, options and data folder of the dataset (``--download`` fetches the folder later)."""
    from benchmark.datasets.registry import validate_dataset
    validate_dataset(name, options=options, data_dir=data_dir, num_classes=cfg.num_classes,
                     on_bad_image=cfg.on_bad_image, download=cfg.download)


def _check_converter_available() -> None:
    if importlib.util.find_spec("tensorflow") is None:
        raise BackendUnavailable("converting the model needs TensorFlow: pip install -e "
                                 "'.[train]' (or make train-deps)")


def _split_inputs(cfg: RunConfig, entry: ModelEntry, split: str, artifacts: Path):
    """``(train_meta, dataset, options, data_dir, convert_from)`` of one split."""
    if cfg.weights:
        return (None, cfg.dataset or entry.default_dataset, dict(cfg.dataset_options),
                cfg.data_dir, Path(cfg.weights))
    meta_path = artifacts / "train_meta.json"
    if not meta_path.is_file():
        raise DataError(f"no trained {cfg.model} for split {split!r}: {meta_path} is "
                        "missing (train and convert it, see docs/commands.md)")
    meta = read_train_meta(meta_path).to_json()
    dataset = cfg.dataset or meta["dataset"]
    options = dict(cfg.dataset_options)
    if not options and dataset == meta["dataset"]:
        from benchmark.datasets.registry import trained_dataset_options
        options = trained_dataset_options(meta)
    data_dir = cfg.data_dir or (meta.get("data_dir") if dataset == meta["dataset"] else None)
    source = artifacts / f"{entry.name}.keras" if cfg.act_observer != "minmax" else None
    return meta, dataset, options, data_dir, source


def _plan_variants(cfg: RunConfig, entry: ModelEntry, artifacts: Path, device: str,
                   converted: bool, notes: list) -> tuple[Variant, ...]:
    out = []
    for v in plan_variants(cfg.variants, device=device, weight_bits=cfg.weight_bits):
        if v.kind == "weights":
            out.append(v)   # generated in the run directory from the int8 model
            continue
        if converted and v.kind != "compiled":
            out.append(v)   # path known after conversion
            continue
        path = artifacts / v.file_name(entry.name)
        if not path.is_file():
            if v.kind == "compiled" and cfg.device == "auto":
                notes.append(f"auto: no compiled {path.name} (run tools/compile_all.sh); "
                             "skipping the Edge TPU")
                continue
            if v.kind == "compiled" and converted:
                raise DataError(f"model file not found: {path} (compile the converted int8 "
                                "model for the Edge TPU first)")
            raise DataError(f"model file not found: {path}")
        out.append(v.with_path(path))
    if cfg.weight_bits and not converted:
        src = artifacts / f"{entry.name}_int8.tflite"
        if not src.is_file():
            raise DataError(f"model file not found: {src} (the weight-bit sweep starts from it)")
    return tuple(out)


def plan_split(cfg: RunConfig, entry: ModelEntry, split: str, device: str,
               notes: list) -> SplitPlan:
    root = Path(cfg.model_dir) if cfg.model_dir else models_root()
    artifacts = entry.artifact_dir(split, root)
    meta, dataset, options, data_dir, source = _split_inputs(cfg, entry, split, artifacts)
    _validate_dataset(cfg, dataset, options, data_dir)
    converted = source is not None
    if converted:
        if not source.is_file():
            raise DataError(f"{'weights' if cfg.weights else 'model'} file not found: {source}")
        _check_converter_available()
    variants = _plan_variants(cfg, entry, artifacts, device, converted, notes)
    return SplitPlan(split=split, artifacts=artifacts, train_meta=meta, dataset=dataset,
                     dataset_options=options, data_dir=data_dir, variants=variants,
                     convert_from=source)


def plan_run(cfg: RunConfig, *, default_prefix: str = "") -> RunPlan:
    """Validate ``cfg`` and everything it names; the :class:`RunPlan` of the run.

    Raises
    ------
    UsageError, DataError, BackendUnavailable
        One line each; nothing has been written when they are raised.
    """
    from benchmark.models.registry import get_model
    from benchmark.rundir import check_out_dir, default_out_dir

    entry = get_model(cfg.model)
    if entry.load_weights is not None and not cfg.weights:
        raise UsageError(f"{entry.name} has no shipped weights: pass --weights FILE "
                         f"({entry.weights_help or 'see docs/commands.md, Pretrained models'})")
    out = (check_out_dir(Path(cfg.out), resume=cfg.resume) if cfg.out
           else default_out_dir(PROJECT_ROOT, default_prefix))
    device, note = resolve_device(cfg)
    notes = [note] if note else []
    splits = tuple(plan_split(cfg, entry, s, device, notes) for s in cfg.splits())
    return RunPlan(config=cfg, entry=entry, device=device, out=out, splits=splits,
                   notes=tuple(notes))
