"""Post-training quantization: ``python -m benchmark.convert``.

From ``<model>.keras`` in an artifact directory, write ``<model>_float.tflite``
and the full-integer ``<model>_int8.tflite`` (8-bit input/output, uint8 by
default as the Edge TPU tooling expects), with the representative set drawn
only from the split's training images (seeded; indices saved as
``representative_indices.json``). The export graph has a fixed batch of 1.
The command prints each model's op list and fails unless the int8 graph is
fully 8-bit with static shapes and only Edge TPU-friendly ops.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import sys
import warnings
from collections import Counter
from pathlib import Path

from dataclasses import dataclass, field

import numpy as np

from benchmark.artifacts import ConvertMeta, TrainMeta, read_train_meta
from benchmark.cli import main_wrapper, require_tensorflow
from benchmark.datasets.base import SPLITS
from benchmark.datasets.cli import add_dataset_arguments, dataset_options_from_args
from benchmark.datasets.registry import load_dataset, trained_dataset_options, validate_dataset
from benchmark.errors import DataError, UsageError
from benchmark.models.registry import get_model, list_models
from benchmark.quant.observers import OBSERVERS
from benchmark.results import atomic_write_bytes, environment, write_json
from benchmark.tflite_graph import GraphInfo, read_graph

#: Bumped when conversion output changes, so cached conversions are redone.
CONVERT_VERSION = 1
#: Ops a full-integer SignNet-style graph may contain.
INT8_ALLOWED_OPS = frozenset({"QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D",
                              "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX",
                              "ADD", "MEAN", "PAD"})
#: Ops that betray a dynamic batch dimension around Flatten.
DYNAMIC_SHAPE_OPS = frozenset({"SHAPE", "STRIDED_SLICE", "PACK"})
#: Integer types of the int8 model's input and output (``--io-type``).
IO_TYPES = ("uint8", "int8")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.convert",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", default="signnet", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--split", required=True, choices=SPLITS)
    p.add_argument("--model-dir", type=Path, default=None,
                   help="models root holding <model>/<split>/<model>.keras (default models/)")
    p.add_argument("--io-type", choices=IO_TYPES, default="uint8",
                   help="integer type of the int8 model's input and output (default uint8)")
    p.add_argument("--representative-size", type=int, default=None,
                   help="training images used to calibrate activation ranges (default: the "
                        "model's: 300 SignNet, 1000 CIFAR ResNets, 500 ImageNet models)")
    p.add_argument("--act-observer", choices=OBSERVERS, default="minmax",
                   help="activation range estimation: minmax (TFLite default), percentile "
                        "(99.99 %%) or mse (histogram, least squared error, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the representative draw")
    p.add_argument("--calibration-from", default=None, metavar="SPEC",
                   help="draw the representative set from: class:NAME[+NAME], group:ID[+ID] "
                        "(session/track), brightness:F (a scaled copy), folder:PATH; comma "
                        "list (see benchmark.quant.calibration)")
    p.add_argument("--weights", help="pretrained weights: a PyTorch state dict (.npz, .pth) "
                                     "for the CIFAR ResNets, a Keras .h5/.weights.h5 for "
                                     "resnet50/mobilenetv2, or a .keras file")
    p.add_argument("--data-seed", type=int, default=0,
                   help="with --weights: dataset seed (default 0; a trained model uses its own)")
    add_dataset_arguments(p, defaults_none=False, dataset_help=(
        "with --weights: the calibration dataset (default: the model's, e.g. cifar100); a "
        "model trained here is calibrated on the dataset it was trained on"))
    return p.parse_args(argv)


@dataclass(frozen=True)
class ConvertConfig:
    """Everything ``benchmark.convert`` does is decided by these (``convert(config)``).

    Without ``weights`` the split's trained ``.keras`` is converted on the
    data recorded in its ``train_meta.json`` (``data_dir``, dataset options
    and cache dir given here override the recorded ones; ``dataset`` must be
    the recorded one). With ``weights``, ``dataset`` (default: the model's),
    ``data_dir``, ``data_seed`` and the options pick the calibration data.
    """

    split: str
    model: str = "signnet"
    model_dir: Path | None = None
    io_type: str = "uint8"
    representative_size: int | None = None
    act_observer: str = "minmax"
    seed: int = 0
    calibration_from: str | None = None
    weights: str | None = None
    data_seed: int = 0
    dataset: str | None = None
    data_dir: str | None = None
    download: bool = False
    download_url: str | None = None
    num_classes: int | None = None
    on_bad_image: str = "fail"
    dataset_options: dict = field(default_factory=dict)
    cache_dir: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ConvertConfig":
        """The config of a parsed ``benchmark.convert`` command line."""
        values = dict(vars(args))
        options = dataset_options_from_args(values)
        for k in ("model_dir", "cache_dir"):
            values[k] = None if values.get(k) is None else Path(values[k])
        return cls(**values, dataset_options=options)

    def validate(self) -> "ConvertConfig":
        """Check every setting; UsageError naming the flag of the first bad one."""
        from benchmark.train import check_int

        for flag, value, choices in (("--split", self.split, SPLITS),
                                     ("--io-type", self.io_type, IO_TYPES),
                                     ("--act-observer", self.act_observer, OBSERVERS)):
            if value not in choices:
                raise UsageError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        check_int("--representative-size", self.representative_size, 1)
        check_int("--seed", self.seed, 0, optional=False)
        check_int("--data-seed", self.data_seed, 0, optional=False)
        from benchmark.quant.calibration import parse_spec
        parse_spec(self.calibration_from)
        if not isinstance(self.dataset_options, dict):
            raise UsageError("dataset options must be a table of name = value")
        return self


def check_int8_graph(g: GraphInfo, any_ops: bool = False) -> list[str]:
    """Problems that keep a graph from being a batch-1, fully 8-bit model (empty = ok).

    ``any_ops``: ops outside :data:`INT8_ALLOWED_OPS` are allowed (a model given
    by path; whether the Edge TPU runs them is the compiler's call).
    """
    problems = []
    names = g.op_names
    dyn = sorted(set(names) & DYNAMIC_SHAPE_OPS)
    if dyn:
        problems.append(f"dynamic-batch ops present: {', '.join(dyn)}")
    other = sorted(set(names) - INT8_ALLOWED_OPS - DYNAMIC_SHAPE_OPS - {"DEQUANTIZE"})
    if other and not any_ops:
        problems.append(f"unexpected ops: {', '.join(other)}")
    if "DEQUANTIZE" in names:
        problems.append("DEQUANTIZE present (float output); use --io-type uint8 or int8")
    problems += _check_static_batch1(g)
    for t in g.input_tensors() + g.output_tensors():
        if t.dtype not in ("INT8", "UINT8") or not t.scale.size:
            problems.append(f"model input/output {t.name!r} is {t.dtype}, not quantized 8-bit")
    produced = {o for op in g.operators for o in op.outputs}
    for t in g.tensors:
        if t.index in produced and (t.dtype not in ("INT8", "UINT8") or not t.scale.size):
            problems.append(f"activation tensor {t.name!r} is {t.dtype}, not quantized 8-bit")
        elif t.is_constant and t.dtype not in ("INT8", "UINT8", "INT32"):
            problems.append(f"constant tensor {t.name!r} is {t.dtype}")
        elif t.is_constant and t.dtype in ("INT8", "UINT8") and not t.scale.size:
            problems.append(f"weight tensor {t.name!r} has no quantization parameters")
    return problems


def _check_static_batch1(g: GraphInfo) -> list[str]:
    problems = []
    for t in g.input_tensors() + g.output_tensors():
        if not t.shape or t.shape[0] != 1:
            problems.append(f"tensor {t.name!r} has shape {t.shape}, batch must be 1")
    dynamic = [t.name for t in g.tensors if t.is_dynamic]
    if dynamic:
        problems.append(f"{len(dynamic)} tensors have dynamic shapes (e.g. {dynamic[0]!r})")
    return problems


def check_float_graph(g: GraphInfo) -> list[str]:
    problems = _check_static_batch1(g)
    dyn = sorted(set(g.op_names) & DYNAMIC_SHAPE_OPS)
    if dyn:
        problems.append(f"dynamic-batch ops present: {', '.join(dyn)}")
    return problems


def op_summary(g: GraphInfo) -> str:
    counts = Counter(g.op_names)
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())


def export_model(trained, entry):
    """A batch-1 copy of ``trained`` (same weights), built for conversion."""
    if entry.builder is None:  # a model given by path: its own graph at batch 1
        from benchmark.models.user import batch1_copy
        return batch1_copy(trained)
    export = entry.build(num_classes=trained.output_shape[-1], batch_size=1,
                         **entry.export_kwargs)
    export.set_weights(trained.get_weights())
    return export


class SavedModelExport:
    """One SavedModel export of a Keras model, shared by all of its conversions.

    ``TFLiteConverter.from_keras_model`` exports the model to a temporary
    SavedModel on every ``convert()`` (the slow part: tracing and writing
    it). Within ``with SavedModelExport() as export:``, :func:`to_tflite`
    with ``export=export`` exports on the first conversion into this
    object's directory (exactly as the converter would) and later
    conversions load that export instead of writing another; the converter
    is otherwise the stock one, so the ``.tflite`` bytes are the same. The
    directory is removed on exit. Use one export per model.
    """

    def __init__(self):
        self.dir: Path | None = None

    def __enter__(self) -> "SavedModelExport":
        import tempfile
        from benchmark.tempfiles import system_prefix
        self.dir = Path(tempfile.mkdtemp(prefix=system_prefix("export")))
        return self

    def __exit__(self, *exc) -> None:
        import shutil
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


@functools.lru_cache(maxsize=None)
def _shared_export_converter(base: type) -> type | None:
    """A subclass of the Keras converter class ``base`` exporting into a shared directory.

    None when this TensorFlow's converter does not have the private hooks
    it relies on (then every conversion exports as usual).
    """
    lite = sys.modules.get(base.__module__)
    needed = ("_tag_constants", "_signature_constants", "_load")
    if lite is None or not all(hasattr(lite, n) for n in needed) or not all(
            hasattr(base, n) for n in ("_convert_keras_to_saved_model", "_load_saved_model",
                                       "_parse_saved_model_args")):
        return None

    class SharedExportConverter(base):
        def _convert_keras_to_saved_model(self, output_dir):
            shared = self._shared_export_dir
            if not (Path(shared) / "saved_model.pb").is_file():
                return super()._convert_keras_to_saved_model(shared)
            # The tail of the base method, without the export itself.
            self.saved_model_dir = shared
            self._saved_model_tags = set([lite._tag_constants.SERVING])
            self._saved_model_exported_names = [
                lite._signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
            self._parse_saved_model_args(
                always_enable_saved_model_import=self.experimental_lower_to_saved_model)
            if self.saved_model_dir:
                graph_def, inputs, outputs = self._load_saved_model(self.saved_model_dir,
                                                                    self._saved_model_tags)
                self._trackable_obj = lite._load(self.saved_model_dir, self._saved_model_tags)
                return graph_def, inputs, outputs
            return None, None, None

    return SharedExportConverter


def keras_converter(tf, model, export: SavedModelExport | None = None):
    """``tf.lite.TFLiteConverter.from_keras_model(model)``, reusing ``export``'s SavedModel."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if export is None or export.dir is None:
        return conv
    cls = _shared_export_converter(type(conv))
    if cls is not None:
        conv.__class__ = cls
        conv._shared_export_dir = str(export.dir)
    return conv


def to_tflite(tf, model, representative=None, io_type: str = "uint8",
              observer: str = "minmax", observer_report: dict | None = None,
              export: SavedModelExport | None = None) -> bytes:
    """Convert a batch-1 Keras model; with ``representative``, full-integer int8.

    ``observer`` picks the activation ranges (see :mod:`benchmark.quant.observers`);
    ``observer_report`` receives the ranges it chose per tensor. With
    ``export`` (a :class:`SavedModelExport` of this ``model``), the model is
    exported once for all conversions that share it.
    """
    from benchmark.quant.observers import converter_observer

    conv = keras_converter(tf, model, export)
    if representative is not None:
        def gen():
            for i in range(representative.shape[0]):
                yield [representative[i:i + 1]]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = getattr(tf, io_type)
        conv.inference_output_type = getattr(tf, io_type)
    # Keras 3 prints the exported signature to stdout; keep our stdout for the op report.
    # The "Statistics for quantized inputs were expected" warning is about float-input
    # calibration statistics, which a uint8/int8 input with a representative set does
    # not need.
    report = {} if observer_report is None else observer_report
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
            converter_observer(observer if representative is not None else "minmax",
                               representative, report):
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return conv.convert()


def convert(cfg: ConvertConfig) -> dict:
    """``benchmark.convert``: the shipped ``.keras`` of a split, or pretrained ``--weights``.

    A parsed :class:`argparse.Namespace` is accepted too (old callers).
    """
    if not isinstance(cfg, ConvertConfig):
        cfg = ConvertConfig.from_args(cfg)
    cfg.validate()
    entry = get_model(cfg.model)
    out = entry.artifact_dir(cfg.split, cfg.model_dir)
    from benchmark.preflight import check_cache_dir, check_model_dir
    check_model_dir(out)
    check_cache_dir(cfg.cache_dir)
    if entry.load_weights is not None or cfg.weights:
        if not cfg.weights:
            raise UsageError(f"{entry.name} is built from pretrained weights: pass --weights FILE")
        dataset = cfg.dataset or entry.default_dataset
        ds = _dataset(cfg, entry, dataset, cfg.dataset_options, cfg.data_dir, cfg.data_seed)
        return convert_pretrained(entry, cfg.weights, ds, cfg.split, out,
                                  data_dir=cfg.data_dir, data_seed=cfg.data_seed,
                                  io_type=cfg.io_type, observer=cfg.act_observer,
                                  representative_size=cfg.representative_size, seed=cfg.seed,
                                  dataset_options=cfg.dataset_options,
                                  calibration_from=cfg.calibration_from)
    keras_path = out / f"{entry.name}.keras"
    meta_path = out / "train_meta.json"
    if not keras_path.is_file() or not meta_path.is_file():
        raise DataError(f"no trained model in {out} (expected {keras_path.name} and "
                        f"{meta_path.name}); run python -m benchmark.train first")
    meta = read_train_meta(meta_path)
    if cfg.dataset is not None and cfg.dataset != meta.dataset:
        raise UsageError(f"--dataset {cfg.dataset}: {meta_path} was trained on {meta.dataset}, "
                         "which calibrates it (--dataset is for --weights)")
    ds = _dataset(cfg, entry, meta.dataset,
                  cfg.dataset_options or trained_dataset_options(meta),
                  cfg.data_dir or meta.data_dir, meta.data_seed)
    from benchmark.kerasfile import load_keras
    trained = load_keras(keras_path)
    train_idx, _ = ds.split(meta.split, seed=meta.data_seed)
    from benchmark.results import file_sha256
    return convert_keras(trained, entry, ds, train_idx, out, split=meta.split,
                         io_type=cfg.io_type,
                         representative_size=cfg.representative_size, seed=cfg.seed,
                         observer=cfg.act_observer, calibration_from=cfg.calibration_from,
                         source_sha256=file_sha256(keras_path))


def _dataset(cfg: ConvertConfig, entry, dataset: str, options: dict, data_dir, seed: int):
    """Validate, download if asked, import TensorFlow, then load the calibration dataset."""
    validate_dataset(dataset, options=options, data_dir=data_dir, num_classes=cfg.num_classes,
                     on_bad_image=cfg.on_bad_image, download=cfg.download)
    if cfg.download:
        from benchmark.datasets.download import download_dataset
        download_dataset(dataset, data_dir, url=cfg.download_url,
                         log=lambda msg: print(msg, file=sys.stderr))
    require_tensorflow("conversion")
    return load_dataset(dataset, image_size=entry.input_size, seed=seed, options=options,
                        cache_dir=cfg.cache_dir, data_dir=data_dir,
                        on_bad_image=cfg.on_bad_image, num_classes=cfg.num_classes)


def load_pretrained(entry, weights: str | Path):
    """Build ``entry``'s Keras model with ``weights`` (a ``.keras`` file or the entry's format)."""
    require_tensorflow("loading pretrained weights")
    weights = Path(weights)
    if not weights.is_file():
        raise DataError(f"weights file not found: {weights}")
    if weights.suffix == ".keras" and entry.load_weights is None:
        from benchmark.kerasfile import load_keras
        return load_keras(weights)
    if entry.load_weights is None:
        raise UsageError(f"{entry.name} takes --weights only as a .keras file")
    model = entry.build()
    entry.load_weights(weights, model)
    return model


def convert_pretrained(entry, weights: str | Path, ds, split: str, out: Path, *,
                       data_dir=None, data_seed: int = 0, io_type: str = "uint8",
                       observer: str = "minmax", representative_size: int | None = None,
                       seed: int = 0, dataset_options: dict | None = None,
                       calibration_from: str | None = None) -> dict:
    """Load pretrained ``weights`` into ``entry``'s network and write a split's artifacts.

    Writes ``train_meta.json`` (a :class:`~benchmark.artifacts.TrainMeta`:
    what the weights are, which data the split uses) next to the float/int8
    models, so ``benchmark.run`` treats the directory like a shipped one.
    ``dataset_options`` are the options ``ds`` was loaded with (recorded).
    """
    from benchmark.results import file_sha256

    model = load_pretrained(entry, weights)
    if model.output_shape[-1] != ds.num_classes:
        raise DataError(f"the weights give {model.output_shape[-1]} outputs but {ds.name} has "
                        f"{ds.num_classes} classes")
    train_idx, eval_idx = ds.split(split, seed=data_seed)
    out.mkdir(parents=True, exist_ok=True)
    meta = TrainMeta(
        model=entry.name, dataset=ds.name, split=split, source="pretrained",
        weights=str(weights), weights_sha256=file_sha256(weights),
        dataset_meta={k: ds.meta[k] for k in ("cache_key", "source", "loader_version",
                                              "layout") if k in ds.meta},
        dataset_options=dict(dataset_options or {}),
        data_dir=str(data_dir) if data_dir else None,
        num_classes=ds.num_classes, class_names=list(ds.class_names),
        input_size=entry.input_size, preprocessing=entry.preprocess.describe(),
        n_train=int(train_idx.size), n_eval=int(eval_idx.size), data_seed=data_seed,
        environment=environment())
    write_json(out / "train_meta.json", meta.to_json())
    return convert_keras(model, entry, ds, train_idx, out, split=split, io_type=io_type,
                         observer=observer,
                         representative_size=representative_size, seed=seed,
                         calibration_from=calibration_from)


def convert_keras(trained, entry, ds, train_idx: np.ndarray, out: Path, *, split: str,
                  io_type: str = "uint8", representative_size: int | None = None,
                  seed: int = 0, observer: str = "minmax",
                  source_sha256: str | None = None,
                  calibration_from: str | None = None) -> dict:
    """Write ``<name>_float.tflite`` and ``<name>_int8.tflite`` of ``trained`` into ``out``.

    The representative set is a seeded draw of ``representative_size`` (default:
    the entry's) of ``train_idx`` (narrowed or changed by ``calibration_from``, a
    :mod:`benchmark.quant.calibration` SPEC); its indices go to
    ``representative_indices.json``.
    ``source_sha256`` (the ``.keras`` converted) is recorded as ``keras_sha256``
    in ``convert_meta.json``, so ``benchmark.run`` can refuse stale artifacts.
    """
    from benchmark.quant.calibration import parse_spec, select

    tf = require_tensorflow("conversion")
    size = representative_size or entry.representative_size
    export = export_model(trained, entry)
    rep_idx, rep_images, cal_record = select(ds, train_idx, parse_spec(calibration_from), size,
                                             seed, entry.input_size)
    rep = entry.preprocess(rep_images)

    diff = check_export(trained, export, rep[:8])
    report, ranges = {}, {}
    with SavedModelExport() as saved:  # one SavedModel export for both conversions
        for variant, data in (("float", None), ("int8", rep)):
            blob = to_tflite(tf, export, data, io_type, observer=observer,
                             observer_report=ranges, export=saved)
            report[variant] = write_variant(blob, variant, out / f"{entry.name}_{variant}.tflite",
                                            any_ops=entry.any_ops)
    write_json(out / "representative_indices.json", {
        "dataset": ds.name, "dataset_cache_key": ds.meta.get("cache_key"),
        "split": split, "seed": seed, "size": int(rep_idx.size),
        "indices": rep_idx.tolist(), **cal_record})
    write_json(out / "convert_meta.json", ConvertMeta(
        io_type=io_type, representative_size=int(rep_idx.size), seed=seed,
        act_observer=observer, activation_ranges=ranges or None,
        export_max_abs_diff=diff, variants=report, environment=environment(),
        keras_sha256=source_sha256,
        extra={k: cal_record[k] for k in ("calibration_from",) if k in cal_record}).to_json())
    return report


def check_export(trained, export, probe: np.ndarray) -> float:
    """Max |difference| of the batch-1 ``export`` from ``trained`` on ``probe`` (direct calls).

    The export graph must compute exactly what the trained model computes:
    DataError when the difference exceeds ``1e-4 * max(1, max |output|)``.
    """
    import keras

    def run(model, x):
        return keras.ops.convert_to_numpy(model(x, training=False))

    ref = run(trained, probe)
    got = np.concatenate([run(export, probe[i:i + 1]) for i in range(len(probe))])
    diff = float(np.max(np.abs(ref - got)))
    if diff > 1e-4 * max(1.0, float(np.abs(ref).max())):
        raise DataError(f"export model differs from the trained model (max |diff| {diff:.2e})")
    return diff


def write_variant(blob: bytes, variant: str, path: Path, any_ops: bool = False) -> dict:
    """Print the op report of a converted model, check its graph, write it; its report entry.

    Raises
    ------
    DataError
        The graph fails :func:`check_int8_graph` (``int8``) or
        :func:`check_float_graph` (``float``); the problems go to stderr.
    """
    g = read_graph(blob)
    problems = check_int8_graph(g, any_ops) if variant == "int8" else check_float_graph(g)
    print(f"{variant}: {len(g.operators)} ops: {op_summary(g)}")
    for t in (g.input_tensors()[0], g.output_tensors()[0]):
        q = f" scale={t.scale[0]:.6g} zero_point={t.zero_point[0]}" if t.scale.size else ""
        print(f"  {t.name}: {t.dtype} {list(t.shape)}{q}")
    if problems:
        for msg in problems:
            print(f"  FAIL: {msg}", file=sys.stderr)
        raise DataError(f"{variant} model failed the graph checks ({len(problems)} problems)")
    atomic_write_bytes(path, blob)
    print(f"  wrote {path}")
    return {"path": path.name, "bytes": len(blob), "ops": g.op_names,
            "op_versions": {o.name: o.version for o in g.operators}}


def main(argv=None) -> int:
    convert(ConvertConfig.from_args(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.convert", main))
