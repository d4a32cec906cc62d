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


def _merged_variant(v: str, shard_runs, split: str, bins: int):
    from benchmark.evaluate import Predictions, VariantResult, summarize
    from benchmark.variants import from_record
    parts = [sr.splits[split].predictions(v) for sr in shard_runs]
    recs = [sr.splits[split].record["variants"][v] for sr in shard_runs]
    p = Predictions(probs=np.concatenate([q["probs"] for q in parts]),
                    labels=np.concatenate([q["labels"] for q in parts]),
                    index=np.concatenate([q["index"] for q in parts]),
                    seconds=float(sum(r["inference_seconds"] for r in recs)))
    k = len(shard_runs[0].splits[split].record["class_names"])
    summary, cm = summarize(p.probs, p.labels, num_classes=k, bins=bins)
    result = VariantResult(variant=from_record(v, recs[0]), predictions=p, summary=summary,
                           confusion=cm, runtime=recs[0]["runtime"],
                           wall_seconds=float(sum(r["wall_seconds"] for r in recs)))
    rec = dict(recs[0], **summary, inference_seconds=round(p.seconds, 4),
               wall_seconds=round(result.wall_seconds, 4),
               images_per_second=round(p.images_per_second, 2))
    return result, rec


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
    results, records = {}, {}
    for v in rec0["variants"]:
        results[v], records[v] = _merged_variant(v, runs, split, int(config.get("bins", 20)))
    comparison = compare_variants(results, seed=int(config.get("seed", 0)))
    record = {k: x for k, x in rec0.items() if k not in _COMPARISON + _HEADER}
    n = int(results[next(iter(results))].predictions.labels.size)
    record.update(variants=records, n_eval=n, **comparison.record())
    cfg = dict(config, shard=None)
    writer = RunWriter(out, (split,), run_header(cfg, environment()), resume=True,
                       fingerprint=config_fingerprint(cfg, {"merged_from": len(runs)}))
    with writer:
        writer.write_split(record, {v: r.arrays() for v, r in results.items()})
        writer.finish()
    return n * len(results)
