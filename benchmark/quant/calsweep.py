"""Calibration sweep: ``python -m benchmark.quant.calsweep`` (needs TensorFlow).

Like the weight-bit sweep, but over the calibration (representative) set:
every size in ``--calibration-sizes`` x every seed in ``--calibration-seeds``
(and optionally ``--calibration-from SPEC``, see
:mod:`benchmark.quant.calibration`) is one int8 conversion of the *same*
float Keras model of a split, evaluated on the split's eval images on the CPU
interpreter and compared with the float model: accuracy, change in points,
swapped predictions, right->wrong / wrong->right and the exact McNemar p.
Per size, the median and the worst change over the seeds are printed; the
rows go to ``calibration_sweep.csv`` and the plot to
``calibration_sweep.png`` with ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.cli import main_wrapper, prog_name
from benchmark.errors import DataError, UsageError

COLUMNS = ["split", "size", "seed", "calibration_from", "accuracy", "float_accuracy",
           "delta_points", "swapped", "right_to_wrong", "wrong_to_right", "mcnemar_p",
           "input_scale", "seconds"]


def parse_ints(text: str, flag: str) -> tuple[int, ...]:
    """``"1,4,16"`` -> (1, 4, 16); UsageError naming ``flag`` otherwise."""
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{flag} must be a comma list of integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise UsageError(f"{flag} must list integers >= 1, got {text!r}")
    return vals


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog_name("python -m benchmark.quant.calsweep"),
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", default="signnet")
    p.add_argument("--split", default="verification", choices=("full", "verification", "all"))
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--calibration-sizes", default="1,4,16,64,300")
    p.add_argument("--calibration-seeds", type=int, default=5,
                   help="draws per size (seeds 0..N-1; median and worst reported)")
    p.add_argument("--calibration-from", default=None, metavar="SPEC")
    p.add_argument("--limit", type=int, default=0, help="eval images, evenly spaced (0 = all)")
    p.add_argument("--out", type=Path, default=None, help="write the CSV and the plot here")
    return p.parse_args(argv)


def _load(entry, split: str, model_dir):
    """(Keras model, dataset, train indices, eval indices) of a trained split."""
    import keras

    from benchmark.artifacts import read_train_meta
    from benchmark.datasets.registry import load_dataset, trained_dataset_options

    adir = entry.artifact_dir(split, model_dir)
    keras_path, meta_path = adir / f"{entry.name}.keras", adir / "train_meta.json"
    if not keras_path.is_file() or not meta_path.is_file():
        raise DataError(f"no trained model in {adir} (expected {keras_path.name} and "
                        f"{meta_path.name})")
    meta = read_train_meta(meta_path)
    ds = load_dataset(meta.dataset, image_size=entry.input_size, seed=meta.data_seed,
                      options=trained_dataset_options(meta), data_dir=meta.data_dir,
                      verbose=False)
    train_idx, eval_idx = ds.split(meta.split, seed=meta.data_seed)
    return keras.models.load_model(keras_path, compile=False), ds, train_idx, eval_idx


def _load_eval(entry, split: str, model_dir, limit: int = 0):
    """(uint8 eval images, labels) of a trained split (``limit`` evenly spaced; 0 = all)."""
    from benchmark.artifacts import read_train_meta
    from benchmark.datasets.registry import load_dataset, trained_dataset_options

    meta_path = entry.artifact_dir(split, model_dir) / "train_meta.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path} not found")
    meta = read_train_meta(meta_path)
    ds = load_dataset(meta.dataset, image_size=entry.input_size, seed=meta.data_seed,
                      options=trained_dataset_options(meta), data_dir=meta.data_dir,
                      verbose=False)
    _, eval_idx = ds.split(meta.split, seed=meta.data_seed)
    if limit:
        eval_idx = eval_idx[_even(eval_idx.size, limit)]
    return ds.images[eval_idx], ds.labels[eval_idx]


def _even(n: int, limit: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(limit, n)).round().astype(np.int64))


def _predict(path: Path, images, transform) -> np.ndarray:
    from benchmark.backends.litert_cpu import LiteRTCPUBackend

    return LiteRTCPUBackend(path, num_threads=1).predict_images(images, transform)


def _row(split, size, seed, spec, probs, ref, labels, scale, seconds) -> dict:
    from benchmark.metrics.swaps import mcnemar_exact_p, swap_counts

    c = swap_counts(ref, probs, labels)
    acc, facc = 1 - c["q_errors"] / c["n"], 1 - c["ref_errors"] / c["n"]
    return {"split": split, "size": size, "seed": seed, "calibration_from": spec or "",
            "accuracy": acc, "float_accuracy": facc, "delta_points": 100 * (acc - facc),
            "swapped": c["swapped"], "right_to_wrong": c["right_to_wrong"],
            "wrong_to_right": c["wrong_to_right"],
            "mcnemar_p": mcnemar_exact_p(c["right_to_wrong"], c["wrong_to_right"]),
            "input_scale": scale, "seconds": seconds}


def sweep_split(entry, split: str, sizes, seeds: int, spec: str | None, *, model_dir=None,
                limit: int = 0, log=print) -> list[dict]:
    """One row per (size, seed) of one split (see the module docstring)."""
    from benchmark.cli import require_tensorflow
    from benchmark.convert import SavedModelExport, export_model, to_tflite
    from benchmark.quant.calibration import parse_spec, select
    from benchmark.tflite_graph import read_graph

    tf = require_tensorflow("the calibration sweep")
    trained, ds, train_idx, eval_idx = _load(entry, split, model_dir)
    if limit:
        eval_idx = eval_idx[_even(eval_idx.size, limit)]
    images, labels = ds.images[eval_idx], ds.labels[eval_idx]
    ref = _predict(entry.artifact_dir(split, model_dir) / f"{entry.name}_float.tflite", images,
                   entry.preprocess)
    export, parsed, rows = export_model(trained, entry), parse_spec(spec), []
    with SavedModelExport() as saved, tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for seed in range(seeds):
                t0 = time.perf_counter()
                _, rep, _ = select(ds, train_idx, parsed, size, seed, entry.input_size)
                blob = to_tflite(tf, export, entry.preprocess(rep), "uint8", export=saved)
                path = Path(tmp) / f"c{size}_{seed}.tflite"
                path.write_bytes(blob)
                scale = float(read_graph(blob).input_tensors()[0].scale[0])
                probs = _predict(path, images, entry.preprocess)
                rows.append(_row(split, size, seed, spec, probs, ref, labels, scale,
                                 round(time.perf_counter() - t0, 2)))
                log(f"  {split} size {size} seed {seed}: "
                    f"{rows[-1]['delta_points']:+.2f} points ({rows[-1]['seconds']} s)")
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per (split, size): median and worst change in points over the seeds, median swaps."""
    out = []
    for split in dict.fromkeys(r["split"] for r in rows):
        for size in dict.fromkeys(r["size"] for r in rows if r["split"] == split):
            d = [r for r in rows if r["split"] == split and r["size"] == size]
            deltas = np.array([r["delta_points"] for r in d])
            out.append({"split": split, "size": size, "draws": len(d),
                        "float_accuracy": 100 * d[0]["float_accuracy"],
                        "median_delta": float(np.median(deltas)),
                        "worst_delta": float(deltas.min()),
                        "median_swapped": float(np.median([r["swapped"] for r in d])),
                        "significant": sum(r["mcnemar_p"] < 0.05 for r in d)})
    return out


def format_summary(summ: list[dict]) -> str:
    head = (f"{'split':<13} {'size':>5} {'draws':>5} {'float %':>8} {'median Δ':>9} "
            f"{'worst Δ':>8} {'med swaps':>9} {'p<0.05':>6}")
    lines = [head, "-" * len(head)]
    for s in summ:
        lines.append(f"{s['split']:<13} {s['size']:>5} {s['draws']:>5} "
                     f"{s['float_accuracy']:>8.2f} {s['median_delta']:>+9.2f} "
                     f"{s['worst_delta']:>+8.2f} {s['median_swapped']:>9.0f} "
                     f"{s['significant']:>6}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from benchmark.models.registry import get_model

    args = parse_args(argv)
    sizes = parse_ints(args.calibration_sizes, "--calibration-sizes")
    if args.calibration_seeds < 1:
        raise UsageError("--calibration-seeds must be >= 1")
    entry = get_model(args.model)
    splits = ("full", "verification") if args.split == "all" else (args.split,)
    rows = []
    for split in splits:
        rows += sweep_split(entry, split, sizes, args.calibration_seeds, args.calibration_from,
                            model_dir=args.model_dir, limit=args.limit,
                            log=lambda m: print(m, file=sys.stderr))
    summ = summary(rows)
    print(format_summary(summ))
    if args.out is not None:
        _write(args.out, rows, summ)
    return 0


def _write(out: Path, rows: list[dict], summ: list[dict]) -> None:
    from benchmark import plots
    from benchmark.results import atomic_write_bytes, write_csv

    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "calibration_sweep.csv", COLUMNS, [[r[c] for c in COLUMNS] for r in rows])
    curves = {}
    for s in summ:
        curves.setdefault(s["split"], []).append((s["size"], s["median_delta"],
                                                  s["worst_delta"]))
    atomic_write_bytes(out / "calibration_sweep.png",
                       plots.render(plots.calibration_sweep, {"curves": curves}))
    print(f"wrote {out / 'calibration_sweep.csv'}, {out / 'calibration_sweep.png'}",
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.quant.calsweep", main))
