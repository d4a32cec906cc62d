"""The run directory: every file name, the per-split layout, typed records, one reader, one writer.

A run directory is what ``benchmark.run`` leaves on disk. This module is the
only place that knows its file names and layout; the report, the model
cards, the paper's analysis and the tests read runs through :func:`read_run`
and runs are written through :class:`RunWriter`.

Layout: a run of one split keeps its files at the top of the directory; a
run of several splits (``--split all``) keeps each split's files in a
sub-directory named after the split, with a top-level ``results.json``
indexing them and a ``metrics.csv`` holding every split's rows.

``results.json`` carries ``format_version``. Runs written before the field
existed are version 1 (the same layout and records, without ``kind``,
``weight_bits``, ``reference`` and ``agreement_with_float``); they are read as
they are. A run of a newer version than this module knows is refused with a
message that says which version is needed.

``python -m benchmark.rundir`` prints the tables of ``docs/run-directory.md``;
``python -m benchmark.rundir --update docs/run-directory.md`` rewrites them in
place (between the ``rundir-table`` markers); a test fails when they drift.
"""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TypedDict

import numpy as np

from benchmark.errors import DataError, UsageError
from benchmark.results import atomic_write_bytes, read_json_file, write_csv, write_json

#: Version of the records in results.json; bump when a record changes shape.
FORMAT_VERSION = 2
#: The oldest version :func:`read_run` reads.
OLDEST_READABLE = 1

RESULTS = "results.json"
METRICS = "metrics.csv"
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
MODELS_DIR = "models"
#: The configuration fingerprint of a run (written first; ``--resume`` checks it).
RUN_STATE = "run.json"
#: Held (``fcntl.flock``) by the process writing the run directory.
LOCK = ".lock"
METRICS_HEADER = ["split", "variant", "metric", "value"]


def confusion_name(variant: str) -> str:
    return f"confusion_{variant}.csv"


def predictions_name(variant: str) -> str:
    return f"predictions_{variant}.npz"


def sweep_model_name(model: str, bits: int) -> str:
    return f"{model}_w{bits}.tflite"


@dataclass(frozen=True)
class FileSpec:
    """One kind of file in a run directory."""

    pattern: str
    where: str          # "run" (top level), "split" (per split), "run or split"
    written_by: str
    description: str


#: Every file a run directory can hold.
FILES: tuple[FileSpec, ...] = (
    FileSpec(RESULTS, "run and split", "benchmark.run",
             "config, environment, `format_version`; per split: dataset, variants "
             "(metrics, model file, runtime, latency), agreement, swaps, attribution. With "
             "several splits the top-level file only indexes them under `splits`"),
    FileSpec(METRICS, "run and split", "benchmark.run",
             "tidy rows `split,variant,metric,value` flattened from results.json (the top-level "
             "file holds every split's rows)"),
    FileSpec(confusion_name("<variant>"), "split", "benchmark.run",
             "confusion matrix, rows = true class, columns = predicted class, labelled by name"),
    FileSpec(predictions_name("<variant>"), "split", "benchmark.run",
             "`probs` (N, K) float32, `labels` (N,) int64, `index` (N,) int64 dataset rows"),
    FileSpec(f"{MODELS_DIR}/<model>_w<b>.tflite", "split", "benchmark.run --weight-bits",
             "the int8 model with weights re-quantized to b bits"),
    FileSpec(f"{MODELS_DIR}/<model>_a<b>.tflite", "split", "benchmark.run --act-bits",
             "the int8 model with activations on a b-bit grid (8-bit weights)"),
    FileSpec(RUN_STATE, "run", "benchmark.run",
             "written first: the configuration and its fingerprint (`--resume` continues only "
             "a run of the same fingerprint)"),
    FileSpec(LOCK, "run", "benchmark.run",
             "locked (`flock`) while a process writes the directory; holds its pid"),
    FileSpec(REPORT_HTML, "run", "benchmark.run, benchmark.report",
             "self-contained HTML report (tables and figures)"),
    FileSpec(REPORT_MD, "run", "benchmark.run, benchmark.report", "the report's tables"),
    FileSpec(".figures/<sha256>.png", "run", "benchmark.run, benchmark.report",
             "the report's figures, keyed by a hash of the data they draw (reused when the "
             "report is rebuilt)"),
    FileSpec("paper_fig1_reliability.csv", "run", "benchmark.paper",
             "float model: 15 equal-count and 15 equal-width reliability bins per split"),
    FileSpec("paper_fig1_confidence.csv", "run", "benchmark.paper",
             "float confidence histogram, correct and wrong"),
    FileSpec("paper_fig2_sweep.csv", "run", "benchmark.paper",
             "per variant: bits, accuracy, % swapped, delta error, ratio, ECE, where swaps sit"),
    FileSpec("paper_fig2_swaps_by_confidence.csv", "run", "benchmark.paper",
             "swapped / all counts over float confidence per variant"),
    FileSpec("paper.json", "run", "benchmark.paper", "all of the paper's data"),
    FileSpec("paper_tables.txt", "run", "benchmark.paper", "the printed tables"),
    FileSpec("paper_fig1.png, paper_fig2_*.png", "run", "benchmark.paper", "the figures"),
)


# ------------------------------------------------------------------ records


class Interval(TypedDict):
    """Wilson interval of an accuracy (`accuracy_interval`)."""

    low: float
    high: float
    confidence: float
    method: str


class Histogram(TypedDict):
    """A histogram on [0, 1] (`certainty_histogram`, `output_histogram`)."""

    edges: list[float]
    counts: list[int]
    fractions: list[float]


class CalibrationRecord(TypedDict):
    """Calibration metrics of a variant (`calibration`)."""

    n_bins: int
    ece: float
    mce: float
    adaptive_ece: float
    brier: float
    nll: float
    mean_confidence: float
    accuracy: float
    gap: float
    reliability: dict
    nll_zero_true: int      # images whose output for the true class is exactly 0
    nll_floor: float        # p floor of nll: half the output step (int8), else 1e-12


class AverageRecord(TypedDict):
    """A macro or weighted average over classes (`per_class.macro_avg`, `.weighted_avg`)."""

    precision: float
    recall: float
    f1: float


class PerClassRecord(TypedDict):
    """Per-class precision, recall, F1, support in class order (scikit-learn's definitions)."""

    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    macro_avg: AverageRecord
    weighted_avg: AverageRecord
    zero_division: float


class SeenRecord(TypedDict):
    """Accuracy on one part of the evaluated images (`training_seen.seen` ...)."""

    n: int
    n_correct: int
    accuracy: float | None          # None when n is 0
    accuracy_interval: Interval | None


class TrainingSeenRecord(TypedDict):
    """Images the model was fitted on, held out for validation, never used (`training_seen`)."""

    seen: SeenRecord
    validation: SeenRecord
    unseen: SeenRecord


class RecallChangeRecord(TypedDict):
    """Per class: n, reference and quantized recall, change (`recall_change[<name>]`)."""

    n: list[int]
    reference: list[float | None]
    quantized: list[float | None]
    change: list[float | None]


class LatencyRecord(TypedDict, total=False):
    """Latency of a variant (`latency`, with `--latency N`)."""

    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput_per_s: float
    first_invoke_ms: float
    warmup: int
    samples_ms: list[float]
    host: dict              # {before, after}: governor, SoC temperature, load, busy CPU share
    warning: str            # the host was busy while timing
    delegate_ms: float      # Edge TPU: loading the delegate (and the interpreter with pycoral)
    interpreter_ms: float
    allocate_ms: float      # allocate_tensors()


class VariantRecord(TypedDict, total=False):
    """One variant's metrics and provenance (``variants[<name>]`` in results.json)."""

    kind: str
    weight_bits: int | None
    reference: str | None
    accuracy: float
    n: int
    n_correct: int
    accuracy_interval: Interval
    mean_normalized_entropy: float
    certainty_histogram: Histogram
    output_histogram: Histogram
    calibration: CalibrationRecord
    model_file: str
    model_bytes: int
    device: str
    runtime: dict
    inference_seconds: float
    wall_seconds: float
    images_per_second: float
    latency: LatencyRecord
    cached: bool            # predictions reused from the prediction cache (original timings)
    same_model_as: str      # byte-identical to that variant's model, evaluated once
    top5_accuracy: float    # with >= 10 classes
    per_class: PerClassRecord
    training_seen: TrainingSeenRecord   # when the model's training images are known


class AgreementRecord(TypedDict):
    """Top-1 agreement and output differences of two variants."""

    top1: float
    max_abs_prob_diff: float
    mean_abs_prob_diff: float


class SwapRecord(TypedDict, total=False):
    """Swap statistics of one quantized variant against float (``swaps[<name>]``)."""

    agreement_with_float: float
    n: int
    swapped: int
    right_to_wrong: int
    wrong_to_right: int
    wrong_to_wrong: int
    ref_errors: int
    q_errors: int
    swapped_pct: float
    delta_error_pct: float
    ratio: float
    mcnemar_p: float
    accuracy_change: dict
    swapped_by_confidence: dict


class LsbRecord(TypedDict):
    """Edge TPU minus CPU int8 outputs in quantization steps (`int8_cpu_vs_edgetpu.lsb`)."""

    n_outputs: int
    histogram: dict         # {"lsb": [lo..hi], "counts": [...]}
    max_lsb: int
    mean_lsb: float
    exact: float            # share of outputs with no difference
    within_tolerance: float  # share within the tolerance (1 LSB)
    tolerance: int
    scale: float            # the output's quantization step


class DeviceChangeRecord(TypedDict, total=False):
    """CPU int8 -> Edge TPU int8 prediction changes (`attribution.device_change`)."""

    n: int
    swapped: int
    right_to_wrong: int
    wrong_to_right: int
    mcnemar_p: float
    accuracy_change: dict


class AttributionRecord(TypedDict, total=False):
    """float -> int8 CPU -> int8 Edge TPU (`attribution`)."""

    accuracy: dict
    quantization_delta: float | None
    device_delta: float
    int8_cpu_vs_edgetpu: AgreementRecord    # plus `lsb` (LsbRecord, or None and `lsb_note`)
    device_change: DeviceChangeRecord


class EdgeTPUFailureRecord(TypedDict):
    """The Edge TPU variant failed; the CPU variants are kept (`edgetpu_failure`)."""

    error: str              # the one-line message (stage, cause, likely fix)
    exit_code: int
    fallback: str | None    # "cpu" when --device auto fell back


class ClassMapRecord(TypedDict, total=False):
    """How the data's classes were matched to the model's outputs (`class_map`)."""

    mode: str               # identity, reordered, subset, partial or positional
    how: str
    model_classes: int
    data_classes: int
    evaluated_classes: int
    data_to_model: list[int]   # output index of each data class, -1 = not evaluated
    normalisation: str
    dropped: dict[str, int]    # images of unmatched data classes, per class
    dropped_images: int


class CalibrationImages(TypedDict):
    """Dataset rows that calibrated the int8 model."""

    size: int
    rows: list[int]
    seed: int


class SplitRecord(TypedDict, total=False):
    """One split's results.json (after the run header)."""

    format_version: int
    config: dict
    environment: dict
    created: str
    split: str
    dataset: str
    dataset_meta: dict
    n_train: int
    n_eval: int
    class_names: list[str]
    model_artifacts: str
    variants: dict[str, VariantRecord]
    calibration_images: CalibrationImages
    model_source: dict
    act_observer: str
    agreement: AgreementRecord
    swaps: dict
    attribution: AttributionRecord
    device_resolved: str
    training_rows: dict     # {known, how}: were the model's training images established
    recall_change: dict     # reference, and a RecallChangeRecord per quantized variant
    class_map: ClassMapRecord
    outputs: dict           # {kind: probabilities|logits, from: graph|flag|model.toml}
    preprocessing: dict     # the declared input pipeline and where it was declared
    edgetpu_failure: EdgeTPUFailureRecord


RECORDS = (SplitRecord, VariantRecord, SwapRecord, AgreementRecord, AttributionRecord,
           LsbRecord, DeviceChangeRecord, EdgeTPUFailureRecord, ClassMapRecord,
           LatencyRecord, CalibrationRecord, CalibrationImages, Histogram, Interval,
           PerClassRecord, AverageRecord, TrainingSeenRecord, SeenRecord, RecallChangeRecord)


def run_header(config: dict, environment: dict) -> dict:
    """The keys every results.json starts with."""
    return {"format_version": FORMAT_VERSION, "config": config, "environment": environment,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


# ------------------------------------------------------------------ metrics.csv

SWAP_ROWS = ("swapped_pct", "delta_error_pct", "ratio", "right_to_wrong", "wrong_to_right",
             "wrong_to_wrong", "mcnemar_p")
LATENCY_ROWS = ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "first_invoke_ms")
CALIBRATION_ROWS = ("ece", "mce", "adaptive_ece", "brier", "nll", "mean_confidence", "gap")


def variant_rows(split: str, variant: str, m: VariantRecord) -> list[list]:
    """Scalar metrics of one variant as ``[split, variant, metric, value]`` rows."""
    rows = [[split, variant, f"latency_{k}", m["latency"][k]] for k in LATENCY_ROWS] \
        if m.get("latency") else []
    rows += [[split, variant, k, m[k]]
             for k in ("accuracy", "n", "n_correct", "mean_normalized_entropy")]
    ci = m["accuracy_interval"]
    rows += [[split, variant, "accuracy_ci_low", ci["low"]],
             [split, variant, "accuracy_ci_high", ci["high"]]]
    if "calibration" in m:
        rows += [[split, variant, f"calibration_{k}", m["calibration"][k]]
                 for k in CALIBRATION_ROWS]
    for hist in ("certainty_histogram", "output_histogram"):
        h = m[hist]
        for lo, hi, c in zip(h["edges"][:-1], h["edges"][1:], h["counts"]):
            rows.append([split, variant, f"{hist}[{lo:.2f},{hi:.2f}]", c])
    return rows


def class_rows(split: str, variant: str, m: VariantRecord, names: list[str]) -> list[list]:
    """Issue #12 metrics of one variant: top-5, NLL zeros, seen/unseen, averages, per class.

    Per-class metric names are ``<metric>[<class name>]``. Absent from runs
    written before these metrics (nothing is made up for them).
    """
    rows = [[split, variant, "top5_accuracy", m["top5_accuracy"]]] \
        if "top5_accuracy" in m else []
    cal = m.get("calibration", {})
    rows += [[split, variant, f"calibration_{k}", cal[k]] for k in ("nll_zero_true", "nll_floor")
             if k in cal]
    for part, s in m.get("training_seen", {}).items():
        if s["accuracy"] is not None:  # no images of that part: no accuracy row
            rows.append([split, variant, f"{part}_accuracy", s["accuracy"]])
        rows.append([split, variant, f"{part}_n", s["n"]])
    pc = m.get("per_class")
    if pc:
        for avg in ("macro_avg", "weighted_avg"):
            rows += [[split, variant, f"{avg}_{k}", pc[avg][k]]
                     for k in ("precision", "recall", "f1")]
        for k in ("precision", "recall", "f1", "support"):
            rows += [[split, variant, f"{k}[{n}]", x] for n, x in zip(names, pc[k])]
    return rows


def metrics_rows(record: SplitRecord) -> list[list]:
    """Every metrics.csv row of one split, flattened from its record."""
    split = record["split"]
    names = [str(n) for n in record["class_names"]]
    rows = []
    for v, m in record["variants"].items():
        rows += variant_rows(split, v, m)
        rows += class_rows(split, v, m, names)
    for v, rc in record.get("recall_change", {}).items():
        if v != "reference":
            rows += [[split, v, f"recall_change[{n}]", "" if x is None else x]
                     for n, x in zip(names, rc["change"])]
    for v, sw in record.get("swaps", {}).items():
        if v == "reference":
            continue
        agree = sw.get("agreement_with_float", 1 - sw["swapped"] / sw["n"] if sw["n"] else 1.0)
        rows.append([split, v, "agreement_with_float", agree])
        rows += [[split, v, k, sw[k]] for k in SWAP_ROWS]
    if "attribution" in record:
        rows.append([split, "int8-edgetpu", "identical_top1_with_int8_cpu",
                     record["attribution"]["int8_cpu_vs_edgetpu"]["top1"]])
    return rows


# ------------------------------------------------------------------ writer

#: RunConfig fields that cannot change a run's results (left out of the fingerprint).
NOT_FINGERPRINTED = ("out", "report", "resume", "workers", "num_threads", "prediction_cache",
                     "cache_dir", "download", "download_url")


def config_fingerprint(config: dict, extra: dict | None = None) -> str:
    """SHA-256 of the result-relevant part of a run's config, ``extra`` and the harness version.

    Examples
    --------
    >>> a = config_fingerprint({"model": "signnet", "out": "a"})
    >>> a == config_fingerprint({"model": "signnet", "out": "b"})
    True
    >>> a == config_fingerprint({"model": "signnet", "seed": 1})
    False
    """
    import hashlib
    import json

    from benchmark import __version__
    doc = {"edgetpu_bench": __version__, "extra": extra or {},
           "config": {k: v for k, v in config.items() if k not in NOT_FINGERPRINTED}}
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def default_out_dir(root: Path, prefix: str = "") -> Path:
    """``<root>/runs/<prefix><UTC timestamp>`` not yet taken (nothing is created)."""
    stamp = prefix + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = root / "runs" / stamp
    n = 1
    while out.exists():
        n += 1
        out = root / "runs" / f"{stamp}-{n}"
    return out


def check_out_dir(out: Path, *, resume: bool = False) -> Path:
    """Refuse an ``--out`` that already holds a run, unless resuming (nothing is created)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if not resume and (out / RESULTS).exists():
        raise UsageError(f"{out} already holds a run ({RESULTS}); choose another --out "
                         "(or --resume to keep its finished splits)")
    return out


def split_dir(out: Path, split: str, n_splits: int) -> Path:
    """Where one split's files go: the run directory itself, or ``<out>/<split>``."""
    return Path(out) / split if n_splits > 1 else Path(out)


def _globs(where: str) -> list[str]:
    """fnmatch patterns of the :data:`FILES` kept at ``where`` ("run" or "split")."""
    import re
    out = []
    for f in FILES:
        if where in f.where:
            out += [re.sub(r"<[^>]+>", "*", p.strip()) for p in f.pattern.split(",")]
    return out


def is_temporary(name: str) -> bool:
    """A temporary of an atomic write (:mod:`benchmark.tempfiles`: ``.<name>.tmp-<pid>-<random>``,
    or ``.<name>.<random>`` of older versions).

    >>> is_temporary(".results.json.tmp-12-k2j_x9ab"), is_temporary(".results.json.k2j_x9ab")
    (True, True)
    >>> is_temporary(".lock"), is_temporary("a.csv")
    (False, False)
    """
    import re

    from benchmark.tempfiles import owner_pid
    return name.startswith(".") and (owner_pid(name) is not None or
                                     re.fullmatch(r"\..+\.[A-Za-z0-9_]{8}", name) is not None)


def foreign_files(out: Path, splits: tuple[str, ...]) -> list[str]:
    """Files under ``out`` that :data:`FILES` does not list (relative paths, sorted)."""
    from fnmatch import fnmatch
    out = Path(out)
    top, per_split = _globs("run"), _globs("split")
    subdirs = set(splits) if len(splits) > 1 else set()
    bad = []
    for p in sorted(out.rglob("*")):
        if p.is_dir():
            continue
        rel = p.relative_to(out)
        parts = rel.parts
        inner = Path(*parts[1:]) if len(parts) > 1 and parts[0] in subdirs else None
        name = rel.as_posix()
        if name in (LOCK, RUN_STATE) or is_temporary(p.name):
            continue
        if inner is not None:
            ok = any(fnmatch(inner.as_posix(), g) for g in per_split)
        else:
            ok = any(fnmatch(name, g) for g in top + (per_split if not subdirs else []))
        if not ok:
            bad.append(name)
    return bad


def write_confusion(path: Path, matrix: np.ndarray, class_names) -> None:
    """Rows = true class, columns = predicted class, both labelled by name."""
    rows = [[name, *map(int, row)] for name, row in zip(class_names, matrix)]
    write_csv(path, ["true\\pred", *class_names], rows)


def write_predictions(path: Path, *, probs, labels, index) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, probs=np.asarray(probs, np.float32),
                        labels=np.asarray(labels, np.int64), index=np.asarray(index, np.int64))
    atomic_write_bytes(path, buf.getvalue())


class RunWriter:
    """Writes one run directory: per-split files, then the index of several splits.

    :meth:`open` (called by the first write, or explicitly / as a context
    manager) creates the directory and takes its lock: a directory another
    process is writing is refused, and so is one holding files this harness
    does not write. Without ``resume`` the directory must be new or empty; with
    ``resume`` it must have been started with the same ``fingerprint``
    (:data:`RUN_STATE`), and :meth:`finished_split` hands back the splits
    whose files are complete. A split's ``results.json`` is written last, so a
    split without one is unfinished; its files are removed before it runs
    again and never count as results.
    """

    def __init__(self, out: Path, splits: tuple[str, ...], header: dict, *,
                 resume: bool = False, fingerprint: str | None = None):
        self.out = Path(out)
        self.splits = tuple(splits)
        self.header = header
        self.resume = resume
        self.fingerprint = fingerprint
        self.rows: list[list] = []
        self._lock = None
        self._fresh = False     # this writer created the directory (not a resume)

    # -- opening, locking, checking

    def open(self) -> "RunWriter":
        """Create and lock the directory; refuse it when it is not this run's (UsageError)."""
        if self._lock is not None:
            return self
        fresh, had_lock = not self.out.exists(), (self.out / LOCK).exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = lock_file(self.out / LOCK, f"--out {self.out}")
        try:
            self._check_contents()
            write_json(self.out / RUN_STATE, {"format_version": FORMAT_VERSION,
                                              "fingerprint": self.fingerprint,
                                              "splits": list(self.splits),
                                              "config": self.header.get("config")})
        except BaseException:
            self.close()
            if not had_lock:     # a refused folder keeps nothing of ours
                (self.out / LOCK).unlink(missing_ok=True)
            if fresh:
                _remove_empty_dirs(self.out)
            raise
        self._fresh = fresh and not self.resume
        return self

    def _check_contents(self) -> None:
        bad = foreign_files(self.out, self.splits)
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise UsageError(f"--out {self.out} holds files benchmark.run did not write "
                             f"({shown}); choose another --out")
        state = self.out / RUN_STATE
        others = [p for p in self.out.iterdir() if p.name != LOCK]
        if not self.resume:
            if others:
                raise UsageError(f"--out {self.out} holds files of an earlier run; pass "
                                 "--resume to finish it or choose another --out")
            return
        if others and not state.is_file():
            raise UsageError(f"--resume: {self.out} has no {RUN_STATE} (not started by this "
                             "version's benchmark.run); choose another --out")
        if state.is_file():
            old = read_json_file(state, RUN_STATE).get("fingerprint")
            if old != self.fingerprint:
                raise UsageError(f"--resume: {self.out} was started with another configuration "
                                 f"or other model files (fingerprint {str(old)[:12]}, now "
                                 f"{str(self.fingerprint)[:12]}); choose another --out")

    def close(self) -> None:
        """Release the lock (the directory stays)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "RunWriter":
        return self.open()

    def __exit__(self, exc_type, *exc) -> None:
        self.close()
        if exc_type is not None and self._fresh and self.out.is_dir():
            files = [p for p in self.out.rglob("*") if not p.is_dir()]
            if all(p.parent == self.out and p.name in (RUN_STATE, LOCK) for p in files):
                # failed before it wrote anything (e.g. the data's classes do not match the
                # model's): remove the new directory so the same --out can be used again
                for p in files:
                    p.unlink()
                _remove_empty_dirs(self.out)

    # -- resuming

    def finished_split(self, split: str) -> SplitRecord | None:
        """The record of a split whose files are complete (resume only), else None.

        An unfinished split's files are removed so that none of them is taken
        for a result.
        """
        self.open()
        d = self.split_dir(split)
        rec = self._complete_record(d, split) if self.resume else None
        if rec is not None:
            self.rows += metrics_rows(rec)
            return rec
        self._remove_split_files(d)
        return None

    def _complete_record(self, d: Path, split: str) -> SplitRecord | None:
        try:
            rec = check_split_record(_read_json(d / RESULTS), d / RESULTS)
        except DataError:
            return None
        if rec["split"] != split or (len(self.splits) > 1 and "splits" in rec):
            return None
        sr = SplitRun(rec, d)
        for v in rec["variants"]:
            if not (sr.has_predictions(v) and sr.has_confusion(v)):
                return None
            try:
                sr.predictions(v)
                sr.confusion(v)
            except DataError:
                return None
        return rec

    def _remove_split_files(self, d: Path) -> None:
        from fnmatch import fnmatch
        if not d.is_dir():
            return
        globs = _globs("split")
        for p in sorted(d.rglob("*"), reverse=True):
            rel = p.relative_to(d).as_posix()
            if p.is_file() and rel not in (LOCK, RUN_STATE) and (
                    is_temporary(p.name) or any(fnmatch(rel, g) for g in globs)):
                p.unlink()

    # -- writing

    def split_dir(self, split: str) -> Path:
        return split_dir(self.out, split, len(self.splits))

    def sweep_model_path(self, split: str, model: str, bits: int) -> Path:
        return self.model_path(split, sweep_model_name(model, bits))

    def model_path(self, split: str, file_name: str) -> Path:
        """Where a model generated for a split's sweep variant goes (``models/<file_name>``)."""
        self.open()
        return self.split_dir(split) / MODELS_DIR / file_name

    def write_split(self, record: SplitRecord, arrays: dict[str, dict]) -> Path:
        """Write one split: confusion CSVs and predictions per variant, results.json, metrics.csv.

        ``arrays[variant]`` holds ``confusion`` and ``probs``/``labels``/``index``.
        """
        self.open()
        d = self.split_dir(record["split"])
        for v, a in arrays.items():
            write_confusion(d / confusion_name(v), a["confusion"], record["class_names"])
            write_predictions(d / predictions_name(v), probs=a["probs"], labels=a["labels"],
                              index=a["index"])
        rows = metrics_rows(record)
        write_csv(d / METRICS, METRICS_HEADER, rows)
        write_json(d / RESULTS, dict(self.header, **record))   # last: the split is complete
        self.rows += rows
        return d

    def finish(self) -> None:
        """With several splits: the top-level metrics.csv and results.json index."""
        self.open()
        if len(self.splits) > 1:
            write_csv(self.out / METRICS, METRICS_HEADER, self.rows)
            write_json(self.out / RESULTS, dict(self.header, splits={
                s: f"{s}/{RESULTS}" for s in self.splits}))


def _remove_empty_dirs(root: Path) -> None:
    """Remove ``root`` and the empty folders in it; anything holding a file stays."""
    for d in sorted((p for p in Path(root).rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    if Path(root).is_dir() and not any(Path(root).iterdir()):
        Path(root).rmdir()


class _Lock:
    def __init__(self, f):
        self.f = f

    def close(self) -> None:
        self.f.close()          # closing the descriptor releases the flock


def lock_file(path: Path, what: str) -> _Lock:
    """An exclusive ``flock`` on ``path`` held until ``.close()``; UsageError when taken."""
    import fcntl
    import os
    f = open(path, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise UsageError(f"{what} is being written by another process (pid {pid}); wait for it "
                         "or choose another --out") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return _Lock(f)


# ------------------------------------------------------------------ reader

_VARIANT_KEYS = ("accuracy", "accuracy_interval", "n", "mean_normalized_entropy",
                 "certainty_histogram", "output_histogram")


@dataclass
class SplitRun:
    """One split of a saved run: its record and where its files are."""

    record: SplitRecord
    dir: Path

    @property
    def variants(self) -> list[str]:
        return list(self.record["variants"])

    def has_predictions(self, variant: str) -> bool:
        return (self.dir / predictions_name(variant)).is_file()

    def has_confusion(self, variant: str) -> bool:
        return (self.dir / confusion_name(variant)).is_file()

    def predictions(self, variant: str) -> dict[str, np.ndarray]:
        """``probs``, ``labels``, ``index`` of a variant (DataError if unreadable)."""
        path = self.dir / predictions_name(variant)
        k = len(self.record["class_names"])
        try:
            with np.load(path) as z:
                out = {key: z[key] for key in ("probs", "labels", "index")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: unreadable predictions ({e})") from None
        if out["probs"].ndim != 2 or out["probs"].shape[1] != k:
            raise DataError(f"{path}: expected probs of shape (n, {k}), "
                            f"got {out['probs'].shape}")
        return out

    def confusion(self, variant: str) -> np.ndarray:
        """The k x k count matrix of a variant (DataError if malformed)."""
        path = self.dir / confusion_name(variant)
        k = len(self.record["class_names"])
        try:
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            cm = np.array([[int(v) for v in r[1:]] for r in rows[1:]], dtype=np.int64)
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: unreadable confusion matrix ({e})") from None
        if cm.shape != (k, k):
            raise DataError(f"{path}: expected a {k} x {k} confusion matrix, got shape "
                            f"{cm.shape}")
        return cm


@dataclass
class Run:
    """A saved run: the top-level results.json and its splits."""

    dir: Path
    top: dict
    splits: dict[str, SplitRun] = field(default_factory=dict)

    @property
    def format_version(self) -> int:
        return int(self.top.get("format_version", 1))

    def records(self) -> dict[str, SplitRecord]:
        return {s: sr.record for s, sr in self.splits.items()}

    def __iter__(self) -> Iterator[tuple[str, SplitRun]]:
        return iter(self.splits.items())


def _read_json(path: Path) -> dict:
    return read_json_file(path, f"run {RESULTS}", not_object=f"not a benchmark.run {RESULTS}")


def _check_version(data: dict, where: Path) -> None:
    v = data.get("format_version", 1)
    if not isinstance(v, int) or v < OLDEST_READABLE:
        raise DataError(f"{where}: unknown format_version {v!r}")
    if v > FORMAT_VERSION:
        raise DataError(f"{where}: run format_version {v} needs a newer edgetpu-bench "
                        f"(this one reads versions {OLDEST_READABLE}..{FORMAT_VERSION})")


def check_split_record(res, where) -> SplitRecord:
    """Return ``res`` if it looks like one split's results.json, else raise DataError."""
    if not isinstance(res, dict) or not isinstance(res.get("variants"), dict) \
            or not res["variants"] or not isinstance(res.get("class_names"), list) \
            or not isinstance(res.get("split"), str):
        raise DataError(f"{where}: not a benchmark.run {RESULTS} (no split/variants/"
                        "class_names)")
    for v, m in res["variants"].items():
        missing = [k for k in _VARIANT_KEYS if not isinstance(m, dict) or k not in m]
        if missing:
            raise DataError(f"{where}: variant {v!r} lacks {', '.join(missing)}")
    return res


def read_run(run_dir: Path) -> Run:
    """Read a run directory written by ``benchmark.run`` (any readable format_version).

    Raises
    ------
    DataError
        When results.json is missing, unreadable, of an unknown version, or not
        a run's results.
    """
    run_dir = Path(run_dir)
    path = run_dir / RESULTS
    if not path.is_file():
        raise DataError(f"{run_dir} is not a run directory (no {RESULTS})")
    top = _read_json(path)
    _check_version(top, path)
    run = Run(dir=run_dir, top=top)
    if "splits" in top:
        if not isinstance(top["splits"], dict) or not top["splits"]:
            raise DataError(f"{path}: 'splits' must map split names to files")
        for s, rel in top["splits"].items():
            p = run_dir / str(rel)
            rec = _read_json(p)
            _check_version(rec, p)
            run.splits[s] = SplitRun(check_split_record(rec, p), p.parent)
    else:
        rec = check_split_record(top, path)
        run.splits[rec["split"]] = SplitRun(rec, run_dir)
    return run


# ------------------------------------------------------------------ docs


def file_table() -> str:
    """The Markdown table of :data:`FILES` (docs/run-directory.md embeds it)."""
    lines = ["| file | where | written by | what |", "|---|---|---|---|"]
    for f in FILES:
        lines.append(f"| `{f.pattern}` | {f.where} | {f.written_by} | {f.description} |")
    return "\n".join(lines)


def _type_name(tp) -> str:
    name = (getattr(tp, "__forward_arg__", None) or getattr(tp, "__name__", None)
            or str(tp).replace("typing.", ""))
    return name.replace(" | ", " or ")   # a "|" would end the Markdown cell


def record_table() -> str:
    """The Markdown table of the records and their fields (docs/run-directory.md embeds it)."""
    lines = ["| record | what | fields |", "|---|---|---|"]
    for rec in RECORDS:
        doc = (rec.__doc__ or "").strip().splitlines()[0].replace("``", "`")
        fields = ", ".join(f"`{n}`: {_type_name(t)}" for n, t in rec.__annotations__.items())
        lines.append(f"| {rec.__name__} | {doc} | {fields} |")
    return "\n".join(lines)


def docs_block() -> str:
    """What goes between the ``rundir-table`` markers of docs/run-directory.md."""
    return (f"Format version {FORMAT_VERSION} (reads {OLDEST_READABLE}..{FORMAT_VERSION}).\n\n"
            f"{file_table()}\n\n{record_table()}\n")


BEGIN_MARK = "<!-- rundir-table:begin -->"
END_MARK = "<!-- rundir-table:end -->"


def embedded_block(text: str) -> str | None:
    """The text between the markers of a document (None when it has none)."""
    if BEGIN_MARK not in text or END_MARK not in text:
        return None
    return text.split(BEGIN_MARK, 1)[1].split(END_MARK, 1)[0].strip("\n") + "\n"


def update_doc(path: Path) -> bool:
    """Rewrite the generated block of ``path``; True when it changed."""
    text = Path(path).read_text()
    if embedded_block(text) is None:
        raise UsageError(f"{path} has no {BEGIN_MARK} ... {END_MARK} block")
    head, rest = text.split(BEGIN_MARK, 1)
    tail = rest.split(END_MARK, 1)[1]
    new = f"{head}{BEGIN_MARK}\n{docs_block()}{END_MARK}{tail}"
    if new != text:
        atomic_write_bytes(Path(path), new.encode())
    return new != text


if __name__ == "__main__":
    if sys.argv[1:2] == ["--update"] and len(sys.argv) == 3:
        print(f"{sys.argv[2]}: {'updated' if update_doc(Path(sys.argv[2])) else 'up to date'}")
    else:
        sys.stdout.write(docs_block())
