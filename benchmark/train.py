"""Train a registered model on one split: ``python -m benchmark.train``.

Writes ``<model>.keras``, ``history.json`` and ``train_meta.json`` into the
artifact directory (default ``models/<model>/<split>/``). Training is
deterministic: seeded weights, seeded shuffling, TensorFlow op determinism.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmark.cli import main_wrapper, require_tensorflow
from benchmark.datasets.registry import DATASETS, load_dataset
from benchmark.errors import UsageError
from benchmark.models.registry import get_model, list_models
from benchmark.results import environment, write_json


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.train",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", default="signnet", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--dataset", default="carolo-synth", choices=DATASETS)
    p.add_argument("--split", required=True, choices=("full", "verification"))
    p.add_argument("--epochs", type=int, default=None, help="default: the model's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--no-augment", action="store_true",
                   help="train without brightness/contrast/translation jitter")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--data-seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--limit-train", type=int, default=None,
                   help="train on a seeded subset of N images (for quick tests)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="a real dataset's files: the gtsrb archives' folder, an imagefolder "
                        "root or a csv manifest (see datasets/userdata.md)")
    p.add_argument("--download", action="store_true",
                   help="gtsrb: first fetch the archives into --data-dir (SHA-256 checked)")
    p.add_argument("--download-url", metavar="URL", default=None,
                   help="base URL for --download (default $EDGETPU_BENCH_GTSRB_URL, else the "
                        "official GTSRB archive)")
    p.add_argument("--num-classes", type=int, default=None, metavar="N",
                   help="imagefolder/csv: the number of classes (labels 0..N-1)")
    p.add_argument("--class-names", type=Path, default=None, metavar="FILE",
                   help="csv: class names, one per line (integer labels index into it)")
    p.add_argument("--roi-crop", action="store_true", help="gtsrb: crop each image to its ROI")
    p.add_argument("--on-bad-image", choices=("fail", "skip"), default="fail")
    p.add_argument("--synth-sessions", type=int, default=None,
                   help="carolo-synth: number of recording sessions")
    p.add_argument("--synth-per-class", type=int, default=None,
                   help="carolo-synth: images per class per session")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="models root; artifacts go to <model-dir>/<model>/<split>/ "
                        "(default models/)")
    return p.parse_args(argv)


def dataset_options(args) -> dict:
    opts = {"roi_crop": True} if args.roi_crop else {}
    if args.synth_sessions is not None:
        opts["n_sessions"] = args.synth_sessions
    if args.synth_per_class is not None:
        opts["per_class_per_session"] = args.synth_per_class
    if args.class_names is not None:
        opts["class_names"] = str(args.class_names.resolve())
    return opts


def train(args) -> Path:
    entry = get_model(args.model)
    if entry.load_weights is not None:
        raise UsageError(f"{entry.name} is not trained here: it loads pretrained weights "
                         "(benchmark.run/convert --weights FILE)")
    hp = dict(entry.train_defaults)
    if args.no_augment:
        hp["augment"] = False
    for k in ("epochs", "batch_size", "learning_rate"):
        if getattr(args, k) is not None:
            hp[k] = getattr(args, k)
    if hp["epochs"] < 1 or hp["batch_size"] < 1:
        raise UsageError("--epochs and --batch-size must be >= 1")
    if args.download:
        from benchmark.datasets.download import download_dataset
        download_dataset(args.dataset, args.data_dir, url=args.download_url,
                         log=lambda msg: print(msg, file=sys.stderr))
    tf = require_tensorflow("training")
    import keras

    ds = load_dataset(args.dataset, image_size=entry.input_size, seed=args.data_seed,
                      options=dataset_options(args), data_dir=args.data_dir,
                      on_bad_image=args.on_bad_image, num_classes=args.num_classes)
    if ds.num_classes != entry.num_classes:
        raise UsageError(f"model {entry.name} has {entry.num_classes} outputs but {args.dataset} "
                         f"has {ds.num_classes} classes (for gtsrb use --model signnet-gtsrb)")
    train_idx, eval_idx = ds.split(args.split, seed=args.data_seed)
    if args.limit_train:
        rng = np.random.default_rng(args.seed)
        train_idx = np.sort(rng.choice(train_idx, min(args.limit_train, train_idx.size),
                                       replace=False))
    x = entry.preprocess(ds.images[train_idx])
    y = ds.labels[train_idx]

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    model = entry.build(num_classes=ds.num_classes)
    fit_model = model
    if hp.get("augment"):
        # Photometric and small geometric jitter, in training only: the saved model
        # is the plain network.
        fit_model = keras.Sequential([
            keras.Input(model.input_shape[1:]),
            keras.layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=args.seed),
            keras.layers.RandomContrast(0.2, seed=args.seed + 1),
            keras.layers.RandomTranslation(0.06, 0.06, fill_mode="nearest", seed=args.seed + 2),
            model,
        ])
    steps = hp["epochs"] * -(-train_idx.size // hp["batch_size"])
    # Cosine decay to 0 settles the weights; without it held-out accuracy swings ~1 %
    # between late epochs.
    lr = keras.optimizers.schedules.CosineDecay(hp["learning_rate"], decay_steps=steps)
    fit_model.compile(optimizer=keras.optimizers.Adam(lr),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"training {entry.name} on {args.dataset}/{args.split}: {train_idx.size} images, "
          f"{hp['epochs']} epochs", file=sys.stderr)
    t0 = time.perf_counter()
    hist = fit_model.fit(x, y, epochs=hp["epochs"], batch_size=hp["batch_size"], shuffle=True,
                         verbose=2)
    seconds = time.perf_counter() - t0

    out = entry.artifact_dir(args.split, args.model_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras_path = out / f"{entry.name}.keras"
    tmp = out / f".{entry.name}.tmp.keras"
    # Save an uncompiled copy: the optimizer state would triple the file for nothing.
    clean = entry.build(num_classes=ds.num_classes)
    clean.set_weights(model.get_weights())
    clean.save(tmp)
    tmp.replace(keras_path)
    write_json(out / "history.json", {k: [float(v) for v in vals]
                                      for k, vals in hist.history.items()})
    write_json(out / "train_meta.json", {
        "model": entry.name, "dataset": args.dataset, "split": args.split,
        "dataset_meta": {k: ds.meta[k] for k in ("spec", "renderer_version", "cache_key",
                                                 "source", "loader_version")
                         if k in ds.meta},
        "dataset_options": dataset_options(args),
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "num_classes": ds.num_classes, "class_names": list(ds.class_names),
        "input_size": entry.input_size, "preprocessing": entry.preprocess.describe(),
        "n_train": int(train_idx.size), "n_eval": int(eval_idx.size),
        "seed": args.seed, "data_seed": args.data_seed,
        "hyperparameters": dict(hp, schedule="cosine decay to 0", optimizer="adam"),
        "train_seconds": round(seconds, 1), "environment": environment()})
    print(f"wrote {keras_path}", file=sys.stderr)
    return keras_path


def main(argv=None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.train", main))
