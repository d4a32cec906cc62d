"""What a run evaluates: :class:`Variant` records instead of names parsed in five places.

A variant is one model file on one device: the float reference, the int8
model on the CPU interpreter, the compiled int8 model on the Edge TPU, or the
int8 model with weights re-quantized to fewer bits (``w<b>``, the paper's
sweep). Every stage (plan, evaluate, compare, persist, present) reads the
variant's fields; only :func:`variant_from_name` turns a stored name back
into a variant, for runs read from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Kinds of variants, in the order a run evaluates them.
KINDS = ("float", "int8", "compiled", "weights", "activations", "calibration")
#: The base variants ``--variants`` chooses from.
BASE_VARIANTS = ("float", "int8")
EDGETPU_NAME = "int8-edgetpu"


@dataclass(frozen=True)
class Variant:
    """One model file evaluated on one device.

    Attributes
    ----------
    name : str
        Name in results and file names (``float``, ``int8``, ``int8-edgetpu``, ``w4``).
    kind : {"float", "int8", "compiled", "weights", "activations", "calibration"}
    device : {"cpu", "edgetpu"}
    path : Path or None
        The ``.tflite`` file (None until the artifacts are known).
    weight_bits : int or None
        Bit width of the weights (None for the float model).
    reference : str or None
        The variant it is compared with: ``float`` for quantized ones, ``int8``
        (the same model on the CPU) for the Edge TPU, None for the float model.
    act_bits : int or None
        Bit width of the activation grid of an ``a<b>`` variant (None otherwise).
    cal_size, cal_seed : int or None
        Calibration (representative) set size and draw seed of a ``cal<n>-s<seed>``
        variant: the float model converted again with that set (None otherwise).
    cal_from : str or None
        Its ``--calibration-from`` SPEC (:mod:`benchmark.quant.calibration`), if any.
    """

    name: str
    kind: str
    device: str = "cpu"
    path: Path | None = None
    weight_bits: int | None = None
    reference: str | None = None
    act_bits: int | None = None
    cal_size: int | None = None
    cal_seed: int | None = None
    cal_from: str | None = None

    @property
    def quantized(self) -> bool:
        return self.kind != "float"

    def with_path(self, path: Path) -> "Variant":
        from dataclasses import replace
        return replace(self, path=Path(path))

    def file_name(self, model: str) -> str:
        """The artifact file name of this variant of ``model``."""
        if self.kind == "compiled":
            return f"{model}_int8_edgetpu.tflite"
        return f"{model}_{self.name}.tflite"

    def record(self) -> dict:
        """The fields stored with the variant's results (JSON-ready)."""
        rec = {"kind": self.kind, "weight_bits": self.weight_bits, "reference": self.reference}
        if self.act_bits is not None:
            rec["act_bits"] = self.act_bits
        if self.cal_size is not None:
            rec.update(calibration_size=self.cal_size, calibration_seed=self.cal_seed)
            if self.cal_from:
                rec["calibration_from"] = self.cal_from
        return rec


def float_variant() -> Variant:
    return Variant("float", "float")


def int8_variant() -> Variant:
    return Variant("int8", "int8", weight_bits=8, reference="float")


def edgetpu_variant() -> Variant:
    return Variant(EDGETPU_NAME, "compiled", device="edgetpu", weight_bits=8, reference="int8")


def weight_variant(bits: int) -> Variant:
    """``w<bits>``: the int8 model with weights re-quantized to ``bits`` (8-bit activations)."""
    return Variant(f"w{bits}", "weights", weight_bits=int(bits), reference="float")


def act_variant(bits: int) -> Variant:
    """``a<bits>``: the int8 model with activations on a ``bits``-bit grid (8-bit weights;
    :mod:`benchmark.quant.actbits`)."""
    return Variant(f"a{bits}", "activations", weight_bits=8, reference="float",
                   act_bits=int(bits))


def calibration_variant(size: int, seed: int, spec: str | None = None) -> Variant:
    """``cal<size>-s<seed>``: the float model converted to int8 with a calibration set of
    ``size`` images drawn with ``seed`` (from ``spec``, a ``--calibration-from`` SPEC)."""
    return Variant(f"cal{size}-s{seed}", "calibration", weight_bits=8, reference="float",
                   cal_size=int(size), cal_seed=int(seed), cal_from=spec or None)


def variant_from_name(name: str) -> Variant:
    """The variant a stored name stands for (runs written before variants were recorded).

    Examples
    --------
    >>> variant_from_name("w4").weight_bits, variant_from_name("int8-edgetpu").device
    (4, 'edgetpu')
    """
    if name == "float":
        return float_variant()
    if name == "int8":
        return int8_variant()
    if name == EDGETPU_NAME:
        return edgetpu_variant()
    if name[:1] == "w" and name[1:].isdigit():
        return weight_variant(int(name[1:]))
    if name[:1] == "a" and name[1:].isdigit():
        return act_variant(int(name[1:]))
    size, _, seed = name[3:].partition("-s")
    if name[:3] == "cal" and size.isdigit() and seed.isdigit():
        return calibration_variant(int(size), int(seed))
    return Variant(name, "int8", weight_bits=None, reference="float")


def plan_variants(base: tuple[str, ...], *, device: str, weight_bits: tuple[int, ...] = (),
                  act_bits: tuple[int, ...] = (),
                  calibration: tuple[Variant, ...] = ()) -> list[Variant]:
    """The variants of a run, in evaluation order (paths not yet known).

    The float model is the CPU reference. On the Edge TPU the int8 model runs
    twice, on the CPU interpreter (``int8``) and compiled on the TPU
    (``int8-edgetpu``), so a drop can be attributed to quantization or to the
    device. Then the sweeps: ``w<b>``, ``a<b>`` and the ``calibration``
    variants (:func:`calibration_variants`).

    Examples
    --------
    >>> [v.name for v in plan_variants(("float", "int8"), device="edgetpu", weight_bits=(6,),
    ...                                act_bits=(4,))]
    ['float', 'int8', 'int8-edgetpu', 'w6', 'a4']
    """
    out = []
    for name in base:
        out.append(float_variant() if name == "float" else int8_variant())
        if name == "int8" and device == "edgetpu":
            out.append(edgetpu_variant())
    out += [weight_variant(b) for b in weight_bits]
    out += [act_variant(b) for b in act_bits]
    return out + list(calibration)


def calibration_variants(sizes: tuple[int, ...], seeds: int,
                         spec: str | None = None) -> tuple[Variant, ...]:
    """One variant per calibration size and draw seed ``0..seeds-1``.

    >>> [v.name for v in calibration_variants((1, 16), 2)]
    ['cal1-s0', 'cal1-s1', 'cal16-s0', 'cal16-s1']
    """
    return tuple(calibration_variant(n, s, spec) for n in sizes for s in range(seeds))


def from_record(name: str, record: dict) -> Variant:
    """The variant a stored ``variants[name]`` record describes (any format version)."""
    if "kind" not in record:
        return variant_from_name(name)
    path = record.get("model_file")
    return Variant(name, record["kind"], record.get("device", "cpu"),
                   Path(path) if path else None, record.get("weight_bits"),
                   record.get("reference"), record.get("act_bits"),
                   record.get("calibration_size"), record.get("calibration_seed"),
                   record.get("calibration_from"))


def sweep_variants(variants: dict, kind: str = "weights") -> list[tuple[str, Variant]]:
    """``(name, variant)`` of the weight-bit sweep (``kind="weights"``) or the activation-bit
    sweep (``"activations"``) in a ``variants`` mapping, most bits first; of the calibration
    sweep (``"calibration"``) by size, then seed."""
    found = [(n, from_record(n, m)) for n, m in variants.items()]
    key = {"weights": lambda nv: -nv[1].weight_bits,
           "activations": lambda nv: -nv[1].act_bits,
           "calibration": lambda nv: (nv[1].cal_size, nv[1].cal_seed)}[kind]
    return sorted(((n, v) for n, v in found if v.kind == kind), key=key)
