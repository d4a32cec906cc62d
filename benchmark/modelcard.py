"""Write MODEL_CARD.md for shipped artifacts from their metadata and a run's results.

``python -m benchmark.modelcard --model signnet --run RUN_DIR`` reads
``train_meta.json``, ``convert_meta.json`` and ``history.json`` of each split
and the accuracies measured in ``RUN_DIR`` (a ``benchmark.run`` directory).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.cli import main_wrapper
from benchmark.errors import DataError
from benchmark.models.registry import get_model
from benchmark.results import atomic_write_bytes, read_json_file
from benchmark.rundir import read_run


def _load(path: Path) -> dict:
    return read_json_file(path, "model metadata")


def split_results(run_dir: Path) -> dict:
    """``{split: record}`` of a saved run (through the run-directory reader)."""
    return read_run(run_dir).records()


def _sources_text(source) -> str:
    """The dataset's source fingerprints: one per archive (GTSRB) or one for the folder."""
    if isinstance(source, dict):
        return ", ".join(f"{k} {str(v)[:12]}" for k, v in source.items())
    return str(source)[:12] if source else "none recorded"


def _dataset_text(tm: dict) -> str:
    dm = tm.get("dataset_meta", {})
    if dm.get("spec"):
        return (f"{tm['dataset']} (spec {json.dumps(dm['spec'])}, renderer "
                f"v{dm.get('renderer_version')})")
    opts = tm.get("dataset_options") or {}
    return (f"{tm['dataset']} from {tm.get('data_dir')} (options {json.dumps(opts)}, loader "
            f"v{dm.get('loader_version')}, sources {_sources_text(dm.get('source'))})")


def card_text(entry, split: str, art: Path, res: dict | None) -> str:
    tm = _load(art / "train_meta.json")
    cm = _load(art / "convert_meta.json")
    hist = _load(art / "history.json")
    hp = tm["hyperparameters"]
    pk = tm["environment"]["packages"]
    lines = [
        f"# Model card: {entry.name} / {split}", "",
        f"{entry.description}.", "",
        "| | |", "|---|---|",
        f"| dataset | {_dataset_text(tm)} |",
        f"| split | `{split}`: {tm['n_train']} training images, {tm['n_eval']} evaluated |",
        f"| input | {tm['input_size']}x{tm['input_size']}x3 RGB, {tm['preprocessing']} |",
        f"| classes | {tm['num_classes']} |",
        f"| training | Adam lr {hp['learning_rate']} ({hp.get('schedule', 'constant')}), "
        f"{hp['epochs']} epochs, batch {hp['batch_size']}, "
        f"{'brightness/contrast/translation jitter' if hp.get('augment') else 'no augmentation'}"
        f", seed {tm['seed']}, {tm['train_seconds']} s on "
        f"{tm['environment']['cpu_count']} CPU cores; final train accuracy "
        f"{100 * hist['accuracy'][-1]:.2f} % |",
        f"| conversion | TFLite PTQ full-integer, {cm['io_type']} input/output, "
        f"{cm['representative_size']} representative training images (seed {cm['seed']}, "
        "`representative_indices.json`) |",
        f"| versions | TensorFlow {pk.get('tensorflow-cpu') or pk.get('tensorflow')}, "
        f"Keras {pk.get('keras')} |",
        "", "## Files", "", "| file | bytes | ops |", "|---|---|---|",
        f"| `{entry.name}.keras` | {(art / f'{entry.name}.keras').stat().st_size} | "
        "trained model (conv -> pool -> ReLU order) |",
    ]
    for v, info in cm["variants"].items():
        lines.append(f"| `{info['path']}` | {info['bytes']} | {', '.join(info['ops'])} |")
    if res is not None:
        lines += ["", f"## Measured ({res['n_eval']} images, CPU interpreter, "
                  f"git {res['environment'].get('git')})", "",
                  "| variant | accuracy | 95 % CI | mean H / log K |", "|---|---|---|---|"]
        for v, m in res["variants"].items():
            ci = m["accuracy_interval"]
            lines.append(f"| {v} | {100 * m['accuracy']:.2f} % | {100 * ci['low']:.2f}–"
                         f"{100 * ci['high']:.2f} % | {m['mean_normalized_entropy']:.4f} |")
        if "agreement" in res:
            lines.append(f"\nfloat and int8 agree on {100 * res['agreement']['top1']:.2f} % of "
                         "top-1 predictions.")
    how = "`GTSRB_DIR=path make models`" if tm.get("dataset") == "gtsrb" else "`make models`"
    lines += ["", f"Reproduce: {how} (needs the `train` extra).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.modelcard",
                                description=__doc__.split("\n")[0])
    p.add_argument("--model", default="signnet")
    p.add_argument("--run", type=Path, required=True, help="a benchmark.run output directory")
    p.add_argument("--model-dir", type=Path, default=None, help="models root (default models/)")
    args = p.parse_args(argv)
    entry = get_model(args.model)
    results = split_results(args.run)
    for split, res in results.items():
        art = entry.artifact_dir(split, args.model_dir)
        try:
            text = card_text(entry, split, art, res)
        except KeyError as e:
            raise DataError(f"{art}: the model's metadata lacks {e} (train_meta.json, "
                            "convert_meta.json, history.json are written by benchmark.train "
                            "and benchmark.convert)") from None
        atomic_write_bytes(art / "MODEL_CARD.md", text.encode())
        print(f"wrote {art / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.modelcard", main))
