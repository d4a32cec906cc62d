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
import io
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from benchmark.cli import main_wrapper, require_tensorflow
from benchmark.datasets.registry import load_dataset, trained_dataset_options
from benchmark.errors import DataError, UsageError
from benchmark.models.registry import get_model, list_models
from benchmark.results import atomic_write_bytes, environment, write_json
from benchmark.tflite_graph import GraphInfo, read_graph

#: Ops a full-integer SignNet-style graph may contain.
INT8_ALLOWED_OPS = frozenset({"QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D",
                              "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX",
                              "ADD", "MEAN", "PAD"})
#: Ops that betray a dynamic batch dimension around Flatten.
DYNAMIC_SHAPE_OPS = frozenset({"SHAPE", "STRIDED_SLICE", "PACK"})


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.convert",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", default="signnet", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--split", required=True, choices=("full", "verification"))
    p.add_argument("--model-dir", type=Path, default=None,
                   help="models root holding <model>/<split>/<model>.keras (default models/)")
    p.add_argument("--io-type", choices=("uint8", "int8"), default="uint8",
                   help="integer type of the int8 model's input and output (default uint8)")
    p.add_argument("--representative-size", type=int, default=300,
                   help="training images used to calibrate activation ranges (default 300)")
    p.add_argument("--seed", type=int, default=0, help="seed of the representative draw")
    return p.parse_args(argv)


def check_int8_graph(g: GraphInfo) -> list[str]:
    """Problems that keep a graph from being a batch-1, fully 8-bit model (empty = ok)."""
    problems = []
    names = g.op_names
    dyn = sorted(set(names) & DYNAMIC_SHAPE_OPS)
    if dyn:
        problems.append(f"dynamic-batch ops present: {', '.join(dyn)}")
    other = sorted(set(names) - INT8_ALLOWED_OPS - DYNAMIC_SHAPE_OPS - {"DEQUANTIZE"})
    if other:
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
    export = entry.build(num_classes=trained.output_shape[-1], batch_size=1,
                         **entry.export_kwargs)
    export.set_weights(trained.get_weights())
    return export


def to_tflite(tf, model, representative=None, io_type: str = "uint8") -> bytes:
    """Convert a batch-1 Keras model; with ``representative``, full-integer int8."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
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
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return conv.convert()


def convert(args) -> dict:
    entry = get_model(args.model)
    out = entry.artifact_dir(args.split, args.model_dir)
    keras_path = out / f"{entry.name}.keras"
    meta_path = out / "train_meta.json"
    if not keras_path.is_file() or not meta_path.is_file():
        raise DataError(f"no trained model in {out} (expected {keras_path.name} and "
                        f"{meta_path.name}); run python -m benchmark.train first")
    if args.representative_size < 1:
        raise UsageError("--representative-size must be >= 1")
    meta = json.loads(meta_path.read_text())
    tf = require_tensorflow("conversion")
    import keras

    trained = keras.models.load_model(keras_path, compile=False)
    export = export_model(trained, entry)

    ds = load_dataset(meta["dataset"], image_size=entry.input_size, seed=meta["data_seed"],
                      options=trained_dataset_options(meta), data_dir=meta.get("data_dir"))
    train_idx, _ = ds.split(meta["split"], seed=meta["data_seed"])
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 0xCA11B]))
    rep_idx = np.sort(rng.choice(train_idx, min(args.representative_size, train_idx.size),
                                 replace=False))
    rep = entry.preprocess(ds.images[rep_idx])

    # The export graph must compute exactly what the trained model computes.
    probe = rep[:8]
    ref = trained.predict(probe, verbose=0)
    got = np.concatenate([export.predict(probe[i:i + 1], verbose=0) for i in range(len(probe))])
    diff = float(np.max(np.abs(ref - got)))
    if diff > 1e-4:
        raise DataError(f"export model differs from the trained model (max |diff| {diff:.2e})")

    report = {}
    for variant, data in (("float", None), ("int8", rep)):
        blob = to_tflite(tf, export, data, args.io_type)
        g = read_graph(blob)
        problems = check_int8_graph(g) if variant == "int8" else check_float_graph(g)
        print(f"{variant}: {len(g.operators)} ops: {op_summary(g)}")
        for t in (g.input_tensors()[0], g.output_tensors()[0]):
            q = f" scale={t.scale[0]:.6g} zero_point={t.zero_point[0]}" if t.scale.size else ""
            print(f"  {t.name}: {t.dtype} {list(t.shape)}{q}")
        if problems:
            for msg in problems:
                print(f"  FAIL: {msg}", file=sys.stderr)
            raise DataError(f"{variant} model failed the graph checks ({len(problems)} problems)")
        path = out / f"{entry.name}_{variant}.tflite"
        atomic_write_bytes(path, blob)
        report[variant] = {"path": path.name, "bytes": len(blob), "ops": g.op_names,
                           "op_versions": {o.name: o.version for o in g.operators}}
        print(f"  wrote {path}")
    write_json(out / "representative_indices.json", {
        "dataset": meta["dataset"], "dataset_cache_key": ds.meta.get("cache_key"),
        "split": meta["split"], "seed": args.seed, "size": int(rep_idx.size),
        "indices": rep_idx.tolist()})
    write_json(out / "convert_meta.json", {
        "io_type": args.io_type, "representative_size": int(rep_idx.size), "seed": args.seed,
        "export_max_abs_diff": diff, "variants": report, "environment": environment()})
    return report


def main(argv=None) -> int:
    convert(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.convert", main))
