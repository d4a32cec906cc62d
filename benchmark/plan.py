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
from benchmark.modelcheck import check_slot
from benchmark.models.base import ModelEntry
from benchmark.models.user import UserModel
from benchmark.preprocess import Preprocessing
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
    #: the Keras model (or --weights) the calibration-sweep variants are converted from
    calibrate_from: Path | None = None


@dataclass(frozen=True)
class RunPlan:
    config: RunConfig
    entry: ModelEntry
    device: str                      # resolved: "cpu" or "edgetpu"
    out: Path
    splits: tuple[SplitPlan, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = ()      # what planning decided (printed unless --quiet)
    #: a model given by path (None: a registered model)
    user: UserModel | None = None
    #: how images become model inputs (declared for a user model, the entry's otherwise)
    preprocessing: Preprocessing | None = None


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
    for v in plan_variants(cfg.variants, device=device, weight_bits=cfg.weight_bits,
                           act_bits=cfg.act_bits, calibration=_calibration(cfg)):
        if v.kind in ("weights", "activations", "calibration"):
            out.append(v)   # generated in the run directory / converted during the run
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
        check_slot(path, "compiled" if v.kind == "compiled" else v.kind)
        out.append(v.with_path(path))
    if (cfg.weight_bits or cfg.act_bits) and not converted:
        src = artifacts / f"{entry.name}_int8.tflite"
        if not src.is_file():
            raise DataError(f"model file not found: {src} (the "
                            f"{'weight' if cfg.weight_bits else 'activation'}-bit sweep starts "
                            "from it)")
    return tuple(out)


def _calibration(cfg: RunConfig) -> tuple[Variant, ...]:
    from benchmark.variants import calibration_variants
    return calibration_variants(cfg.calibration_sizes, cfg.calibration_seeds,
                                cfg.calibration_from)


def _calibration_source(cfg: RunConfig, entry: ModelEntry, artifacts: Path) -> Path | None:
    """The model ``--calibration-sizes`` converts (its ``.keras``, or ``--weights``); checked."""
    if not cfg.calibration_sizes:
        return None
    source = Path(cfg.weights) if cfg.weights else artifacts / f"{entry.name}.keras"
    if not source.is_file():
        raise DataError(f"{'weights' if cfg.weights else 'model'} file not found: {source} "
                        "(--calibration-sizes converts it)")
    _check_converter_available()
    return source


def check_fresh(cfg: RunConfig, entry: ModelEntry, split: str, artifacts: Path) -> None:
    """DataError when ``<model>.keras`` changed since its ``.tflite`` files were converted.

    ``convert_meta.json`` records the SHA-256 of the ``.keras`` it converted;
    records older than that key (the shipped models') cannot be checked.
    """
    from benchmark.artifacts import read_convert_meta
    from benchmark.results import file_sha256
    keras_path, meta_path = artifacts / f"{entry.name}.keras", artifacts / "convert_meta.json"
    if not keras_path.is_file() or not meta_path.is_file():
        return
    recorded = read_convert_meta(meta_path).keras_sha256
    if recorded is None:  # converted before the key was recorded: cannot be checked
        return
    now = file_sha256(keras_path)
    if now != recorded:
        md = f" --model-dir {cfg.model_dir}" if cfg.model_dir else ""
        raise DataError(f"{keras_path} changed since it was converted (sha256 {now[:12]}, "
                        f"{meta_path.name} has {recorded[:12]}): its .tflite files are stale; "
                        f"re-convert: python -m benchmark.convert --model {entry.name} "
                        f"--split {split}{md}")


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
    if not converted:
        check_fresh(cfg, entry, split, artifacts)
    variants = _plan_variants(cfg, entry, artifacts, device, converted, notes)
    return SplitPlan(split=split, artifacts=artifacts, train_meta=meta, dataset=dataset,
                     dataset_options=options, data_dir=data_dir, variants=variants,
                     convert_from=source,
                     calibrate_from=_calibration_source(cfg, entry, artifacts))


def plan_run(cfg: RunConfig, *, default_prefix: str = "") -> RunPlan:
    """Validate ``cfg`` and everything it names; the :class:`RunPlan` of the run.

    Raises
    ------
    UsageError, DataError, BackendUnavailable
        One line each; nothing has been written when they are raised.
    """
    from benchmark.rundir import check_out_dir, default_out_dir

    entry, user, pre = resolve_model(cfg)
    out = (check_out_dir(Path(cfg.out), resume=cfg.resume) if cfg.out
           else default_out_dir(PROJECT_ROOT, default_prefix))
    from benchmark.preflight import check_run_out
    check_run_out(out, cfg.cache_dir)   # writable folders, before any work (creates nothing)
    device, note = resolve_device(cfg)
    notes = [note] if note else []
    if user is not None:
        splits = tuple(plan_user_split(cfg, entry, user, s, device, notes) for s in cfg.splits())
    else:
        splits = tuple(plan_split(cfg, entry, s, device, notes) for s in cfg.splits())
    from benchmark.preflight import check_out_outside_inputs
    check_out_outside_inputs(out, splits, cfg.cache_dir, registered=user is None)
    return RunPlan(config=cfg, entry=entry, device=device, out=out, splits=splits,
                   notes=tuple(notes), user=user, preprocessing=pre)


def is_user_model(cfg: RunConfig) -> bool:
    """True when the run's model is given by path (``--model PATH`` or the slot flags)."""
    from benchmark.models.registry import MODELS
    from benchmark.models.user import looks_like_path
    if cfg.float_model or cfg.int8_model or cfg.edgetpu_model:
        return True
    return cfg.model not in MODELS.names() and looks_like_path(cfg.model)


def resolve_model(cfg: RunConfig) -> tuple[ModelEntry, UserModel | None, Preprocessing]:
    """``(entry, user model or None, preprocessing)`` of the run's ``--model``."""
    from benchmark.models.registry import get_model
    if is_user_model(cfg):
        from benchmark.models.user import resolve_user_model, user_entry
        if cfg.weights:
            raise UsageError("--weights is for registered models; a model given by path "
                             "carries its weights")
        user = resolve_user_model(cfg)
        return user_entry(user), user, user.preprocessing
    entry = get_model(cfg.model)
    given = [f"--{k.replace('_', '-')}" for k in ("outputs", "model_labels") if getattr(cfg, k)]
    given += [f"preprocessing {k}" for k in (cfg.preprocessing or {})]
    if given:
        raise UsageError(f"{', '.join(given)}: for a model given by path; {entry.name} is "
                         "registered and declares its own (docs/own-model.md)")
    if entry.load_weights is not None and not cfg.weights:
        raise UsageError(f"{entry.name} has no shipped weights: pass --weights FILE "
                         f"({entry.weights_help or 'see docs/commands.md, Pretrained models'})")
    t = entry.preprocess
    pre = Preprocessing(input_size=entry.input_size, scale=t.scale, mean=t.mean, std=t.std,
                        source=f"registered model {entry.name}")
    return entry, None, pre


def _user_dataset(cfg: RunConfig, user: UserModel) -> tuple[str, dict, str | None]:
    """``(dataset, options, data_dir)`` a model given by path is evaluated on."""
    meta = user.train_meta
    data_dir = cfg.data_dir or (meta.get("data_dir") if meta else None)
    if cfg.dataset:
        dataset = cfg.dataset
    elif meta:
        dataset = meta["dataset"]
    elif data_dir:
        dataset = "csv" if Path(data_dir).is_file() else "imagefolder"
    else:
        raise UsageError(f"{user.source or cfg.model}: give --data-dir (your images, one "
                         "sub-folder per class) or --dataset NAME to evaluate it on")
    options = dict(cfg.dataset_options)
    if not options and meta and dataset == meta["dataset"]:
        from benchmark.datasets.registry import trained_dataset_options
        options = trained_dataset_options(meta)
    return dataset, options, data_dir


def _user_base_variants(cfg: RunConfig, user: UserModel) -> list[Variant]:
    """float and/or int8 of a model given by path (int8 alone has no float reference)."""
    from benchmark.variants import BASE_VARIANTS, float_variant, int8_variant
    converted = user.source is not None
    have = {"float", "int8"} if converted else set(user.files) & {"float", "int8"}
    asked = tuple(cfg.variants)
    wanted = [v for v in asked if v in have] if asked == BASE_VARIANTS else list(asked)
    missing = [v for v in wanted if v not in have]
    if missing:
        raise DataError(f"--variants {','.join(asked)}: the model has no {missing[0]} .tflite "
                        f"(give {'--float-model' if missing[0] == 'float' else '--int8-model'})")
    out = []
    if "float" in wanted:
        out.append(float_variant())
    if "int8" in wanted:
        v = int8_variant()
        out.append(v if "float" in wanted else Variant("int8", "int8", weight_bits=8))
    return [v if converted else v.with_path(user.files[v.kind]) for v in out]


def _user_variants(cfg: RunConfig, user: UserModel, device: str,
                   notes: list) -> tuple[Variant, ...]:
    from benchmark.variants import EDGETPU_NAME, act_variant, weight_variant
    out = _user_base_variants(cfg, user)
    compiled = user.files.get("compiled")
    if device == "edgetpu":
        if compiled is None:
            how = ("compile its converted int8 model with edgetpu_compiler, then give "
                   "--int8-model Q --edgetpu-model E" if user.source is not None
                   else "give --edgetpu-model E (edgetpu_compiler's _edgetpu.tflite)")
            raise DataError(f"--device edgetpu: no compiled model for the Edge TPU: {how}")
        ref = "int8" if any(v.kind == "int8" for v in out) else None
        out.append(Variant(EDGETPU_NAME, "compiled", device="edgetpu", path=compiled,
                           weight_bits=8, reference=ref))
    elif compiled is not None:
        if not out:
            raise UsageError(f"{compiled} is compiled for the Edge TPU: run it with "
                             "--device edgetpu")
        notes.append(f"{compiled.name} runs only on the Edge TPU (--device edgetpu): skipped")
    if cfg.calibration_sizes:
        raise UsageError("--calibration-sizes converts a registered model (or --weights); "
                         "for a model given by path convert it yourself (benchmark.convert)")
    if cfg.weight_bits or cfg.act_bits:
        flag = "--weight-bits" if cfg.weight_bits else "--act-bits"
        if user.source is None:
            raise UsageError(f"{flag} re-quantizes a model converted here: give the "
                             ".keras (or a registered model), not .tflite files")
        out += [weight_variant(b) for b in cfg.weight_bits]
        out += [act_variant(b) for b in cfg.act_bits]
    if not out:
        raise DataError(f"{cfg.model}: nothing to evaluate")
    return tuple(out)


def plan_user_split(cfg: RunConfig, entry: ModelEntry, user: UserModel, split: str,
                    device: str, notes: list) -> SplitPlan:
    """The :class:`SplitPlan` of a model given by path (converted first when it is Keras)."""
    dataset, options, data_dir = _user_dataset(cfg, user)
    _validate_dataset(cfg, dataset, options, data_dir)
    if user.source is not None:
        _check_converter_available()
    variants = _user_variants(cfg, user, device, notes)
    meta = None
    if user.source is None:
        from benchmark.tflite_graph import read_graph
        first = next(iter(user.files.values()))
        meta = {"num_classes": int(read_graph(first).output_tensors()[0].shape[-1]),
                "class_names": list(user.class_names or []), "source": "user"}
        names = user.class_names
        if names and len(names) != meta["num_classes"]:
            raise DataError(f"{user.names_source} names {len(names)} classes but {first.name} "
                            f"has {meta['num_classes']} outputs")
    art = (user.source or next(iter(user.files.values()))).parent
    return SplitPlan(split=split, artifacts=art, train_meta=meta, dataset=dataset,
                     dataset_options=options, data_dir=data_dir, variants=variants,
                     convert_from=user.source)
