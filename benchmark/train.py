"""Train a registered model on one split: ``python -m benchmark.train``.

Writes ``<model>.keras``, ``history.json`` and ``train_meta.json`` into the
artifact directory (default ``models/<model>/<split>/``). Training is
deterministic: seeded weights, seeded shuffling, TensorFlow op determinism.
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
from benchmark.errors import UsageError
from benchmark.models.registry import get_model, list_models
from benchmark.results import environment, write_json


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
    if cfg.download:
        from benchmark.datasets.download import download_dataset
        download_dataset(cfg.dataset, cfg.data_dir, url=cfg.download_url,
                         log=lambda msg: print(msg, file=sys.stderr))
    tf = require_tensorflow("training")
    ds = load_dataset(cfg.dataset, image_size=entry.input_size, seed=cfg.data_seed,
                      options=cfg.dataset_options, cache_dir=cfg.cache_dir,
                      data_dir=cfg.data_dir, on_bad_image=cfg.on_bad_image,
                      num_classes=cfg.num_classes)
    if ds.num_classes != entry.num_classes:
        raise UsageError(f"model {entry.name} has {entry.num_classes} outputs but {cfg.dataset} "
                         f"has {ds.num_classes} classes (for gtsrb use --model signnet-gtsrb)")
    train_idx, eval_idx = ds.split(cfg.split, seed=cfg.data_seed)
    if cfg.limit_train:
        rng = np.random.default_rng(cfg.seed)
        train_idx = np.sort(rng.choice(train_idx, min(cfg.limit_train, train_idx.size),
                                       replace=False))
    model, history, seconds = fit(tf, entry, ds, train_idx, hp, cfg)
    meta = TrainMeta(
        model=entry.name, dataset=cfg.dataset, split=cfg.split,
        dataset_meta={k: ds.meta[k] for k in ("spec", "renderer_version", "cache_key",
                                              "source", "loader_version") if k in ds.meta},
        dataset_options=dict(cfg.dataset_options),
        data_dir=str(cfg.data_dir) if cfg.data_dir else None,
        num_classes=ds.num_classes, class_names=list(ds.class_names),
        input_size=entry.input_size, preprocessing=entry.preprocess.describe(),
        n_train=int(train_idx.size), n_eval=int(eval_idx.size), seed=cfg.seed,
        data_seed=cfg.data_seed,
        hyperparameters=dict(hp, schedule="cosine decay to 0", optimizer="adam"),
        train_seconds=round(seconds, 1), environment=environment())
    return save(entry, cfg, model, history, meta)


def fit(tf, entry, ds, train_idx: np.ndarray, hp: dict, cfg: TrainConfig):
    """Build and fit the model; ``(model, history dict, seconds)``."""
    import keras

    x = entry.preprocess(ds.images[train_idx])
    y = ds.labels[train_idx]
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    model = entry.build(num_classes=ds.num_classes)
    fit_model = model
    if hp.get("augment"):
        # Photometric and small geometric jitter, in training only: the saved model
        # is the plain network.
        fit_model = keras.Sequential([
            keras.Input(model.input_shape[1:]),
            keras.layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=cfg.seed),
            keras.layers.RandomContrast(0.2, seed=cfg.seed + 1),
            keras.layers.RandomTranslation(0.06, 0.06, fill_mode="nearest", seed=cfg.seed + 2),
            model,
        ])
    steps = hp["epochs"] * -(-train_idx.size // hp["batch_size"])
    # Cosine decay to 0 settles the weights; without it held-out accuracy swings ~1 %
    # between late epochs.
    lr = keras.optimizers.schedules.CosineDecay(hp["learning_rate"], decay_steps=steps)
    fit_model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"training {entry.name} on {cfg.dataset}/{cfg.split}: {train_idx.size} images, "
          f"{hp['epochs']} epochs", file=sys.stderr)
    t0 = time.perf_counter()
    hist = fit_model.fit(x, y, epochs=hp["epochs"], batch_size=hp["batch_size"], shuffle=True,
                         verbose=2)
    return model, hist.history, time.perf_counter() - t0


def save(entry, cfg: TrainConfig, model, history: dict, meta: TrainMeta) -> Path:
    """Write ``<model>.keras``, ``history.json`` and ``train_meta.json``; the ``.keras`` path."""
    out = entry.artifact_dir(cfg.split, cfg.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras_path = out / f"{entry.name}.keras"
    tmp = out / f".{entry.name}.tmp.keras"
    # Save an uncompiled copy: the optimizer state would triple the file for nothing.
    clean = entry.build(num_classes=meta.num_classes)
    clean.set_weights(model.get_weights())
    clean.save(tmp)
    tmp.replace(keras_path)
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
