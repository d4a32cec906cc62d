"""Activation-bit sweep: ``python -m benchmark.quant.actbits`` (no TensorFlow).

A thin wrapper over ``benchmark.run --variants float --act-bits ... --weight-bits ...``
that prints one row per variant (accuracy, change in points, swaps, McNemar p against
float). The requantization itself (:func:`requantize_activations`: activations on a
b-bit grid, stored as int8 with adjusted scales) is in :mod:`benchmark.quant.actgrid`.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.quant.actgrid import FIXED_OPS, coarser, requantize_activations

__all__ = ["FIXED_OPS", "coarser", "main", "parse_args", "requantize_activations", "sweep"]


def parse_args(argv=None):
    import argparse

    from benchmark.cli import prog_name

    p = argparse.ArgumentParser(prog=prog_name("python -m benchmark.quant.actbits"),
                                description="Activation- and weight-bit sweep of a split's "
                                            "int8 model on its eval images (no TensorFlow)")
    p.add_argument("--model", default="signnet")
    p.add_argument("--split", default="verification", choices=("full", "verification"))
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--act-bits", default="8,6,5,4", help="activation bits (weights at 8)")
    p.add_argument("--weight-bits", default="", help="weight bits (activations at 8)")
    p.add_argument("--limit", type=int, default=0, help="eval images, evenly spaced (0 = all)")
    p.add_argument("--out", type=Path, default=None,
                   help="write act_bits.csv and the models")
    return p.parse_args(argv)


def sweep(entry, split: str, act_bits, weight_bits, *, model_dir=None, limit: int = 0,
          out: Path | None = None) -> list[dict]:
    """One row per ``a<b>`` / ``w<b>`` variant: accuracy, swaps and McNemar against float.

    A thin wrapper over ``benchmark.run --variants float --act-bits ... --weight-bits ...``;
    the models it made are copied into ``out`` when given.
    """
    from benchmark.quant.calsweep import run_sweep
    from benchmark.variants import sweep_variants

    def keep(run_dir: Path) -> None:
        from benchmark.results import atomic_write_bytes
        for f in sorted((run_dir / "models").glob("*.tflite")):
            atomic_write_bytes(out / f.name, f.read_bytes())

    records = run_sweep({"model": entry.name, "split": split, "act_bits": tuple(act_bits),
                         "weight_bits": tuple(weight_bits), "limit": limit or None,
                         "model_dir": str(model_dir) if model_dir else None},
                        keep=keep if out is not None else None)
    rec = records[split]
    facc = rec["variants"]["float"]["accuracy"]
    names = [n for kind in ("activations", "weights")
             for n, _ in sweep_variants(rec["variants"], kind)]
    order = {f"a{b}": i for i, b in enumerate(act_bits)}
    order.update({f"w{b}": len(act_bits) + i for i, b in enumerate(weight_bits)})
    rows = []
    for name in sorted(names, key=order.__getitem__):
        acc, sw = rec["variants"][name]["accuracy"], rec["swaps"][name]
        rows.append({"variant": name, "split": split, "accuracy": acc, "float_accuracy": facc,
                     "delta_points": 100 * (acc - facc), "swapped": sw["swapped"],
                     "right_to_wrong": sw["right_to_wrong"],
                     "wrong_to_right": sw["wrong_to_right"], "mcnemar_p": sw["mcnemar_p"]})
    return rows


def main(argv=None) -> int:
    from benchmark.models.registry import get_model
    from benchmark.quant.calsweep import parse_ints

    args = parse_args(argv)
    act = parse_ints(args.act_bits, "--act-bits") if args.act_bits else ()
    wts = parse_ints(args.weight_bits, "--weight-bits") if args.weight_bits else ()
    if args.out is not None:
        from benchmark.preflight import check_output_dir
        check_output_dir(args.out, option="--out")
        args.out.mkdir(parents=True, exist_ok=True)
    rows = sweep(get_model(args.model), args.split, act, wts, model_dir=args.model_dir,
                 limit=args.limit, out=args.out)
    head = f"{'variant':<8} {'accuracy %':>10} {'Δ points':>9} {'swapped':>8} {'r→w/w→r':>9} " \
           f"{'McNemar p':>10}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['variant']:<8} {100 * r['accuracy']:>10.2f} {r['delta_points']:>+9.2f} "
              f"{r['swapped']:>8} {r['right_to_wrong']:>4}/{r['wrong_to_right']:<4} "
              f"{r['mcnemar_p']:>10.3g}")
    if args.out is not None:
        from benchmark.results import write_csv
        cols = list(rows[0]) if rows else []
        write_csv(args.out / "act_bits.csv", cols, [[r[c] for c in cols] for r in rows])
    return 0


if __name__ == "__main__":
    import sys

    from benchmark.cli import main_wrapper
    sys.exit(main_wrapper("benchmark.quant.actbits", main))
