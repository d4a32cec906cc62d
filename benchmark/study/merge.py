"""Merge the shards of a cell into one run directory, equal to the unsharded run.

Shard ``i`` of ``n`` evaluates the ``i``-th contiguous piece of the cell's
images (``RunConfig.shard = "i/n"``). The merged run concatenates each
variant's predictions in shard order (the rows of the unsharded run, in its
order), recomputes every metric and comparison from them with the same
functions and seed as ``benchmark.run``, and copies the provenance (dataset,
calibration images, artifacts) from the first shard. Timings are sums.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.errors import DataError

#: Record keys recomputed by the merge (the rest is the first shard's).
_COMPARISON = ("agreement", "swaps", "attribution")
_HEADER = ("format_version", "config", "environment", "created")


def _local_model(variant, shard_dir: Path):
    """The variant with its model file here (a shipped shard's ``w<b>`` model is in its dir)."""
    if variant.path is not None and not variant.path.is_file():
        here = shard_dir / "models" / variant.path.name
        if here.is_file():
            return variant.with_path(here)
    return variant


def _merged_variant(v: str, shard_runs, split: str, bins: int, logits: bool):
    """``(VariantResult over every shard, the first shard's record)`` of one variant."""
    from benchmark import evaluate
    from benchmark.evaluate import Predictions, VariantResult, summarize
    from benchmark.variants import from_record
    parts = [sr.splits[split].predictions(v) for sr in shard_runs]
    recs = [sr.splits[split].record["variants"][v] for sr in shard_runs]
    p = Predictions(probs=np.concatenate([q["probs"] for q in parts]),
                    labels=np.concatenate([q["labels"] for q in parts]),
                    index=np.concatenate([q["index"] for q in parts]),
                    seconds=float(sum(r["inference_seconds"] for r in recs)))
    k = len(shard_runs[0].splits[split].record["class_names"])
    variant = _local_model(from_record(v, recs[0]), shard_runs[0].splits[split].dir)
    kw = {}
    if hasattr(evaluate, "output_step"):      # the NLL floor of a quantized output
        kw["output_step"] = evaluate.output_step(variant, logits)
    summary, cm = summarize(p.probs, p.labels, num_classes=k, bins=bins, **kw)
    result = VariantResult(variant=variant, predictions=p, summary=summary,
                           confusion=cm, runtime=recs[0]["runtime"],
                           wall_seconds=float(sum(r["wall_seconds"] for r in recs)))
    return result, recs[0]


def _variant_record(r, rec0: dict) -> dict:
    """The first shard's record with the merged metrics and summed timings."""
    return dict(rec0, **r.summary, inference_seconds=round(r.predictions.seconds, 4),
                wall_seconds=round(r.wall_seconds, 4),
                images_per_second=round(r.predictions.images_per_second, 2))


def _model_entry(config: dict):
    from benchmark.config import make_config
    from benchmark.plan import plan_run
    return plan_run(make_config(_plain(config))).entry


def _plain(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in ("out", "shard", "resume")}


def _split_extras(config: dict, results: dict) -> dict:
    """The pipeline's split-level metrics (``evaluate.split_metrics``) over the merged results."""
    from benchmark import evaluate
    fn = getattr(evaluate, "split_metrics", None)
    if fn is None:
        return {}
    from benchmark.config import make_config
    from benchmark.pipeline import _artifacts, load_split_dataset
    from benchmark.plan import plan_run
    cfg = make_config(_plain(config))
    plan = plan_run(cfg)
    sp = plan.splits[0]
    ds = load_split_dataset(cfg, plan, sp, None)
    _, meta, _ = _artifacts(cfg, plan, sp, ds, None)
    return fn(results, ds, meta)


def merge_shards(shard_dirs: list[Path], out: Path, config: dict) -> int:
    """Write the merged run of ``shard_dirs`` into ``out``; the number of images merged."""
    from benchmark.compare import compare_variants
    from benchmark.results import environment
    from benchmark.rundir import RunWriter, config_fingerprint, read_run, run_header
    runs = [read_run(d) for d in shard_dirs]
    split = next(iter(runs[0].splits))
    rec0 = runs[0].splits[split].record
    if any(list(r.splits) != [split] or r.splits[split].variants != list(rec0["variants"])
           for r in runs):
        raise DataError(f"shards of {out} do not hold the same split and variants")
    logits = _model_entry(config).outputs == "logits"
    merged = {v: _merged_variant(v, runs, split, int(config.get("bins", 20)), logits)
              for v in rec0["variants"]}
    results = {v: r for v, (r, _) in merged.items()}
    comparison = compare_variants(results, seed=int(config.get("seed", 0)))
    extras = _split_extras(config, results)       # may add to each variant's summary
    record = {k: x for k, x in rec0.items() if k not in _COMPARISON + _HEADER}
    n = int(next(iter(results.values())).predictions.labels.size)
    record.update(variants={v: _variant_record(r, r0) for v, (r, r0) in merged.items()},
                  n_eval=n, **comparison.record())
    record.update(extras)
    cfg = dict(config, shard=None)
    writer = RunWriter(out, (split,), run_header(cfg, environment()), resume=True,
                       fingerprint=config_fingerprint(cfg, {"merged_from": len(runs)}))
    with writer:
        writer.write_split(record, {v: r.arrays() for v, r in results.items()})
        writer.finish()
    return n * len(results)
