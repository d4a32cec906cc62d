"""Evaluate float and int8 variants of a model: ``python -m benchmark.run``.

The thin command line over the pipeline (:mod:`benchmark.pipeline`): plan
and validate, evaluate every variant on the chosen device, compare, write
the run directory (:mod:`benchmark.rundir`: results.json, metrics.csv,
confusion_<variant>.csv, predictions_<variant>.npz per split; ``--split all``
puts each split in a sub-directory) and print the blog's tables.
"""

from __future__ import annotations

import argparse
import sys

from benchmark.cli import main_wrapper
from benchmark.config import DEVICES, OUTPUT_KINDS, SPLIT_CHOICES, make_config, observer_names
from benchmark.pipeline import run

__all__ = ["add_run_arguments", "main", "parse_args", "run"]


def add_run_arguments(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """Add every ``benchmark.run`` option to ``p`` (unset options are None).

    ``skip`` leaves out options (by dest) a wrapping command sets itself.
    """
    from benchmark.datasets.cli import add_dataset_arguments
    _model_arguments(p)
    _own_model_arguments(p)
    add_dataset_arguments(p, defaults_none=True,
                          dataset_help="dataset (default: the one the model was trained on)")
    _evaluation_arguments(p)
    _output_arguments(p)
    for dest in skip:
        _remove_option(p, dest)


def _model_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.models.registry import list_models
    p.add_argument("--config", help="TOML or JSON file of settings (CLI flags override it)")
    p.add_argument("--model", help=f"registered model (default signnet): "
                                   f"{', '.join(list_models())}; or a path: a .keras file, a "
                                   "SavedModel folder, a .tflite, or a folder holding them "
                                   "(docs/own-model.md)")
    p.add_argument("--split", choices=SPLIT_CHOICES, help="default verification")
    p.add_argument("--device", choices=DEVICES,
                   help="where the int8 model runs: cpu, edgetpu (int8 also on the CPU, for "
                        "attribution) or auto (the Edge TPU when its runtime is installed)")
    p.add_argument("--edgetpu-device", help="Edge TPU to use: usb, pci, usb:0, pci:1 ... "
                   "(default: the first found)")
    p.add_argument("--weight-bits", metavar="B,B,...",
                   help="also evaluate the int8 model with weights re-quantized to these bit "
                        "widths at 8-bit activations, e.g. 8,7,6,5,4 (variants w8..w4)")
    p.add_argument("--act-bits", metavar="B,B,...",
                   help="also evaluate the int8 model with activations on these bit grids at "
                        "8-bit weights, e.g. 8,6,4 (variants a8..a4; standard int8 kernels)")
    _calibration_arguments(p)
    p.add_argument("--weights", help="pretrained weights to convert and evaluate: a PyTorch "
                   "state dict (.npz, or .pth with torch installed) for resnet20/32/44/56, a "
                   "Keras .h5 / .weights.h5 for resnet50/mobilenetv2, or a .keras file")
    p.add_argument("--act-observer", choices=observer_names(),
                   help="activation ranges of the int8 model: minmax (TFLite default, the "
                        "shipped models), percentile or mse (the paper's); anything but minmax "
                        "re-converts (needs TensorFlow)")
    p.add_argument("--cpu-kernels", choices=("xnnpack", "builtin", "reference"),
                   help="CPU interpreter kernels: xnnpack (default delegate), builtin "
                        "(optimized builtin kernels) or reference; recorded per variant")
    p.add_argument("--variants", help="comma list of float,int8 (default both)")
    p.add_argument("--model-dir", help="models root holding <model>/<split>/ (default models/)")


def _calibration_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("calibration sweep (needs TensorFlow to convert; docs/diagnose.md)")
    g.add_argument("--calibration-sizes", metavar="N,N,...",
                   help="also convert the float model to int8 with representative sets of "
                        "these sizes and evaluate each, e.g. 1,4,16,64,300 (variants "
                        "cal<N>-s<seed>; conversions cached)")
    g.add_argument("--calibration-seeds", type=int, metavar="K",
                   help="draws per size, seeds 0..K-1 (default 1; median and worst reported)")
    g.add_argument("--calibration-from", metavar="SPEC",
                   help="draw the calibration sets from: class:NAME[+NAME], group:ID[+ID] "
                        "(session:/track:), brightness:F, folder:PATH; a comma list")


#: Preprocessing flags (argparse dest -> key of RunConfig.preprocessing).
PREPROCESS_DESTS = {"preset": "preset", "input_size": "input_size", "scale": "scale",
                    "mean": "mean", "std": "std", "resize": "resize", "crop": "crop",
                    "channel_order": "channel_order", "layout": "layout"}


def _own_model_arguments(p: argparse.ArgumentParser) -> None:
    from benchmark.preprocess import CHANNEL_ORDERS, LAYOUTS, PRESETS, RESIZE_METHODS
    g = p.add_argument_group("your own model (docs/own-model.md)")
    g.add_argument("--float-model", metavar="F", help="the float .tflite of your model")
    g.add_argument("--int8-model", metavar="Q", help="its int8 .tflite (alone: evaluated on "
                                                     "its own)")
    g.add_argument("--edgetpu-model", metavar="E", help="its compiled _edgetpu.tflite "
                                                        "(with --device edgetpu)")
    g.add_argument("--outputs", choices=OUTPUT_KINDS,
                   help="what the model outputs (default: probabilities when its graph ends in "
                        "SOFTMAX, else logits)")
    g.add_argument("--model-labels", metavar="FILE",
                   help="the model's class names: one per line, or Coral's 'index name' lines")
    g.add_argument("--class-map", metavar="FILE|auto|positional",
                   help="data classes the model lacks: auto evaluates the classes shared by "
                        "name, FILE maps them (TOML); positional scores output i as class i")
    g.add_argument("--preprocess", dest="preset", choices=tuple(PRESETS),
                   help="input normalisation: unit x/255, signed x/127.5-1, raw 0..255, "
                        "imagenet (x/255-mean)/std")
    g.add_argument("--input-size", type=int, metavar="N", help="input side (default: the "
                                                               "model's)")
    g.add_argument("--scale", metavar="S", help="input = (pixel * S - mean) / std, e.g. 1/255")
    g.add_argument("--mean", metavar="M[,M,M]", help="per-channel mean (after scaling)")
    g.add_argument("--std", metavar="S[,S,S]", help="per-channel std (after scaling)")
    g.add_argument("--resize", choices=RESIZE_METHODS, help="resize method (bilinear)")
    g.add_argument("--crop", type=float, metavar="F",
                   help="keep the centre F of the image (e.g. 0.875: 224 of 256; default 1)")
    g.add_argument("--channel-order", choices=CHANNEL_ORDERS, help="default rgb")
    g.add_argument("--layout", choices=LAYOUTS, help="nhwc (channels-last) is what runs")


def _evaluation_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency", type=int, metavar="N",
                   help="also time N invokes per variant (default 0: off); the first invoke "
                        "is timed on the fresh interpreter, before the evaluation pass")
    p.add_argument("--latency-warmup", type=int, metavar="N",
                   help="untimed invokes before the latency runs (default 10)")
    p.add_argument("--seed", type=int, help="dataset seed (default 0)")
    p.add_argument("--batch-size", type=int, help="images preprocessed per batch (default 64)")
    p.add_argument("--num-threads", type=int, help="CPU interpreter threads (default: all cores)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="CPU evaluation processes (default: chosen from the cores and the model)")
    p.add_argument("--no-prediction-cache", dest="prediction_cache", action="store_const",
                   const=False, help="re-run every variant instead of reusing predictions of "
                                     "the same model bytes, data and preprocessing")
    p.add_argument("--limit", type=int, help="evaluate N evenly spaced images of the split")
    p.add_argument("--bins", type=int, help="histogram bins on [0, 1] (default 20)")


def _output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run directory (default runs/<UTC timestamp>); refused when "
                                 "it already holds a run")
    p.add_argument("--resume", action="store_const", const=True,
                   help="finish the interrupted run in --out: its finished splits are kept "
                        "(same configuration and model files only), the rest is run")
    p.add_argument("--no-report", dest="report", action="store_const", const=False,
                   help="do not write report.html / report.md at the end")
    p.add_argument("--quiet", action="store_true", help="print only the tables")


def _remove_option(p: argparse.ArgumentParser, dest: str) -> None:
    for action in list(p._actions):
        if action.dest == dest:
            p._remove_action(action)
            for s in action.option_strings:
                p._option_string_actions.pop(s, None)


def parse_args(argv=None) -> tuple[dict, str | None, bool]:
    """``(run options, config file, quiet)`` from the command line."""
    p = argparse.ArgumentParser(prog="python -m benchmark.run",
                                description=__doc__.split("\n")[0])
    add_run_arguments(p)
    a = vars(p.parse_args(argv))
    config_file, quiet = a.pop("config"), a.pop("quiet")
    split_cli_dataset_options(a)
    return a, config_file, quiet


def split_cli_dataset_options(values: dict) -> dict:
    """Move the per-loader dataset flags of an argparse dict into ``dataset_options``."""
    from benchmark.datasets.cli import dataset_options_from_args
    opts = dataset_options_from_args(values)
    values["dataset_options"] = opts or None
    pre = {key: values.pop(dest) for dest, key in PREPROCESS_DESTS.items()
           if values.get(dest) is not None}
    for dest in PREPROCESS_DESTS:
        values.pop(dest, None)
    values["preprocessing"] = pre or None
    return values


def main(argv=None) -> int:
    import os

    from benchmark.backends.litert_cpu import KERNELS_ENV
    cli, config_file, quiet = parse_args(argv)
    cfg = make_config(cli, config_file)
    if cfg.cpu_kernels != "xnnpack":     # seen by every CPU interpreter, workers included
        os.environ[KERNELS_ENV] = cfg.cpu_kernels
    run(cfg, quiet=quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.run", main))
