"""No redundant evaluation: duplicate model files and the on-disk prediction cache.

Two mechanisms, both used by :mod:`benchmark.pipeline`:

- **Duplicates within a run.** A variant whose model bytes (SHA-256) and
  device equal an already evaluated variant's is not evaluated again: it gets
  the same predictions under its own name, and its record notes
  ``same_model_as`` (a weight-bit sweep's ``w8`` is byte-identical to
  ``int8``).
- **Predictions across runs.** The predictions of a CPU variant are stored
  under ``<cache dir>/predictions/<key>.npz`` (probs, labels, index) and
  ``<key>.json`` (the description the key was made from, timings, runtime
  info, the ``.npz``'s SHA-256). The key covers everything that can change
  the predictions or the record: the model's SHA-256, the dataset
  fingerprint (``ds.meta["cache_key"]``), the evaluated indices, the
  preprocessing, the logits flag, the interpreter package and version, the
  thread/batch/worker settings and the core count. Metrics are recomputed
  from the cached arrays, so a hit gives the same record as a fresh
  evaluation except the timings, which are the original run's and marked
  ``"cached": true``.

The Edge TPU and latency runs are never served from the cache (latency runs
still store their predictions). Both files are written atomically; an entry
that is incomplete, damaged or made for another description is ignored and
recomputed, never an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from benchmark.evaluate import EvalSettings, Predictions, VariantResult, output_step, summarize
from benchmark.variants import Variant

#: Bump when the stored layout or the meaning of a key changes.
FORMAT = 1
SUBDIR = "predictions"
#: EvalSettings fields that cannot change the predictions or the runtime record (metrics are
#: recomputed from the cached arrays; latency runs bypass the cache). Every other field,
#: including ones added later (threads, batch, workers...), is part of the key.
NOT_IN_KEY = ("bins", "calibration_bins", "latency", "latency_warmup", "edgetpu_device", "seed")

Log = Callable[[str], None] | None


def indices_sha256(indices: np.ndarray) -> str:
    """SHA-256 of the evaluated dataset rows (as little-endian int64)."""
    return hashlib.sha256(np.ascontiguousarray(indices, "<i8").tobytes()).hexdigest()


def cache_dir(cache_dir_option: str | Path | None) -> Path:
    """Where predictions are cached: ``<--cache-dir or the default cache>/predictions``."""
    from benchmark.paths import cache_root
    return (Path(cache_dir_option) if cache_dir_option else cache_root()) / SUBDIR


def runtime_id(device: str) -> dict | None:
    """The interpreter that would run a CPU variant (package and version), without loading it."""
    if device != "cpu":
        return None
    from benchmark.backends.runtime import find_runtime
    from benchmark.errors import BackendUnavailable
    try:
        rt = find_runtime()
    except BackendUnavailable:
        return None
    from benchmark.backends.litert_cpu import default_kernels
    from benchmark.cpuinfo import cpu_features
    kernels = default_kernels()
    # The kernels round by the CPU's SIMD features (benchmark.cpuinfo): keyed on them too.
    rid = {"package": rt.package, "version": rt.version, "cpu_simd": cpu_features()["simd"]}
    return rid if kernels == "xnnpack" else {**rid, "cpu_kernels": kernels}


@dataclass(frozen=True, eq=False)
class EvalContext:
    """What a run evaluates every variant on (the non-model part of a cache key)."""

    dataset_key: str | None
    indices: np.ndarray
    preprocess: object
    logits: bool
    settings: EvalSettings

    def describe(self, variant: Variant, model_sha256: str) -> dict | None:
        """The JSON description a variant's cache key hashes, or None when not cacheable."""
        runtime = runtime_id(variant.device)
        if self.dataset_key is None or runtime is None:
            return None
        from benchmark import __version__
        settings = {k: v for k, v in dataclasses.asdict(self.settings).items()
                    if k not in NOT_IN_KEY}
        return _json_ready({
            "format": FORMAT, "edgetpu_bench": __version__, "model_sha256": model_sha256,
            "dataset": self.dataset_key, "n": int(self.indices.size),
            "indices_sha256": indices_sha256(self.indices), "preprocess": repr(self.preprocess),
            "logits": bool(self.logits), "device": variant.device, "runtime": runtime,
            "cpu_count": os.cpu_count(), "settings": settings})


def _json_ready(desc: dict) -> dict:
    """``desc`` as it reads back from JSON (tuples as lists), so stored and new compare equal."""
    return json.loads(json.dumps(desc, default=str))


def description_key(desc: dict) -> str:
    """32-hex-digit key of a description."""
    blob = json.dumps(desc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _npz_bytes(p: Predictions) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, probs=p.probs, labels=p.labels, index=p.index)
    return buf.getvalue()


class PredictionCache:
    """Predictions of CPU variants on disk, keyed by :meth:`EvalContext.describe`."""

    def __init__(self, root: Path, log: Log = None):
        self.root = Path(root)
        self.log = log
        self.hits = 0
        self.stores = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npz", self.root / f"{key}.json"

    def store(self, desc: dict, result: VariantResult) -> None:
        """Write a fresh result's predictions (the ``.npz`` first, then the ``.json``)."""
        from benchmark.results import atomic_write_bytes, write_json
        key = description_key(desc)
        npz_path, json_path = self._paths(key)
        blob = _npz_bytes(result.predictions)
        try:
            atomic_write_bytes(npz_path, blob)
            write_json(json_path, {"description": desc, "npz_sha256": hashlib.sha256(
                blob).hexdigest(), "seconds": result.predictions.seconds,
                "wall_seconds": result.wall_seconds, "runtime": result.runtime})
        except OSError as e:  # a read-only or full cache costs speed, not the run
            if self.log:
                self.log(f"prediction cache: cannot write {json_path} ({e.strerror or e})")
            return
        self.stores += 1

    def _read(self, desc: dict, indices: np.ndarray) -> tuple[dict, dict] | None:
        """``(json meta, arrays)`` of a complete entry for ``desc``, else None."""
        npz_path, json_path = self._paths(description_key(desc))
        if not json_path.is_file():
            return None
        try:
            meta = json.loads(json_path.read_text())
            blob = npz_path.read_bytes()
            if meta.get("description") != desc or \
                    meta.get("npz_sha256") != hashlib.sha256(blob).hexdigest():
                raise ValueError("entry does not match its description")
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("probs", "labels", "index")}
            if not np.array_equal(arrays["index"], indices) or \
                    arrays["probs"].shape[0] != indices.size or \
                    arrays["labels"].shape != indices.shape:
                raise ValueError("arrays do not match the evaluated images")
            if not isinstance(meta["runtime"], dict) or not all(
                    isinstance(meta[k], (int, float)) for k in ("seconds", "wall_seconds")):
                raise ValueError("timings or runtime missing")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError,
                zipfile.BadZipFile) as e:
            if self.log:
                self.log(f"prediction cache: ignoring {json_path.name} ({e}); re-evaluating")
            return None
        return meta, arrays

    def load(self, desc: dict, variant: Variant, dataset, indices: np.ndarray,
             settings: EvalSettings) -> VariantResult | None:
        """The cached result of ``variant`` (metrics recomputed), or None on a miss."""
        found = self._read(desc, np.asarray(indices, np.int64))
        if found is None:
            return None
        meta, a = found
        if not np.array_equal(a["labels"], np.asarray(dataset.labels)[a["index"]]):
            if self.log:
                self.log(f"prediction cache: labels of {description_key(desc)} differ from the "
                         "dataset's; re-evaluating")
            return None
        p = Predictions(probs=a["probs"], labels=a["labels"], index=a["index"],
                        seconds=float(meta["seconds"]))
        summary, cm = summarize(p.probs, p.labels, num_classes=dataset.num_classes,
                                bins=settings.bins, calibration_bins=settings.calibration_bins,
                                output_step=output_step(variant, bool(desc["logits"])))
        self.hits += 1
        return VariantResult(variant=variant, predictions=p, summary=summary, confusion=cm,
                             runtime=dict(meta["runtime"]),
                             wall_seconds=float(meta["wall_seconds"]))
