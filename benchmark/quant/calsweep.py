"""Calibration sweep: ``python -m benchmark.quant.calsweep`` (needs TensorFlow).

A thin wrapper over ``benchmark.run --variants float --calibration-sizes ...
--calibration-seeds N [--calibration-from SPEC]`` (:mod:`benchmark.pipeline`):
every size x every draw seed ``0..N-1`` (narrowed or changed by the SPEC, see
:mod:`benchmark.quant.calibration`) is one int8 conversion of the *same* float
Keras model of a split (cached), evaluated on the split's eval images on the CPU
interpreter and compared with the float model: accuracy, change in points,
swapped predictions, right->wrong / wrong->right and the exact McNemar p.
Per size, the median and the worst change over the seeds are printed; with
``--out`` the rows go to ``calibration_sweep.csv`` and the plot to
``calibration_sweep.png`` (``benchmark.run`` itself keeps the run directory).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmark.cli import main_wrapper, prog_name
from benchmark.errors import UsageError
from benchmark.quant.sweeprows import calibration_sweep_rows, format_summary, summary

__all__ = ["COLUMNS", "calibration_sweep_rows", "format_summary", "main", "parse_ints",
           "run_sweep", "summary", "sweep_rows"]

COLUMNS = ["split", "variant", "size", "seed", "calibration_from", "accuracy",
           "float_accuracy", "delta_points", "swapped", "right_to_wrong", "wrong_to_right",
           "mcnemar_p", "input_scale"]


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


def run_sweep(values: dict, *, quiet: bool = True, keep=None) -> dict[str, dict]:
    """``{split: record}`` of ``benchmark.run`` with these RunConfig ``values`` (the float
    model and the sweep variants they ask for; no report) in a temporary run directory;
    ``keep(run_dir)`` is called before it is removed."""
    from benchmark.config import make_config
    from benchmark.pipeline import run

    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "run"
        cfg = make_config({**values, "variants": "float", "report": False, "out": str(where)})
        _, records = run(cfg, quiet=quiet, tables=False)
        if keep is not None:
            keep(where)
    return records


def sweep_rows(records: dict[str, dict]) -> list[dict]:
    """One row per calibration variant of a run's records (:data:`COLUMNS`)."""
    from benchmark.tflite_graph import read_graph

    rows = []
    for split, rec in records.items():
        for r in calibration_sweep_rows(split, rec):
            path = Path(rec["variants"][r["variant"]]["model_file"])
            r["input_scale"] = float(read_graph(path).input_tensors()[0].scale[0])
            rows.append(r)
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = parse_ints(args.calibration_sizes, "--calibration-sizes")
    if args.calibration_seeds < 1:
        raise UsageError("--calibration-seeds must be >= 1")
    if args.out is not None:
        from benchmark.preflight import check_output_dir
        check_output_dir(Path(args.out), option="--out")   # before minutes of conversions
    values = {"model": args.model, "split": args.split, "calibration_sizes": sizes,
              "calibration_seeds": args.calibration_seeds,
              "calibration_from": args.calibration_from, "limit": args.limit or None,
              "model_dir": str(args.model_dir) if args.model_dir else None}
    rows = sweep_rows(run_sweep(values, quiet=False))
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
