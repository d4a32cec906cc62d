"""Train a registered model on one split: ``python -m benchmark.train``.

Writes ``<model>.keras``, ``history.json`` and ``train_meta.json`` into the
artifact directory (default ``models/<model>/<split>/``; an existing model
there is replaced only with ``--overwrite``). Training is deterministic:
seeded weights, seeded shuffling, TensorFlow op determinism.

The network gets as many outputs as the data has classes (``--num-classes N``
requires N). ``--init-from MODEL`` (a registered model's trained weights or a
``.keras`` file) starts from another model: every layer of the same name and
shape is copied, the output layer is new when the class count differs. A
seeded ``--val-fraction`` of the training images (by recording session or
track where the dataset has them, :func:`benchmark.trainsplit.validation_split`)
is held out and evaluated after every epoch; the weights of the best epoch
(highest validation accuracy, then lowest validation loss) are the ones saved.
On a terminal Keras draws a progress bar; otherwise one line per epoch.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.artifacts import TrainMeta
from benchmark.cli import main_wrapper, require_tensorflow
from benchmark.datasets.base import SPLITS
from benchmark.datasets.cli import add_dataset_arguments, dataset_options_from_args
from benchmark.datasets.registry import load_dataset, validate_dataset
from benchmark.errors import DataError, UsageError
from benchmark.models.registry import get_model, list_models
from benchmark.results import environment, write_json
from benchmark.trainsplit import DEFAULT_VAL_FRACTION, TrainRows, draw_rows, rows_record


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.train",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", default="signnet", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--split", required=True, choices=SPLITS)
    p.add_argument("--epochs", type=int, default=None, help="default: the model's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--no-augment", action="store_true",
                   help="train without brightness/contrast/translation jitter")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--data-seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--limit-train", type=int, default=None,
                   help="train on a seeded subset of N images (for quick tests)")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="models root; artifacts go to <model-dir>/<model>/<split>/ "
                        "(default models/)")
    p.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                   help="fraction of the training images held out to pick the best epoch "
                        f"(default {DEFAULT_VAL_FRACTION}; 0: none, the last epoch is kept)")
    p.add_argument("--init-from", metavar="MODEL",
                   help="start from these weights: a registered model name (its trained "
                        "<model>.keras for the same split) or a .keras file; layers of the same "
                        "name and shape are copied, the output layer is new when the class "
                        "count differs")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model already trained in the artifact directory")
    add_dataset_arguments(p, defaults_none=False, dataset_default="carolo-synth")
    return p.parse_args(argv)


def _path(value) -> Path | None:
    return None if value is None else Path(value)


def check_int(flag: str, value, minimum: int | None = None, *, optional: bool = True) -> None:
    """UsageError naming ``flag`` unless ``value`` is an int (or None) >= ``minimum``."""
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(f"{flag} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise UsageError(f"{flag} must be >= {minimum}, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``benchmark.train`` does is decided by these (``train(config)``).

    ``epochs``, ``batch_size``, ``learning_rate``: None takes the model's
    default; ``augment`` None the model's, False is ``--no-augment``.
    ``dataset_options`` are the loader's options (see
    :func:`benchmark.datasets.cli.dataset_options_from_args`).
    """

    split: str
    model: str = "signnet"
    dataset: str = "carolo-synth"
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    augment: bool | None = None
    seed: int = 0
    data_seed: int = 0
    limit_train: int | None = None
    model_dir: Path | None = None
    data_dir: Path | None = None
    download: bool = False
    download_url: str | None = None
    num_classes: int | None = None
    on_bad_image: str = "fail"
    dataset_options: dict = field(default_factory=dict)
    cache_dir: Path | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    init_from: str | None = None
    overwrite: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        """The config of a parsed ``benchmark.train`` command line."""
        values = dict(vars(args))
        options = dataset_options_from_args(values)
        no_augment = values.pop("no_augment", False)
        for k in ("model_dir", "data_dir", "cache_dir"):
            values[k] = _path(values.get(k))
        return cls(**values, augment=False if no_augment else None, dataset_options=options)

    def validate(self) -> "TrainConfig":
        """Check every setting; UsageError naming the flag of the first bad one."""
        if self.split not in SPLITS:
            raise UsageError(f"--split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        for flag, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                            ("--limit-train", self.limit_train)):
            check_int(flag, value, 1)
        check_int("--seed", self.seed, 0, optional=False)
        check_int("--data-seed", self.data_seed, 0, optional=False)
        if self.learning_rate is not None and not (isinstance(self.learning_rate, (int, float))
                                                   and self.learning_rate > 0):
            raise UsageError(f"--learning-rate must be a number > 0, got {self.learning_rate!r}")
        if self.augment not in (None, True, False):
            raise UsageError(f"augment must be true, false or unset, got {self.augment!r}")
        if not isinstance(self.dataset_options, dict):
            raise UsageError("dataset options must be a table of name = value")
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, (int, float)) \
                or not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val-fraction must be a number in [0, 1), got "
                             f"{self.val_fraction!r}")
        return self

    def check_dataset(self) -> None:
        """The dataset checks that need no decoding (:func:`validate_dataset`)."""
        validate_dataset(self.dataset, options=self.dataset_options, data_dir=self.data_dir,
                         num_classes=self.num_classes, on_bad_image=self.on_bad_image,
                         download=self.download)


def dataset_options(args) -> dict:
    """The dataset options of a parsed command line (kept for old callers)."""
    return dataset_options_from_args(dict(vars(args)))


def hyperparameters(entry, cfg: TrainConfig) -> dict:
    """The model's training defaults with the config's overrides."""
    hp = dict(entry.train_defaults)
    if cfg.augment is not None:
        hp["augment"] = cfg.augment
    for k in ("epochs", "batch_size", "learning_rate"):
        if getattr(cfg, k) is not None:
            hp[k] = getattr(cfg, k)
    if hp["epochs"] < 1 or hp["batch_size"] < 1:
        raise UsageError("--epochs and --batch-size must be >= 1")
    return hp


def artifact_dir(entry, cfg: TrainConfig) -> Path:
    """Where the model goes; UsageError when a trained model is there and no ``--overwrite``."""
    out = entry.artifact_dir(cfg.split, cfg.model_dir)
    taken = [n for n in (f"{entry.name}.keras", "train_meta.json") if (out / n).exists()]
    if taken and not cfg.overwrite:
        raise UsageError(f"{out} already holds a trained model ({taken[0]}): pass --overwrite "
                         "to replace it, or --model-dir DIR to train into another directory")
    return out


def init_source(entry, cfg: TrainConfig) -> Path | None:
    """The ``.keras`` file ``--init-from`` names (a path, or a registered model's artifact)."""
    if cfg.init_from is None:
        return None
    value = str(cfg.init_from)
    path = Path(value)
    if value.endswith(".keras") or path.suffix or "/" in value:
        if not path.is_file():
            raise DataError(f"--init-from {path}: no such .keras file")
        from benchmark.kerasfile import check_keras_archive
        check_keras_archive(path)   # before the data is loaded and TensorFlow imported
        return path
    src = get_model(value)
    roots = [cfg.model_dir, None] if cfg.model_dir is not None else [None]
    for root in roots:
        cand = src.artifact_dir(cfg.split, root) / f"{src.name}.keras"
        if cand.is_file():
            return cand
    raise DataError(f"--init-from {value}: no trained model at {cand} (train it first, or give "
                    "a .keras file)")


def train(cfg: TrainConfig) -> Path:
    """Train ``cfg.model`` on a split and write its artifacts; the ``.keras`` path.

    A parsed :class:`argparse.Namespace` is accepted too (old callers).
    """
    if not isinstance(cfg, TrainConfig):
        cfg = TrainConfig.from_args(cfg)
    cfg.validate()
    entry = get_model(cfg.model)
    if entry.load_weights is not None:
        raise UsageError(f"{entry.name} is not trained here: it loads pretrained weights "
                         "(benchmark.run/convert --weights FILE)")
    hp = hyperparameters(entry, cfg)
    cfg.check_dataset()
    from benchmark.preflight import check_cache_dir, check_model_dir
    check_model_dir(artifact_dir(entry, cfg))
    check_cache_dir(cfg.cache_dir)
    init = init_source(entry, cfg)
    if cfg.download:
        from benchmark.datasets.download import download_dataset
        download_dataset(cfg.dataset, cfg.data_dir, url=cfg.download_url,
                         log=lambda msg: print(msg, file=sys.stderr))
    tf = require_tensorflow("training")
    ds = load_dataset(cfg.dataset, image_size=entry.input_size, seed=cfg.data_seed,
                      options=cfg.dataset_options, cache_dir=cfg.cache_dir,
                      data_dir=cfg.data_dir, on_bad_image=cfg.on_bad_image,
                      num_classes=cfg.num_classes)
    _, eval_idx = ds.split(cfg.split, seed=cfg.data_seed)
    rows = draw_rows(ds, cfg.split, data_seed=cfg.data_seed, limit=cfg.limit_train,
                     seed=cfg.seed, val_fraction=cfg.val_fraction)
    if cfg.val_fraction and not rows.validation.size:
        print(f"note: --val-fraction {cfg.val_fraction} of {rows.fit.size} training images "
              "holds out none (too few sessions/tracks per class); keeping the last epoch",
              file=sys.stderr)
    model, history, seconds, extra = fit(tf, entry, ds, rows, hp, cfg, init)
    extra["training_rows"] = rows_record(rows, limit=cfg.limit_train,
                                         val_fraction=cfg.val_fraction)
    meta = TrainMeta(
        model=entry.name, dataset=cfg.dataset, split=cfg.split,
        dataset_meta={k: ds.meta[k] for k in ("spec", "renderer_version", "cache_key",
                                              "source", "loader_version") if k in ds.meta},
        dataset_options=dict(cfg.dataset_options),
        data_dir=str(cfg.data_dir) if cfg.data_dir else None,
        num_classes=ds.num_classes, class_names=list(ds.class_names),
        input_size=entry.input_size, preprocessing=entry.preprocess.describe(),
        n_train=int(rows.fit.size), n_eval=int(eval_idx.size), seed=cfg.seed,
        data_seed=cfg.data_seed,
        hyperparameters=dict(hp, schedule="cosine decay to 0", optimizer="adam"),
        train_seconds=round(seconds, 1), environment=environment(), extra=extra)
    return save(entry, cfg, model, history, meta)


def transfer_weights(model, source: Path) -> dict:
    """Copy every layer of ``source`` (a ``.keras`` file) with the same name and shapes.

    The output layer (the last one with weights) may differ in its class
    count: it then keeps its fresh initialization. Any other layer that is
    missing in ``source`` or has other shapes is a DataError (another
    architecture). Returns the ``init_from`` record of train_meta.json.
    """
    import keras

    from benchmark.results import file_sha256
    try:
        src = keras.models.load_model(source, compile=False)
    except Exception as e:  # keras raises many types for foreign files
        raise DataError(f"--init-from {source}: cannot load the Keras model "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    theirs = {layer.name: layer for layer in src.layers if layer.get_weights()}
    ours = [layer for layer in model.layers if layer.get_weights()]
    kept, new = [], []
    for i, layer in enumerate(ours):
        other = theirs.get(layer.name)
        shapes = [w.shape for w in layer.get_weights()]
        if other is not None and [w.shape for w in other.get_weights()] == shapes:
            layer.set_weights(other.get_weights())
            kept.append(layer.name)
        elif i == len(ours) - 1:
            # A random head on trained features gives huge logits (features reach ~100):
            # the first steps' gradients would wreck the body. From zeros the softmax
            # starts uniform (loss log K) and the head learns first.
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
            new.append(layer.name)
        else:
            got = "missing" if other is None else \
                f"of shapes {[w.shape for w in other.get_weights()]}"
            raise DataError(f"--init-from {source}: layer {layer.name!r} {shapes} is {got} "
                            "there (another architecture or input size)")
    return {"source": str(source), "sha256": file_sha256(source), "layers_kept": kept,
            "new_head": new, "new_head_init": "zeros"}


def _augmented(keras, model, seed: int):
    """Photometric and small geometric jitter, in training only (the saved model is plain)."""
    return keras.Sequential([
        keras.Input(model.input_shape[1:]),
        keras.layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed),
        keras.layers.RandomContrast(0.2, seed=seed + 1),
        keras.layers.RandomTranslation(0.06, 0.06, fill_mode="nearest", seed=seed + 2),
        model,
    ])


def fit(tf, entry, ds, rows: TrainRows, hp: dict, cfg: TrainConfig, init: Path | None = None):
    """Build and fit the model; ``(model, history dict, seconds, train_meta extras)``.

    The returned model holds the best epoch's weights (:class:`BestEpoch`).
    """
    import keras

    x = entry.preprocess(ds.images[rows.fit])
    y = ds.labels[rows.fit]
    val = None
    if rows.validation.size:
        val = (entry.preprocess(ds.images[rows.validation]), ds.labels[rows.validation])
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    model = entry.build(num_classes=ds.num_classes)
    extra = {"init_from": transfer_weights(model, init)} if init is not None else {}
    fit_model = _augmented(keras, model, cfg.seed) if hp.get("augment") else model
    steps = hp["epochs"] * -(-rows.fit.size // hp["batch_size"])
    # Cosine decay to 0 settles the weights; without it held-out accuracy swings ~1 %
    # between late epochs.
    lr = keras.optimizers.schedules.CosineDecay(hp["learning_rate"], decay_steps=steps)
    fit_model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"training {entry.name} ({ds.num_classes} classes) on {cfg.dataset}/{cfg.split}: "
          f"{rows.fit.size} images, {rows.validation.size} held out for validation, "
          f"{hp['epochs']} epochs", file=sys.stderr)
    best = best_epoch_callback(keras, model, hp["epochs"])
    tty = sys.stderr.isatty()
    t0 = time.perf_counter()
    hist = fit_model.fit(x, y, epochs=hp["epochs"], batch_size=hp["batch_size"], shuffle=True,
                         validation_data=val, verbose=1 if tty else 0,
                         callbacks=[best] if tty else [best, epoch_log_callback(keras, best)])
    seconds = time.perf_counter() - t0
    extra["validation"] = val_rec = best.restore(n=int(rows.validation.size),
                                                 fraction=cfg.val_fraction)
    if "accuracy" in val_rec:
        print(f"kept epoch {val_rec['best_epoch']}/{hp['epochs']}: validation accuracy "
              f"{val_rec['accuracy']:.4f}, loss {val_rec['loss']:.4f}", file=sys.stderr)
    return model, hist.history, seconds, extra


def best_epoch_callback(keras, model, epochs: int):
    """A Keras callback keeping the weights of ``model``'s best epoch.

    Best: the highest ``val_accuracy``, ties broken by the lowest
    ``val_loss``; without validation data, the last epoch. ``restore()``
    puts those weights back and returns the ``validation`` record.
    """

    class BestEpoch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.key, self.weights, self.last = None, None, None, None

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.last = logs
            if "val_accuracy" not in logs:
                return
            key = (float(logs["val_accuracy"]), -float(logs["val_loss"]))
            if self.key is None or key > self.key:
                self.key, self.best = key, epoch + 1
                self.weights = [w.copy() for w in model.get_weights()]

        def restore(self, *, n: int, fraction: float) -> dict:
            rec = {"fraction": fraction, "n": n, "epochs": epochs,
                   "monitor": "val_accuracy, then val_loss"}
            if self.weights is None:
                return dict(rec, best_epoch=epochs, kept="last epoch (no validation images)")
            model.set_weights(self.weights)
            return dict(rec, best_epoch=self.best, accuracy=self.key[0], loss=-self.key[1],
                        kept="best epoch")

    return BestEpoch()


def epoch_log_callback(keras, best):
    """One line per epoch on stderr (used when stderr is not a terminal)."""

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            line = (f"epoch {epoch + 1}/{self.params.get('epochs')}: loss "
                    f"{logs.get('loss', float('nan')):.4f}, accuracy "
                    f"{logs.get('accuracy', float('nan')):.4f}")
            if "val_accuracy" in logs:
                mark = " (best)" if best.best == epoch + 1 else ""
                line += (f"; validation loss {logs['val_loss']:.4f}, accuracy "
                         f"{logs['val_accuracy']:.4f}{mark}")
            print(line, file=sys.stderr)

    return EpochLog()


def save(entry, cfg: TrainConfig, model, history: dict, meta: TrainMeta) -> Path:
    """Write ``<model>.keras``, ``history.json`` and ``train_meta.json``; the ``.keras`` path."""
    out = artifact_dir(entry, cfg)
    out.mkdir(parents=True, exist_ok=True)
    keras_path = out / f"{entry.name}.keras"
    tmp = out / f".{entry.name}.tmp.keras"
    # Save an uncompiled copy: the optimizer state would triple the file for nothing.
    clean = entry.build(num_classes=meta.num_classes)
    clean.set_weights(model.get_weights())
    try:
        clean.save(tmp)
        tmp.replace(keras_path)
    except BaseException:       # a full disk, Ctrl-C: no half-written .keras left behind
        tmp.unlink(missing_ok=True)
        raise
    write_json(out / "history.json", {k: [float(v) for v in vals]
                                      for k, vals in history.items()})
    write_json(out / "train_meta.json", meta.to_json())
    print(f"wrote {keras_path}", file=sys.stderr)
    return keras_path


def main(argv=None) -> int:
    train(TrainConfig.from_args(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.train", main))
