"""Evaluate float and int8 variants of a model: ``python -m benchmark.run``.

Loads the shipped (or given) artifacts, runs streaming batched inference on
the chosen device, computes the blog's metrics per variant and writes a run
directory: results.json, metrics.csv, confusion_<variant>.csv and
predictions_<variant>.npz (one set per split; ``--split all`` puts each split
in a sub-directory and indexes them in the top-level results.json).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmark.backends import make_backend
from benchmark.cli import main_wrapper
from benchmark.config import DEVICES, OBSERVERS, SPLIT_CHOICES, RunConfig, make_config
from benchmark.datasets.registry import load_dataset, trained_dataset_options
from benchmark.errors import BackendUnavailable, DataError, UsageError
from benchmark.evaluate import Predictions, evaluate
from benchmark.latency import measure_latency
from benchmark.metrics import agreement, classification_summary, confusion_matrix
from benchmark.metrics.calibration import calibration_summary
from benchmark.metrics.swaps import swap_summary
from benchmark.models.registry import get_model
from benchmark.paths import PROJECT_ROOT, models_root
from benchmark.results import (atomic_write_bytes, environment, tidy_rows, write_confusion,
                               write_csv, write_json, write_predictions)

METRICS_HEADER = ["split", "variant", "metric", "value"]
SWAP_ROWS = ("swapped_pct", "delta_error_pct", "ratio", "right_to_wrong", "wrong_to_right",
             "wrong_to_wrong", "mcnemar_p")


def parse_args(argv=None) -> tuple[dict, str | None, bool]:
    p = argparse.ArgumentParser(prog="python -m benchmark.run",
                                description=__doc__.split("\n")[0])
    p.add_argument("--config", help="TOML or JSON file of settings (CLI flags override it)")
    p.add_argument("--model", help="registered model (default signnet)")
    p.add_argument("--dataset", help="dataset (default: the one the model was trained on)")
    p.add_argument("--split", choices=SPLIT_CHOICES, help="default verification")
    p.add_argument("--device", choices=DEVICES,
                   help="where the int8 model runs: cpu, edgetpu (int8 also on the CPU, for "
                        "attribution) or auto (the Edge TPU when its runtime is installed)")
    p.add_argument("--edgetpu-device", help="Edge TPU to use: usb, pci, usb:0, pci:1 ... "
                   "(default: the first found)")
    p.add_argument("--weight-bits", metavar="B,B,...",
                   help="also evaluate the int8 model with weights re-quantized to these bit "
                        "widths at 8-bit activations, e.g. 8,7,6,5,4 (variants w8..w4)")
    p.add_argument("--weights", help="pretrained weights to convert and evaluate: a PyTorch "
                   "state dict (.npz, or .pth with torch installed) for resnet20/32/44/56, a "
                   "Keras .h5 / .weights.h5 for resnet50/mobilenetv2, or a .keras file")
    p.add_argument("--act-observer", choices=OBSERVERS,
                   help="activation ranges of the int8 model: minmax (TFLite default, the "
                        "shipped models), percentile or mse (the paper's); anything but minmax "
                        "re-converts (needs TensorFlow)")
    p.add_argument("--latency", type=int, metavar="N",
                   help="also time N invokes per variant (default 0: off)")
    p.add_argument("--latency-warmup", type=int, metavar="N",
                   help="untimed invokes before the latency runs (default 10)")
    p.add_argument("--variants", help="comma list of float,int8 (default both)")
    p.add_argument("--data-dir", help="a real dataset's files: the gtsrb archives' folder, an "
                   "imagefolder root or a csv manifest (see datasets/userdata.md)")
    p.add_argument("--download", action="store_const", const=True,
                   help="gtsrb: first fetch the archives into --data-dir (SHA-256 checked)")
    p.add_argument("--download-url", metavar="URL", help="base URL for --download (default "
                   "$EDGETPU_BENCH_GTSRB_URL, else the official GTSRB archive)")
    p.add_argument("--num-classes", type=int, metavar="N",
                   help="check the dataset has N classes (imagefolder/csv: labels 0..N-1)")
    p.add_argument("--on-bad-image", choices=("fail", "skip"),
                   help="unreadable images stop the run (default) or are skipped and listed")
    p.add_argument("--seed", type=int, help="dataset seed (default 0)")
    p.add_argument("--batch-size", type=int, help="images preprocessed per batch (default 64)")
    p.add_argument("--num-threads", type=int, help="CPU interpreter threads (default: all cores)")
    p.add_argument("--limit", type=int, help="evaluate N evenly spaced images of the split")
    p.add_argument("--bins", type=int, help="histogram bins on [0, 1] (default 20)")
    p.add_argument("--model-dir", help="models root holding <model>/<split>/ (default models/)")
    p.add_argument("--cache-dir", help="dataset cache (default datasets/cache)")
    p.add_argument("--out", help="run directory (default runs/<UTC timestamp>)")
    p.add_argument("--no-report", dest="report", action="store_const", const=False,
                   help="do not write report.html / report.md at the end")
    p.add_argument("--quiet", action="store_true", help="print only the tables")
    a = vars(p.parse_args(argv))
    config_file, quiet = a.pop("config"), a.pop("quiet")
    return a, config_file, quiet


def subset(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """``limit`` evenly spaced entries of ``indices`` (all when limit is None or larger)."""
    if limit is None or limit >= indices.size:
        return indices
    pos = np.unique(np.linspace(0, indices.size - 1, limit).round().astype(np.int64))
    return indices[pos]


def variant_path(artifacts: Path, model: str, variant: str, device: str) -> Path:
    if variant == "int8" and device == "edgetpu":
        return artifacts / f"{model}_int8_edgetpu.tflite"
    return artifacts / f"{model}_{variant}.tflite"


def make_out_dir(cfg: RunConfig) -> Path:
    if cfg.out:
        out = Path(cfg.out)
        if (out / "results.json").exists():
            raise UsageError(f"{out} already holds a run (results.json); choose another --out")
        return out
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = PROJECT_ROOT / "runs" / stamp
    n = 1
    while out.exists():
        n += 1
        out = PROJECT_ROOT / "runs" / f"{stamp}-{n}"
    return out


def run_split(cfg: RunConfig, split: str, out: Path, log, device_resolved: str) -> dict:
    """Evaluate every variant on one split; write its files into ``out``."""
    entry = get_model(cfg.model)
    artifacts, train_meta, ds = prepare_artifacts(cfg, entry, split, log)
    dataset = ds.name
    if ds.num_classes != train_meta["num_classes"]:
        raise DataError(f"{dataset} has {ds.num_classes} classes but the model was trained "
                        f"for {train_meta['num_classes']}")
    train_idx, eval_idx = ds.split(split, seed=cfg.seed)
    eval_idx = subset(eval_idx, cfg.limit)

    variants, preds, rows = {}, {}, []
    if cfg.weight_bits:
        from benchmark.quant.bitsweep import requantize_weights
        src = artifacts / f"{entry.name}_int8.tflite"
        if not src.is_file():
            raise DataError(f"model file not found: {src} (the weight-bit sweep starts from it)")
        for b in cfg.weight_bits:
            atomic_write_bytes(out / "models" / f"{entry.name}_w{b}.tflite",
                               requantize_weights(src, b))
    for variant, device, path in variant_plan(cfg, artifacts, entry.name, device_resolved,
                                              out / "models"):
        if not path.is_file():
            if device == "edgetpu" and cfg.device == "auto":
                if log:
                    log(f"[{split}] auto: no compiled {path.name} (run tools/compile_all.sh); "
                        "skipping the Edge TPU")
                continue
            raise DataError(f"model file not found: {path}")
        try:
            backend = make_backend(device, path, num_threads=cfg.num_threads,
                                   edgetpu_device=cfg.edgetpu_device)
        except BackendUnavailable as e:
            if cfg.device != "auto":
                raise
            if log:
                log(f"[{split}] auto: skipping the Edge TPU ({e})")
            continue
        with backend:
            t0 = time.perf_counter()
            p = evaluate(backend, ds.images, ds.labels, eval_idx, batch_size=cfg.batch_size,
                         preprocess=entry.preprocess, logits=entry.outputs == "logits")
            wall = time.perf_counter() - t0
            info = backend.info()
            latency = (measure_latency(backend, runs=cfg.latency, warmup=cfg.latency_warmup,
                                       seed=cfg.seed) if cfg.latency else None)
        summary = classification_summary(p.probs, p.labels, bins=cfg.bins)
        summary["calibration"] = calibration_summary(p.probs, p.labels, n_bins=15)
        cm = confusion_matrix(p.labels, p.probs.argmax(axis=1), num_classes=ds.num_classes)
        write_confusion(out / f"confusion_{variant}.csv", cm, ds.class_names)
        write_predictions(out / f"predictions_{variant}.npz", probs=p.probs, labels=p.labels,
                          index=p.index)
        variants[variant] = dict(summary, model_file=str(path), model_bytes=path.stat().st_size,
                                 device=device, runtime=info,
                                 inference_seconds=round(p.seconds, 4),
                                 wall_seconds=round(wall, 4),
                                 images_per_second=round(p.images_per_second, 2))
        if latency is not None:
            variants[variant]["latency"] = latency
            rows += [[split, variant, f"latency_{k}", latency[k]]
                     for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "first_invoke_ms")]
        preds[variant] = p
        rows += tidy_rows(split, variant, summary)
        if log:
            lat = f", {latency['mean_ms']:.3f} ms/invoke" if latency else ""
            log(f"[{split}] {variant:12s} on {device}: {p.labels.size} images, "
                f"accuracy {summary['accuracy']:.4f}, {p.images_per_second:.0f} img/s{lat}")
    result = {"split": split, "dataset": dataset, "dataset_meta": ds.meta,
              "n_train": int(train_idx.size), "n_eval": int(eval_idx.size),
              "class_names": list(ds.class_names), "model_artifacts": str(artifacts),
              "variants": variants}
    rep_path = artifacts / "representative_indices.json"
    if rep_path.is_file():
        # Which images calibrated the int8 activation ranges (dataset rows).
        rep = json.loads(rep_path.read_text())
        result["calibration_images"] = {"size": rep["size"], "rows": rep["indices"],
                                        "seed": rep["seed"]}
    if train_meta.get("source") == "pretrained":
        result["model_source"] = {k: train_meta[k] for k in ("weights", "weights_sha256")}
    if cfg.act_observer != "minmax" or train_meta.get("source") == "pretrained":
        convert_meta = json.loads((artifacts / "convert_meta.json").read_text())
        result["act_observer"] = convert_meta.get("act_observer", "minmax")
    quantized = [v for v in preds if v != "float"]
    if "float" in preds and quantized:
        result["agreement"] = compare(preds["float"], preds[quantized[0]])
        result["swaps"] = {"reference": "float"}
        for v in quantized:
            rows.append([split, v, "agreement_with_float",
                         agreement(preds["float"].probs.argmax(1), preds[v].probs.argmax(1))])
            sw = swap_summary(preds["float"].probs, preds[v].probs, preds[v].labels,
                              bins=10, n_boot=1000, seed=cfg.seed)
            result["swaps"][v] = sw
            rows += [[split, v, k, sw[k]] for k in SWAP_ROWS]
    if "int8" in preds and "int8-edgetpu" in preds:
        result["attribution"] = attribution(preds)
        rows.append([split, "int8-edgetpu", "identical_top1_with_int8_cpu",
                     result["attribution"]["int8_cpu_vs_edgetpu"]["top1"]])
    result["device_resolved"] = device_resolved
    write_csv(out / "metrics.csv", METRICS_HEADER, rows)
    result["_rows"] = rows
    return result


def _load(cfg: RunConfig, entry, dataset: str, options: dict, data_dir, log):
    if cfg.download:
        from benchmark.datasets.download import download_dataset
        download_dataset(dataset, cfg.data_dir, url=cfg.download_url, progress=log is not None,
                         log=log)
    return load_dataset(dataset, image_size=entry.input_size, seed=cfg.seed, options=options,
                        cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None,
                        verbose=log is not None, data_dir=data_dir,
                        on_bad_image=cfg.on_bad_image, num_classes=cfg.num_classes)


def prepare_artifacts(cfg: RunConfig, entry, split: str, log):
    """``(artifact dir, train_meta, dataset)`` of one split.

    Shipped models are used as they are. Pretrained ``--weights`` (and any
    ``--act-observer`` other than the shipped min-max) are converted once per
    (weights, data, split, observer) into ``<cache>/converted/`` and reused.
    """
    root = Path(cfg.model_dir) if cfg.model_dir else models_root()
    artifacts = entry.artifact_dir(split, root)
    if entry.load_weights is not None and not cfg.weights:
        raise UsageError(f"{entry.name} has no shipped weights: pass --weights FILE "
                         f"({entry.weights_help or 'see README, Pretrained models'})")
    if cfg.weights:
        dataset = cfg.dataset or entry.default_dataset
        ds = _load(cfg, entry, dataset, dict(cfg.dataset_options), cfg.data_dir, log)
        source, train_meta = Path(cfg.weights), None
    else:
        meta_path = artifacts / "train_meta.json"
        if not meta_path.is_file():
            raise DataError(f"no trained {cfg.model} for split {split!r}: {meta_path} is "
                            "missing (train and convert it, see README)")
        train_meta = json.loads(meta_path.read_text())
        dataset = cfg.dataset or train_meta["dataset"]
        options = dict(cfg.dataset_options)
        if not options and dataset == train_meta["dataset"]:
            options = trained_dataset_options(train_meta)
        ds = _load(cfg, entry, dataset, options,
                   cfg.data_dir or (train_meta.get("data_dir")
                                    if dataset == train_meta["dataset"] else None), log)
        if cfg.act_observer == "minmax":
            return artifacts, train_meta, ds
        source = artifacts / f"{entry.name}.keras"
    if not source.is_file():
        raise DataError(f"{'weights' if cfg.weights else 'model'} file not found: {source}")
    return _converted(cfg, entry, split, ds, source, train_meta, log)


def _converted(cfg, entry, split, ds, source: Path, train_meta, log):
    from benchmark.convert import CONVERT_VERSION, convert_keras, convert_pretrained, \
        load_pretrained
    from benchmark.datasets.cache import cache_key
    from benchmark.models.cifar_resnet import file_sha256
    from benchmark.paths import cache_root

    key = cache_key({"model": entry.name, "source": file_sha256(source), "split": split,
                     "dataset": ds.meta.get("cache_key"), "seed": cfg.seed,
                     "act_observer": cfg.act_observer, "convert_version": CONVERT_VERSION})
    base = Path(cfg.cache_dir) if cfg.cache_dir else cache_root()
    out = base / "converted" / f"{entry.name}-{split}-{cfg.act_observer}-{key}"
    if (out / "convert_meta.json").is_file():
        if log:
            log(f"[{split}] using the models converted earlier in {out}")
        return out, json.loads((out / "train_meta.json").read_text()), ds
    if log:
        log(f"[{split}] converting {source.name} ({cfg.act_observer} activation ranges) "
            f"into {out}")
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with contextlib.redirect_stdout(sys.stderr if log else io.StringIO()):
            if train_meta is None:
                convert_pretrained(entry, source, ds, split, tmp, data_dir=cfg.data_dir,
                                   data_seed=cfg.seed, observer=cfg.act_observer)
            else:
                train_idx, _ = ds.split(split, seed=cfg.seed)
                convert_keras(load_pretrained(entry, source), entry, ds, train_idx, tmp,
                              split=split, observer=cfg.act_observer)
                write_json(tmp / "train_meta.json", dict(train_meta, source_model=str(source)))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out, json.loads((out / "train_meta.json").read_text()), ds


def variant_plan(cfg: RunConfig, artifacts: Path, model: str, device: str,
                 generated: Path | None = None) -> list[tuple[str, str, Path]]:
    """(variant name, device, model file) to evaluate, in order.

    The float model is the CPU reference. On the Edge TPU the int8 model runs
    twice, on the CPU interpreter (``int8``) and compiled on the TPU
    (``int8-edgetpu``), so a drop can be attributed to quantization or to the
    device.
    """
    plan = []
    for v in cfg.variants:
        plan.append((v, "cpu", artifacts / f"{model}_{v}.tflite"))
        if v == "int8" and device == "edgetpu":
            plan.append(("int8-edgetpu", "edgetpu", artifacts / f"{model}_int8_edgetpu.tflite"))
    for b in cfg.weight_bits:
        plan.append((f"w{b}", "cpu", (generated or artifacts) / f"{model}_w{b}.tflite"))
    return plan


def resolve_device(cfg: RunConfig, log) -> str:
    """``auto`` -> ``edgetpu`` when the delegate library is installed, else ``cpu``."""
    from benchmark.backends.edgetpu import check_edgetpu_available, find_delegate_library
    if cfg.device == "edgetpu":
        check_edgetpu_available()
        return "edgetpu"
    if cfg.device == "auto":
        lib = find_delegate_library()
        if log:
            log(f"auto: {'Edge TPU runtime ' + lib + ' found' if lib else 'no Edge TPU runtime'}"
                f", using {'the Edge TPU (and the CPU)' if lib else 'the CPU'}")
        return "edgetpu" if lib else "cpu"
    return "cpu"


def attribution(preds: dict) -> dict:
    """float -> int8 on the CPU -> int8 on the Edge TPU: where does accuracy go?"""
    acc = {v: float(np.mean(p.probs.argmax(1) == p.labels)) for v, p in preds.items()}
    return {"accuracy": acc,
            "quantization_delta": acc["int8"] - acc["float"] if "float" in acc else None,
            "device_delta": acc["int8-edgetpu"] - acc["int8"],
            "int8_cpu_vs_edgetpu": compare(preds["int8"], preds["int8-edgetpu"])}


def compare(a: Predictions, b: Predictions) -> dict:
    """Float vs int8 on the same images: top-1 agreement and output differences."""
    diff = np.abs(a.probs.astype(np.float64) - b.probs)
    return {"top1": agreement(a.probs.argmax(1), b.probs.argmax(1)),
            "max_abs_prob_diff": float(diff.max()) if diff.size else float("nan"),
            "mean_abs_prob_diff": float(diff.mean()) if diff.size else float("nan")}


def run(cfg: RunConfig, *, quiet: bool = False, tables: bool = True) -> tuple[Path, dict]:
    log = None if quiet else (lambda msg: print(msg, file=sys.stderr))
    device = resolve_device(cfg, log)
    out = make_out_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    header = {"config": cfg.to_dict(), "environment": environment(),
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    splits = cfg.splits()
    results = {}
    for split in splits:
        split_out = out / split if len(splits) > 1 else out
        r = run_split(cfg, split, split_out, log, device)
        rows = r.pop("_rows")
        write_json(split_out / "results.json", dict(header, **r))
        results[split] = (r, rows)
    if len(splits) > 1:
        write_csv(out / "metrics.csv", METRICS_HEADER,
                  [row for _, rows in results.values() for row in rows])
        write_json(out / "results.json", dict(header, splits={
            s: f"{s}/results.json" for s in splits}))
    from benchmark.report import print_tables, write_report
    if tables:
        print_tables({s: r for s, (r, _) in results.items()})
    if cfg.report:
        html_path, _ = write_report([out])
        if log:
            log(f"report: {html_path}")
    if log:
        log(f"results in {out}")
    return out, {s: r for s, (r, _) in results.items()}


def main(argv=None) -> int:
    cli, config_file, quiet = parse_args(argv)
    run(make_config(cli, config_file), quiet=quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.run", main))
