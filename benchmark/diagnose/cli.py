"""``python -m benchmark.diagnose``: why does an int8 model lose accuracy? (runtime only)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.cli import prog_name
from benchmark.errors import DataError

KERNELS = ("xnnpack", "builtin", "reference")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog_name("python -m benchmark.diagnose"),
        description="Explain an int8 drop: per-tensor saturation (eval vs calibration images), "
                    "range use, per-layer error float vs int8, input clipping, logit ties, "
                    "the calibration set's mix, and a verdict. Needs no TensorFlow.")
    p.add_argument("--model", default="signnet", help="registered model (default signnet)")
    p.add_argument("--split", default="verification", choices=("full", "verification"))
    p.add_argument("--model-dir", type=Path, default=None,
                   help="models root holding <model>/<split>/ (default models/)")
    p.add_argument("--int8", type=Path, default=None,
                   help="the int8 .tflite (default <artifact dir>/<model>_int8.tflite); its "
                        "representative_indices.json / convert_meta.json are read beside it")
    p.add_argument("--float", dest="float_model", type=Path, default=None,
                   help="the float .tflite (default: the one beside the int8 model, if any)")
    p.add_argument("--no-float", action="store_true", help="ignore the float model")
    p.add_argument("--data-dir", default=None, help="the dataset's files (default: recorded)")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--limit", type=int, default=600,
                   help="evaluation images, evenly spaced over the split (default 600; 0 = all)")
    p.add_argument("--calibration-limit", type=int, default=300,
                   help="calibration images run (default 300; 0 = all)")
    p.add_argument("--cpu-kernels", choices=KERNELS, default="xnnpack",
                   help="CPU kernels (default xnnpack, as benchmark.run)")
    p.add_argument("--out", type=Path, default=None,
                   help="write diagnose.json and the plots into this directory")
    p.add_argument("--no-plots", action="store_true", help="with --out: no figures")
    p.add_argument("--top", type=int, default=12, help="tensors in the printed table")
    return p.parse_args(argv)


@dataclass
class Inputs:
    """What one diagnosis reads: the models, the data and the calibration record."""

    int8: Path
    float_model: Path | None
    eval_images: np.ndarray
    eval_labels: np.ndarray
    cal_images: np.ndarray
    calibration: dict
    transform: object
    class_names: tuple


def _even(n: int, limit: int) -> np.ndarray:
    if not limit or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def resolve(args) -> Inputs:
    """Find the models, load the dataset the model was trained on, pick eval/calibration."""
    from benchmark.artifacts import read_train_meta
    from benchmark.datasets.registry import load_dataset, trained_dataset_options
    from benchmark.models.registry import get_model
    from benchmark.quant.calibration import images_of
    from benchmark.results import read_json_file

    entry = get_model(args.model)
    adir = entry.artifact_dir(args.split, args.model_dir)
    int8 = args.int8 or adir / f"{entry.name}_int8.tflite"
    if not int8.is_file():
        raise DataError(f"int8 model not found: {int8}")
    fl = None if args.no_float else (args.float_model or _float_beside(int8, entry.name))
    meta_path = adir / "train_meta.json"
    if not meta_path.is_file():
        raise DataError(f"{meta_path} not found: diagnose needs the split's train_meta.json")
    meta = read_train_meta(meta_path)
    ds = load_dataset(meta.dataset, image_size=entry.input_size, seed=meta.data_seed,
                      options=trained_dataset_options(meta), cache_dir=args.cache_dir,
                      data_dir=args.data_dir or meta.data_dir, verbose=False)
    _, eval_idx = ds.split(meta.split, seed=meta.data_seed)
    eval_idx = eval_idx[_even(eval_idx.size, args.limit)]
    rep_path = int8.parent / "representative_indices.json"
    if not rep_path.is_file():
        raise DataError(f"{rep_path} not found: the calibration set of {int8.name} is unknown")
    rep = read_json_file(rep_path, "representative indices")
    cal = images_of(ds, rep, entry.input_size)
    cal = cal[_even(len(cal), args.calibration_limit)]
    return Inputs(int8=int8, float_model=fl, eval_images=ds.images[eval_idx],
                  eval_labels=ds.labels[eval_idx], cal_images=cal,
                  calibration=_calibration_info(ds, rep, int8.parent),
                  transform=entry.preprocess, class_names=tuple(ds.class_names))


def _float_beside(int8: Path, name: str) -> Path | None:
    for cand in (int8.parent / f"{name}_float.tflite",
                 int8.with_name(int8.name.replace("_int8", "_float"))):
        if cand.is_file():
            return cand
    return None


def _calibration_info(ds, rep: dict, where: Path) -> dict:
    """Size, spec and class/group mix of the calibration set (and convert_meta's record)."""
    from benchmark.artifacts import read_convert_meta

    idx = np.asarray(rep.get("indices", []), dtype=np.int64)
    info = {"size": int(idx.size), "seed": rep.get("seed"),
            "calibration_from": rep.get("calibration_from") or None}
    if not rep.get("files") and idx.size:
        labels, groups = ds.labels[idx], ds.groups[idx]
        counts = np.bincount(labels, minlength=ds.num_classes)
        info.update(classes_covered=int(np.count_nonzero(counts)), num_classes=ds.num_classes,
                    groups_covered=int(np.unique(groups).size),
                    groups_total=int(np.unique(ds.groups).size),
                    classes={ds.class_names[i]: int(c) for i, c in enumerate(counts) if c})
    cm = where / "convert_meta.json"
    if cm.is_file():
        meta = read_convert_meta(cm)
        info.update(observer=meta.observer, io_type=meta.io_type)
    return info


def _open(runtime, kernels: str, path=None, content=None):
    import warnings

    from benchmark.backends.litert_cpu import open_interpreter

    with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": it is
        warnings.simplefilter("ignore", UserWarning)
        it = open_interpreter(runtime, path, model_content=content, kernels=kernels,
                              preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def diagnose(inp: Inputs, kernels: str = "xnnpack") -> dict:
    """The full diagnosis of ``inp`` (JSON-ready dict)."""
    from benchmark.backends.runtime import find_runtime
    from benchmark.diagnose import verdict as V
    from benchmark.diagnose.collect import Collector
    from benchmark.diagnose.graph import (OpModels, fixed_range_tensors, input_layer,
                                          logits_layer, read_pair)
    from benchmark.tflite_graph import read_graph

    rt = find_runtime()
    q, f, layers = read_pair(inp.int8, inp.float_model)

    def collector():
        fi = _open(rt, kernels, inp.float_model) if f is not None else None
        ops = OpModels(inp.float_model, read_graph(inp.float_model)) if f is not None else None
        return Collector(q, layers, _open(rt, kernels, inp.int8), fi, ops,
                         lambda b: _open(rt, kernels, content=b))

    x_eval = inp.transform(inp.eval_images)
    ev, raw, fout = collector().run(x_eval)
    x_cal = inp.transform(inp.cal_images)
    cal, _, _ = collector().run(x_cal) if len(x_cal) else ({}, None, None)
    fixed = fixed_range_tensors(q)
    rows = [V.tensor_row(lay, ev[lay.tensor.index], cal.get(lay.tensor.index),
                         lay.tensor.index in fixed) for lay in layers]
    by_index = {r["index"]: r for r in rows}
    il, ll = input_layer(layers, q), logits_layer(layers, q)
    inp_row = by_index.get(il.tensor.index) if il is not None else None
    check = None
    if inp_row is not None:
        px = inp.transform(np.array([[[[0, 0, 0]]], [[[255, 255, 255]]]], np.uint8))
        check = V.input_check(inp_row, (float(px.min()), float(px.max())), x_eval, x_cal)
    fpred = fout.reshape(len(fout), -1).argmax(axis=1) if fout is not None else None
    out = V.output_stats(raw, inp.eval_labels, fpred,
                         by_index.get(ll.tensor.index) if ll is not None else None)
    return {"int8_model": str(inp.int8), "float_model": str(inp.float_model or "") or None,
            "cpu_kernels": kernels, "eval_images": int(len(x_eval)),
            "calibration": inp.calibration, "input": check, "outputs": out,
            "logits_tensor": ll.name if ll is not None else None, "tensors": rows,
            "verdict": V.verdict(rows, check, out)}


def main(argv=None) -> int:
    from benchmark.diagnose.text import format_report

    args = parse_args(argv)
    from benchmark.train import check_int
    check_int("--limit", args.limit, 0, optional=False)
    check_int("--calibration-limit", args.calibration_limit, 0, optional=False)
    if args.out is not None:
        from benchmark.preflight import check_output_dir
        check_output_dir(args.out, option="--out")
    result = diagnose(resolve(args), args.cpu_kernels)
    print(format_report(result, top=args.top))
    if args.out is not None:
        from benchmark.results import write_json
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "diagnose.json", result)
        if not args.no_plots:
            from benchmark.diagnose.figures import write_figures
            for path in write_figures(result, args.out):
                print(f"wrote {path}", file=sys.stderr)
    return 0
