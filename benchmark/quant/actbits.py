"""Activation-bit sweep: put an int8 model's activations on a b-bit grid, weights unchanged.

Every calibrated int8 activation tensor (each op output except the fixed-range
SOFTMAX/LOGISTIC/TANH outputs and the model's own input/output tensors) gets a
scale ``f = 255 / (2^b - 1)`` times coarser, ``s' = f * s``, and the zero point
``zp' = round(-128 + (zp + 128) / f)``, so the calibrated range ``[s(-128 - zp),
s(127 - zp)]`` now spans the lowest ``2^b`` integers of the int8 grid. Values
stay stored as int8 and every kernel is a standard int8 kernel: the model
carries only b bits of activation resolution over the calibrated range. (Values
above the calibrated range are clipped at the int8 limit, ``f`` times further
out than a true b-bit tensor would clip them: the sweep isolates resolution.)

Tensors that had equal quantization (MAX_POOL_2D, RESHAPE in and out) keep
equal quantization, since each tensor's new parameters depend only on its old
ones. Each int32 bias is re-quantized to ``input_scale' * weight_scale``.
This is ``a<b>`` beside the weight sweep's ``w<b>``: the paper's w8 -> w4 at a8
next to a8 -> a4 at w8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.errors import DataError
from benchmark.quant.bitsweep import WEIGHT_OPS
from benchmark.tflite_graph import op_name, pack_model, unpack_model

#: Ops whose output range the op fixes (left as they are).
FIXED_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX"})


def coarser(scale: float, zero_point: int, bits: int) -> tuple[float, int]:
    """The b-bit grid's ``(scale, zero_point)`` for an int8 tensor's ``(scale, zero_point)``.

    Examples
    --------
    >>> s, z = coarser(0.01, -128, 8)  # 8 bits: the same grid (scale kept as float32)
    >>> round(s, 6), z
    (0.01, -128)
    >>> s, z = coarser(0.01, 0, 4)     # 17x coarser; the old -128 stays at -128
    >>> round(s, 6), z
    (0.17, -120)
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    f = 255 / (2 ** bits - 1)
    return float(np.float32(scale * f)), int(round(-128 + (zero_point + 128) / f))


def _activations(m, schema, g) -> tuple[set[int], set[int]]:
    """(int8 activation tensors to coarsen, the fixed-range ones) of subgraph ``g``."""
    int8 = schema.TensorType.INT8
    fixed, acts = set(), set()
    for op in g.operators:
        name = op_name(m, schema, op)
        outs = [int(t) for t in op.outputs]
        if name in FIXED_OPS or (name in ("QUANTIZE", "DEQUANTIZE")
                                 and int(op.inputs[0]) in fixed):
            fixed.update(outs)
            continue
        acts.update(t for t in outs if g.tensors[t].type == int8)
    acts -= set(int(t) for t in g.inputs) | set(int(t) for t in g.outputs) | fixed
    return acts, fixed


def _requantize_bias(m, g, op, old_in: float, new_in: float) -> None:
    """Re-quantize the int32 bias of a weight op whose input scale changed."""
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return
    b_t = g.tensors[op.inputs[2]]
    w_scale = np.asarray(g.tensors[op.inputs[1]].quantization.scale, np.float64)
    b_int = np.asarray(m.buffers[b_t.buffer].data, np.uint8).view(np.int32)
    b_real = b_int.astype(np.float64) * (old_in * w_scale)
    b_scale = (new_in * w_scale).astype(np.float32).astype(np.float64)
    b_new = np.clip(np.rint(b_real / b_scale), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
    m.buffers[b_t.buffer].data = b_new.view(np.uint8)
    b_t.quantization.scale = b_scale.astype(np.float32).tolist()


def requantize_activations(model: str | Path | bytes, bits: int) -> bytes:
    """The int8 ``model`` with its activations on a ``bits``-bit grid (see the module doc)."""
    m, schema = unpack_model(model)
    g = m.subgraphs[0]
    acts, _ = _activations(m, schema, g)
    if not acts:
        source = "the model" if isinstance(model, bytes) else str(model)
        raise DataError(f"{source}: no int8 activation tensors (is it a full-integer model?)")
    old = {t: float(g.tensors[t].quantization.scale[0]) for t in acts}
    for t in sorted(acts):
        q = g.tensors[t].quantization
        scale, zp = coarser(old[t], int(q.zeroPoint[0]), bits)
        q.scale, q.zeroPoint = [scale], [zp]
    done = set()
    for op in g.operators:
        x = int(op.inputs[0]) if len(op.inputs) else -1
        bias = int(op.inputs[2]) if len(op.inputs) > 2 else -1
        if op_name(m, schema, op) in WEIGHT_OPS and x in acts and bias not in done:
            done.add(bias)
            _requantize_bias(m, g, op, old[x], float(g.tensors[x].quantization.scale[0]))
    return pack_model(m)


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
    p.add_argument("--out", type=Path, default=None, help="write act_bits.csv and the models")
    return p.parse_args(argv)


def sweep(entry, split: str, act_bits, weight_bits, *, model_dir=None, limit: int = 0,
          out: Path | None = None) -> list[dict]:
    """One row per ``a<b>`` / ``w<b>`` variant: accuracy, swaps and McNemar against float."""
    import tempfile

    from benchmark.quant.bitsweep import requantize_weights
    from benchmark.quant.calsweep import _load_eval, _predict, _row

    images, labels = _load_eval(entry, split, model_dir, limit)
    adir = entry.artifact_dir(split, model_dir)
    src = adir / f"{entry.name}_int8.tflite"
    ref = _predict(adir / f"{entry.name}_float.tflite", images, entry.preprocess)
    jobs = [(f"a{b}", requantize_activations, b) for b in act_bits]
    jobs += [(f"w{b}", requantize_weights, b) for b in weight_bits]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        where = out or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for name, make, bits in jobs:
            path = where / f"{entry.name}_{name}.tflite"
            path.write_bytes(make(src, bits))
            probs = _predict(path, images, entry.preprocess)
            row = _row(split, bits, 0, None, probs, ref, labels, None, None)
            rows.append({"variant": name, **{k: row[k] for k in (
                "split", "accuracy", "float_accuracy", "delta_points", "swapped",
                "right_to_wrong", "wrong_to_right", "mcnemar_p")}})
    return rows


def main(argv=None) -> int:
    from benchmark.models.registry import get_model
    from benchmark.quant.calsweep import parse_ints

    args = parse_args(argv)
    act = parse_ints(args.act_bits, "--act-bits") if args.act_bits else ()
    wts = parse_ints(args.weight_bits, "--weight-bits") if args.weight_bits else ()
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
