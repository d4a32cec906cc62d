"""The run pipeline: plan -> (convert) -> evaluate -> compare -> persist -> present.

Each stage is its own module; this one only sequences them for one run:

- :mod:`benchmark.plan` validates the configuration and every file (nothing written);
- :mod:`benchmark.convcache` converts ``--weights`` / observer variants once (cached);
- :mod:`benchmark.evaluate` runs each variant and returns a result object;
- :mod:`benchmark.compare` compares float vs quantized and CPU vs Edge TPU;
- :mod:`benchmark.rundir` writes the run directory;
- :mod:`benchmark.report` prints the tables and writes the report.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark import evaluate
from benchmark.compare import Comparison, compare_variants
from benchmark.config import RunConfig
from benchmark.errors import BackendUnavailable, BenchError, DataError, UsageError
from benchmark.evaluate import EvalSettings, VariantResult
from benchmark.plan import RunPlan, SplitPlan, plan_run
from benchmark.predcache import EvalContext, PredictionCache, cache_dir
from benchmark.results import file_sha256
from benchmark.rundir import RunWriter, run_header
from benchmark.variants import Variant

Log = Callable[[str], None] | None
#: Variant kinds whose models the run makes itself (no file beside the shipped ones).
GENERATED = ("weights", "activations", "calibration")


@dataclass
class SplitResult:
    """One split's results in memory: per-variant results, comparison and the saved record."""

    split: str
    record: dict
    variants: dict[str, VariantResult] = field(default_factory=dict)
    comparison: Comparison = field(default_factory=Comparison)
    dir: Path | None = None


@dataclass
class RunResult:
    out: Path
    splits: dict[str, SplitResult] = field(default_factory=dict)

    def records(self) -> dict[str, dict]:
        return {s: r.record for s, r in self.splits.items()}


def subset(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """``limit`` evenly spaced entries of ``indices`` (all when limit is None or larger)."""
    if limit is None or limit >= indices.size:
        return indices
    pos = np.unique(np.linspace(0, indices.size - 1, limit).round().astype(np.int64))
    return indices[pos]


def shard_of(indices: np.ndarray, shard: str | None) -> np.ndarray:
    """The ``i``-th of ``n`` contiguous pieces of ``indices`` for ``shard="i/n"`` (all if None).

    >>> shard_of(np.arange(5), "1/2"), shard_of(np.arange(5), None)
    (array([3, 4]), array([0, 1, 2, 3, 4]))
    """
    if shard is None:
        return indices
    from benchmark.config import shard_numbers
    i, n = shard_numbers(shard)
    return np.array_split(indices, n)[i]


def load_split_dataset(cfg: RunConfig, plan: RunPlan, sp: SplitPlan, log: Log):
    """Download (when asked) and load the split's dataset, as the model's input images.

    A declared centre crop or BGR order (:class:`~benchmark.preprocess.Preprocessing`)
    is a view of the loaded images (no copy), under its own cache key.
    """
    from benchmark.datasets.registry import load_dataset
    if cfg.download:
        from benchmark.datasets.download import download_dataset
        download_dataset(sp.dataset, cfg.data_dir, url=cfg.download_url,
                         progress=log is not None, log=log)
    pre = plan.preprocessing
    ds = load_dataset(sp.dataset, image_size=pre.load_size() if pre else plan.entry.input_size,
                      seed=cfg.seed, options=sp.dataset_options,
                      cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None,
                      verbose=log is not None, data_dir=sp.data_dir,
                      on_bad_image=cfg.on_bad_image, num_classes=cfg.num_classes)
    if pre is None or pre.is_identity_view():
        return ds
    meta = dict(ds.meta, cache_key=f"{ds.meta.get('cache_key')}+{pre.view_key()}")
    return dataclasses.replace(ds, images=pre.view(ds.images), meta=meta)


def _artifacts(cfg: RunConfig, plan: RunPlan, sp: SplitPlan, ds, log: Log):
    """``(artifact dir, train_meta, variants with paths)`` of a split, converting if needed."""
    if sp.convert_from is None:
        return sp.artifacts, sp.train_meta, list(sp.variants)
    from benchmark.convcache import ensure_converted
    art, meta = ensure_converted(plan.entry, sp.split, ds, sp.convert_from, sp.train_meta,
                                 observer=cfg.act_observer, seed=cfg.seed,
                                 data_dir=cfg.data_dir, cache_dir=cfg.cache_dir, log=log,
                                 user=plan.user)
    variants = [v if v.path is not None or v.kind in GENERATED
                else v.with_path(art / v.file_name(plan.entry.name)) for v in sp.variants]
    return art, meta, variants


def _sweep_models(writer: RunWriter, split: str, model: str, art: Path,
                  variants: list[Variant]) -> list[Variant]:
    """Write the ``w<b>`` and ``a<b>`` models into the run directory; the variants with paths."""
    from benchmark.quant.actgrid import requantize_activations
    from benchmark.quant.bitsweep import requantize_weights
    from benchmark.results import atomic_write_bytes
    src = art / f"{model}_int8.tflite"
    out = []
    for v in variants:
        if v.kind in ("weights", "activations"):
            what = "weight" if v.kind == "weights" else "activation"
            if not src.is_file():
                raise DataError(f"model file not found: {src} (the {what}-bit sweep starts "
                                "from it)")
            if v.kind == "weights":
                path, blob = (writer.sweep_model_path(split, model, v.weight_bits),
                              requantize_weights(src, v.weight_bits))
            else:
                path, blob = (writer.model_path(split, v.file_name(model)),
                              requantize_activations(src, v.act_bits))
            atomic_write_bytes(path, blob)
            v = v.with_path(path)
        out.append(v)
    return out


def _calibration_models(cfg: RunConfig, plan: RunPlan, sp: SplitPlan, ds,
                        variants: list[Variant], log: Log) -> list[Variant]:
    """The calibration-sweep variants with their converted int8 models (cached conversions)."""
    if sp.calibrate_from is None:
        return variants
    from benchmark.convcache import ensure_calibrated
    wanted = [v for v in variants if v.kind == "calibration"]
    paths = ensure_calibrated(plan.entry, sp.split, ds, sp.calibrate_from,
                              [(v.cal_size, v.cal_seed) for v in wanted],
                              spec=cfg.calibration_from, observer=cfg.act_observer,
                              seed=cfg.seed, pretrained=bool(cfg.weights),
                              cache_dir=cfg.cache_dir, log=log)
    return [v.with_path(paths[(v.cal_size, v.cal_seed)]) if v.kind == "calibration" else v
            for v in variants]


def _eval_settings(cfg: RunConfig) -> EvalSettings:
    return EvalSettings(batch_size=cfg.batch_size, num_threads=cfg.num_threads,
                        workers=cfg.workers, edgetpu_device=cfg.edgetpu_device, bins=cfg.bins,
                        latency=cfg.latency, latency_warmup=cfg.latency_warmup, seed=cfg.seed)


def _evaluate_one(cfg: RunConfig, ctx: EvalContext, cache: PredictionCache | None, v: Variant,
                  sha: str | None, ds, split: str, log: Log) -> tuple[VariantResult, bool]:
    """``(result, served from the cache)``.

    CPU variants are looked up in the prediction cache unless it is off or this
    is a latency run; fresh CPU results are stored in it.
    """
    desc = ctx.describe(v, sha) if cache is not None and sha is not None else None
    if desc is not None and not cfg.latency:
        r = cache.load(desc, v, ds, ctx.indices, ctx.settings)
        if r is not None:
            return r, True
    r = evaluate.evaluate_variant(v, ds, ctx.indices, preprocess=ctx.preprocess,
                                  logits=ctx.logits, settings=ctx.settings)
    if desc is not None:
        cache.store(desc, r)
    return r, False


def _log_result(split: str, r: VariantResult, note: dict, log: Log) -> None:
    if not log:
        return
    v, p = r.variant, r.predictions
    lat = f", {r.latency['mean_ms']:.3f} ms/invoke" if r.latency else ""
    how = " (cached predictions; the timing is their run's)" if note.get("cached") else ""
    log(f"[{split}] {v.name:12s} on {v.device}: {p.labels.size} images, "
        f"accuracy {r.summary['accuracy']:.4f}, {p.images_per_second:.0f} img/s{lat}{how}")


def _tpu_failure(cfg: RunConfig, split: str, v: Variant, e: BenchError) -> dict:
    """The note of an Edge TPU variant that failed (crash, hang, delegate error, not compiled).

    The other variants go on; ``auto`` falls back to the CPU, ``edgetpu`` ends
    the run with the error after the CPU results are written (:func:`execute`).
    Says so on stdout, also with ``--quiet``: the run's results change.
    """
    fallback = cfg.device == "auto"
    print(f"[{split}] {v.name}: {e}; " + ("auto: falling back to the CPU (this run has no "
          "Edge TPU results)" if fallback else "the CPU variants' results are kept"), flush=True)
    return {"error": str(e), "exit_code": e.exit_code, "fallback": "cpu" if fallback else None}


def _evaluate_all(cfg: RunConfig, plan: RunPlan, split: str, ds, eval_idx,
                  variants: list[Variant], log: Log) -> tuple[dict[str, VariantResult], dict]:
    """Every variant's result, and notes for its record (``same_model_as``, ``cached``).

    A variant whose model bytes and device equal an earlier one's is not
    evaluated again: it gets that variant's predictions under its own name.
    An Edge TPU variant that fails has a note (:func:`_tpu_failure`) and no result.
    """
    if any(v.device == "edgetpu" for v in variants):
        from benchmark.backends.edgetpu import parse_device_spec
        parse_device_spec(cfg.edgetpu_device)    # a typo fails before anything is evaluated
    entry = plan.entry
    ctx = EvalContext(ds.meta.get("cache_key"), np.asarray(eval_idx, np.int64),
                      entry.preprocess, entry.outputs == "logits", _eval_settings(cfg))
    cache = PredictionCache(cache_dir(cfg.cache_dir), log) if cfg.prediction_cache else None
    results, notes, seen = {}, {}, {}
    for v in variants:
        if v.kind == "compiled" and not v.path.is_file() and cfg.device == "auto":
            if log:
                log(f"[{split}] auto: no compiled {v.path.name}; skipping the Edge TPU")
            continue
        sha = file_sha256(v.path) if v.path is not None and v.path.is_file() else None
        same = seen.get((v.device, sha)) if sha is not None else None
        if same is not None:
            results[v.name] = dataclasses.replace(results[same], variant=v)
            notes[v.name] = {"same_model_as": same, **{k: x for k, x in notes[same].items()
                                                       if k == "cached"}}
            if log:
                log(f"[{split}] {v.name:12s} is byte-identical to {same} (sha256 {sha[:12]}): "
                    "evaluated once, reported under both names")
            continue
        try:
            r, cached = _evaluate_one(cfg, ctx, cache, v, sha, ds, split, log)
        except BenchError as e:
            if v.device != "edgetpu" or isinstance(e, UsageError):   # a typo is no fallback
                raise
            notes[v.name] = _tpu_failure(cfg, split, v, e)
            continue
        results[v.name], notes[v.name] = r, ({"cached": True} if cached else {})
        if sha is not None:
            seen[(v.device, sha)] = v.name
        _log_result(split, r, notes[v.name], log)
    return results, notes


def _split_record(cfg: RunConfig, plan: RunPlan, split: str, ds, art: Path, meta: dict,
                  sizes: tuple[int, int], results: dict[str, VariantResult],
                  comparison: Comparison, notes: dict[str, dict]) -> dict:
    from benchmark.results import read_json_file
    rec = {"split": split, "dataset": ds.name, "dataset_meta": ds.meta,
           "n_train": sizes[0], "n_eval": sizes[1], "class_names": list(ds.class_names),
           "model_artifacts": str(art),
           "variants": {v: dict(r.record(), **notes.get(v, {})) for v, r in results.items()}}
    rep_path = art / "representative_indices.json"
    if rep_path.is_file():
        # Which images calibrated the int8 activation ranges (dataset rows).
        rep = read_json_file(rep_path, "representative set")
        rec["calibration_images"] = {"size": rep["size"], "rows": rep["indices"],
                                     "seed": rep["seed"]}
    if meta.get("source") == "pretrained":
        rec["model_source"] = {k: meta[k] for k in ("weights", "weights_sha256")}
    if cfg.act_observer != "minmax" or meta.get("source") == "pretrained":
        from benchmark.artifacts import read_convert_meta
        rec["act_observer"] = read_convert_meta(art / "convert_meta.json").observer
    rec.update(comparison.record())
    rec["device_resolved"] = plan.device
    failed = [dict(n, variant=v) for v, n in notes.items() if v not in results and "error" in n]
    if failed:   # the Edge TPU failed: say so, and what the run fell back to
        rec["edgetpu_failure"] = failed[0]
        rec["device_resolved"] = failed[0]["fallback"] or plan.device
    return rec


def run_split(plan: RunPlan, sp: SplitPlan, writer: RunWriter, log: Log) -> SplitResult:
    """Evaluate every variant of one split and persist it (kept as it is when resumed)."""
    cfg = plan.config
    done = writer.finished_split(sp.split)
    if done is not None:
        if log:
            log(f"[{sp.split}] --resume: kept the finished split in {writer.split_dir(sp.split)}")
        return SplitResult(split=sp.split, record=done, dir=writer.split_dir(sp.split))
    ds = load_split_dataset(cfg, plan, sp, log)
    art, meta, variants = _artifacts(cfg, plan, sp, ds, log)
    from benchmark.matching import check_results, match_model
    plan, ds, matched = match_model(plan, ds, meta, variants, log, split=sp.split)
    train_idx, eval_idx = ds.split(sp.split, seed=cfg.seed)
    eval_idx = shard_of(subset(eval_idx, cfg.limit), cfg.shard)
    from benchmark.preflight import check_split_room
    check_split_room(writer.split_dir(sp.split), n_images=int(eval_idx.size),
                     num_classes=ds.num_classes, n_variants=len(variants))
    variants = _sweep_models(writer, sp.split, plan.entry.name, art, variants)
    variants = _calibration_models(cfg, plan, sp, ds, variants, log)
    results, notes = _evaluate_all(cfg, plan, sp.split, ds, eval_idx, variants, log)
    from benchmark.datasets.cache import release
    release(ds.images)   # mapped image pages still resident leave the RSS (issue #17)
    check_results(plan, results)
    comparison = compare_variants(results, seed=cfg.seed)
    extra = evaluate.split_metrics(results, ds, meta)   # before the variant records are made
    record = _split_record(cfg, plan, sp.split, ds, art, meta,
                           (int(train_idx.size), int(eval_idx.size)), results, comparison, notes)
    record.update(extra)
    record.update(matched)   # class map, output kind, preprocessing, a user model's files
    d = writer.write_split(record, {v: r.arrays() for v, r in results.items()})
    return SplitResult(split=sp.split, record=record, variants=results,
                       comparison=comparison, dir=d)


def execute(plan: RunPlan, log: Log = None) -> RunResult:
    """Run a validated plan: every split evaluated and written into ``plan.out``."""
    from benchmark.results import environment
    for note in plan.notes:
        if log:
            log(note)
    splits = tuple(sp.split for sp in plan.splits)
    writer = RunWriter(plan.out, splits, run_header(plan.config.to_dict(), environment()),
                       resume=plan.config.resume, fingerprint=plan_fingerprint(plan))
    result = RunResult(out=plan.out)
    with writer:
        for sp in plan.splits:
            result.splits[sp.split] = run_split(plan, sp, writer, log)
        writer.finish()
    _raise_tpu_failure(result)
    return result


def _raise_tpu_failure(result: RunResult) -> None:
    """``--device edgetpu`` and the Edge TPU failed: its error, once the CPU results are written."""
    for sr in result.splits.values():
        f = sr.record.get("edgetpu_failure")
        if f and not f["fallback"]:
            cls = {2: UsageError, 3: DataError}.get(f["exit_code"], BackendUnavailable)
            raise cls(f"{f['error']} (the CPU variants' results are in {result.out})")


def plan_fingerprint(plan: RunPlan) -> str:
    """The run's :func:`~benchmark.rundir.config_fingerprint`: its config and input file bytes."""
    from benchmark.rundir import config_fingerprint
    files = {}
    for sp in plan.splits:
        paths = [v.path for v in sp.variants if v.path is not None]
        paths += [p for p in (sp.convert_from, sp.calibrate_from) if p is not None]
        files[sp.split] = {str(p): file_sha256(p) for p in paths if Path(p).is_file()}
    return config_fingerprint(plan.config.to_dict(), {"files": files, "device": plan.device})


def present(result: RunResult, *, tables: bool, report: bool, log: Log,
            figure_cache: Path | None = None) -> None:
    """Tables on stdout and the HTML/Markdown report (figures shared across runs through
    ``figure_cache``, see :mod:`benchmark.figcache`)."""
    from benchmark.report import print_tables, write_report
    if tables:
        print_tables(result.records())
    if report:
        html_path, _ = write_report([result.out], figure_cache=figure_cache)
        if log:
            log(f"report: {html_path}")
    if log:
        log(f"results in {result.out}")


def run(cfg: RunConfig, *, quiet: bool = False, tables: bool = True,
        default_prefix: str = "") -> tuple[Path, dict]:
    """Plan, execute and present one run; ``(run directory, {split: record})``."""
    result = run_result(cfg, quiet=quiet, tables=tables, default_prefix=default_prefix)
    return result.out, result.records()


def run_result(cfg: RunConfig, *, quiet: bool = False, tables: bool = True,
               default_prefix: str = "") -> RunResult:
    """Like :func:`run`, returning the in-memory :class:`RunResult`."""
    log = None if quiet else (lambda msg: print(msg, file=sys.stderr))
    from benchmark import progress
    progress.set_quiet(quiet)
    plan = plan_run(cfg, default_prefix=default_prefix)
    result = execute(plan, log)
    from benchmark.figcache import shared_dir
    present(result, tables=tables, report=cfg.report, log=log,
            figure_cache=shared_dir(cfg.cache_dir))
    return result
