#!/usr/bin/env python3
"""Evaluate an int8-only ImageNet classifier ``.tflite`` (no float twin) on the imagenet dataset.

    python tools/eval_int8_imagenet.py \
        --model ../shared/edgetpu/pairs/mobilenet_v1_0.25_128_quant.tflite \
        --data-dir ../shared/data/imagenet-sample --background 0 --out runs/coral-mnv1

For pre-quantized models such as Coral's and TensorFlow's hosted ``*_quant.tflite``
(1001 outputs, output 0 a "background" class). ``benchmark.run --model
PATH.tflite --model-labels FILE`` evaluates int8-only models too, but matches
classes by name after case folding, and the ``imagenet`` dataset's ``Cardigan``
(n02113186) and ``cardigan`` (n02963159) then collide; this tool maps classes by
index instead (results/imagenet-sample.md). It uses the
harness's parts unchanged: the ``imagenet`` dataset (resize to
``round(side * 256 / 224)``, centre crop at the model's input side; the split's
evaluated images, ``val/`` for ``verification``), the CPU backend
(:func:`benchmark.backends.make_backend`), :func:`benchmark.evaluate.evaluate`
and :func:`benchmark.evaluate.summarize` (accuracy with its Wilson interval,
top-5, calibration with the NLL floored at half an output step, entropy,
histograms), and writes ``results.json`` and a ``metrics.csv`` in the rows of a
run's (:func:`benchmark.rundir.variant_rows`).

Classes by index, declared, not guessed: data class ``i`` (position of its
WordNet id in the sorted ILSVRC-2012 list) is model output ``i + 1`` with
``--background 0``, output ``i`` with ``--background none``; the model must
have exactly 1001 / 1000 outputs. The background output stays in the argmax, so
predicting it is an error. Inputs: the pixel values are the input tensor's
quantized values (uint8 input: the RGB bytes as they are, as Coral's models
expect), i.e. the real input is ``(x - zero_point) * scale``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmark.errors import DataError, UsageError  # noqa: E402

VARIANT = "int8"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="int8-only classifier .tflite")
    ap.add_argument("--data-dir", required=True, help="imagenet dataset folder (train/ + val/)")
    ap.add_argument("--background", choices=("0", "none"), required=True,
                    help="0: output 0 is a background class (1001 outputs); none: 1000 outputs")
    ap.add_argument("--split", choices=("verification", "full"), default="verification")
    ap.add_argument("--out", required=True, help="new folder for results.json and metrics.csv")
    ap.add_argument("--cache-dir", help="decoded-image cache (default datasets/cache)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-threads", type=int)
    return ap.parse_args(argv)


def open_model(path: Path, offset: int, num_threads):
    """The CPU backend of an int8-only classifier with ``1000 + offset`` outputs.

    The tensor types are checked from the graph (:func:`benchmark.tflite_graph.read_graph`)
    before an interpreter is opened.
    """
    from benchmark.backends import make_backend
    from benchmark.tflite_graph import read_graph

    if not path.is_file():
        raise DataError(f"model file not found: {path}")
    g = read_graph(path)
    ins, outs = g.input_tensors(), g.output_tensors()
    if len(ins) != 1 or len(outs) != 1:
        raise DataError(f"{path.name} has {len(ins)} inputs and {len(outs)} outputs; a "
                        "classifier has one of each")
    inp, out = ins[0], outs[0]
    if inp.dtype not in ("UINT8", "INT8") or not np.any(inp.scale):
        raise DataError(f"{path.name}: input is {inp.dtype.lower()}; this tool evaluates "
                        "int8-only models (8-bit quantized input)")
    if len(inp.shape) != 4 or inp.shape[1] != inp.shape[2] or inp.shape[3] != 3:
        raise DataError(f"{path.name}: input shape {inp.shape} is not (1, side, side, 3)")
    if out.shape[-1] != 1000 + offset:
        raise DataError(f"{path.name} has {out.shape[-1]} outputs; --background "
                        f"{'0' if offset else 'none'} needs {1000 + offset}")
    return make_backend("cpu", path, num_threads=num_threads)


def pixel_transform(spec):
    """uint8 pixels -> the real input whose quantization is the pixel (int8: pixel - 128)."""
    from benchmark.preprocess import PixelTransform

    shift = 128 if spec.dtype == np.int8 else 0
    mean = float(spec.zero_point + shift)
    return PixelTransform(scale=1.0, mean=(mean,) * 3, std=(1.0 / spec.scale,) * 3)


def evaluate_model(args) -> tuple[dict, list]:
    from benchmark.datasets.imagenet import load
    from benchmark.evaluate import evaluate, summarize

    path, offset = Path(args.model), 1 if args.background == "0" else 0
    backend = open_model(path, offset, args.num_threads)
    side = backend.input_spec.shape[1]
    ds = load(args.data_dir, image_size=side, seed=args.seed,
              cache_dir=Path(args.cache_dir) if args.cache_dir else None)
    _, eval_idx = ds.split(args.split, seed=args.seed)
    transform = pixel_transform(backend.input_spec)
    pred = evaluate(backend, ds.images, ds.labels + offset, eval_idx, preprocess=transform)
    k = backend.output_spec.shape[-1]
    summary, _ = summarize(pred.probs, pred.labels, num_classes=k,
                           output_step=backend.output_spec.scale)
    names = (["background"] if offset else []) + list(ds.class_names)
    summary.update(model_file=str(path), model_bytes=path.stat().st_size, device="cpu",
                   runtime=backend.info(), images_per_second=round(pred.images_per_second, 2),
                   predicted_background=int(np.sum(pred.probs.argmax(1) == 0)) if offset else 0)
    backend.close()
    record = {"split": args.split, "dataset": "imagenet", "data_dir": str(args.data_dir),
              "n_eval": int(eval_idx.size), "image_size": side, "class_offset": offset,
              "preprocess": transform.describe(), "output_classes": len(names),
              "variants": {VARIANT: summary}}
    return record, names


def write_outputs(out: Path, record: dict) -> None:
    from benchmark.results import environment, write_csv, write_json
    from benchmark.rundir import variant_rows

    m = record["variants"][VARIANT]
    rows = variant_rows(record["split"], VARIANT, m)
    rows.append([record["split"], VARIANT, "top5_accuracy", m["top5_accuracy"]])
    rows.append([record["split"], VARIANT, "predicted_background", m["predicted_background"]])
    out.mkdir(parents=True)
    write_json(out / "results.json", dict(record, environment=environment()))
    write_csv(out / "metrics.csv", ["split", "variant", "metric", "value"], rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        if out.exists():
            raise UsageError(f"--out {out} exists: choose a new folder")
        record, _ = evaluate_model(args)
        write_outputs(out, record)
    except (UsageError, DataError) as e:
        print(f"eval_int8_imagenet.py: error: {e}", file=sys.stderr)
        return e.exit_code
    m = record["variants"][VARIANT]
    ci = m["accuracy_interval"]
    print(f"{Path(args.model).name}: {record['split']} {m['n']} images, top-1 "
          f"{m['accuracy'] * 100:.2f} % [{ci['low'] * 100:.2f}, {ci['high'] * 100:.2f}] "
          f"(Wilson 95 %), top-5 {m['top5_accuracy'] * 100:.2f} %, "
          f"background predicted {m['predicted_background']}x; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
