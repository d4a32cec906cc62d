"""Cells: their content-addressed keys, and running one cell (or one shard of it) in a worker.

A cell is one ``benchmark.run`` into ``<study>/cells/<key>/`` (a normal run
directory). Its key hashes the run's configuration fingerprint
(:func:`benchmark.pipeline.plan_fingerprint`: the result-relevant settings,
the SHA-256 of every model and weights file, the resolved device and the
harness version), the dataset's data folder (every file's path, size and
modification time), the loader's and converter's ``*_VERSION`` constants
(:func:`code_versions`) and the cell's variant: a finished cell is found again
by its key, and a changed input gives another key, never a stale result.

Tasks are plain dicts (picklable, and small enough for Ray); :func:`run_task`
runs one and returns a small dict: ``ok``, ``images``, ``seconds``,
``error`` (one line) and, when the task was asked to ``ship`` its files (Ray
workers on other hosts), the run directory as a ``.tar`` in ``files``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from benchmark.errors import BenchError
from benchmark.study.spec import Cell, Study

CELLS = "cells"
SHARDS = "shards"


def data_fingerprint(data_dir: str | None) -> str | None:
    """SHA-256 over every file's relative path, size and mtime under ``data_dir`` (None if none)."""
    if not data_dir or not Path(data_dir).exists():
        return None
    root = Path(data_dir)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n"
                     .encode())
    return h.hexdigest()


def code_versions(dataset: str) -> dict:
    """The ``*_VERSION`` constants of the dataset's loader module and of the converter.

    They change when a loader or the renderer makes other images, or the
    converter other models, so a cell made by older code is not taken as current.
    """
    import sys

    import benchmark.convert  # noqa: F401  (light at import; its CONVERT_VERSION)
    from benchmark.datasets.registry import get_dataset
    modules = {type(get_dataset(dataset)).__module__, get_dataset(dataset).load.__module__,
               "benchmark.convert"}
    out = {}
    for name in sorted(modules):
        mod = sys.modules.get(name)
        for k, v in sorted(vars(mod).items()) if mod is not None else ():
            if k.endswith("_VERSION") and isinstance(v, int) and not isinstance(v, bool):
                out[f"{name}.{k}"] = v
    return out


def cell_config(study: Study, cell: Cell, **extra):
    """The validated RunConfig of a cell (``extra``: out, shard, threads ...)."""
    from benchmark.config import make_config
    return make_config({k: v for k, v in extra.items() if v is not None},
                       defaults=study.run_settings(cell))


def cell_key(study: Study, cell: Cell, data_cache: dict | None = None) -> str:
    """The cell's 16-hex-digit content key (plans the run: one-line errors when it cannot run)."""
    from benchmark.pipeline import plan_fingerprint
    from benchmark.plan import plan_run
    plan = plan_run(cell_config(study, cell))
    data = {}
    for sp in plan.splits:
        d = sp.data_dir
        if data_cache is not None and d in data_cache:
            data[sp.split] = data_cache[d]
        else:
            data[sp.split] = data_fingerprint(d)
            if data_cache is not None:
                data_cache[d] = data[sp.split]
    doc = {"run": plan_fingerprint(plan), "data": data, "variant": cell.variant,
           "code": {sp.dataset: code_versions(sp.dataset) for sp in plan.splits},
           "device": cell.device, "dataset": [sp.dataset for sp in plan.splits],
           "options": [sp.dataset_options for sp in plan.splits]}
    blob = json.dumps(doc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def is_complete(run_dir: Path) -> bool:
    """A cell (or shard) directory whose run finished (its top ``results.json`` is written last)."""
    from benchmark.rundir import read_run
    if not (Path(run_dir) / "results.json").is_file():
        return False
    try:
        read_run(run_dir)
    except BenchError:
        return False
    return True


# ------------------------------------------------------------------ in the worker


def one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if isinstance(e, BenchError) else f"internal error: {type(e).__name__}: {msg}"


def _tar(run_dir: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(run_dir, arcname=".", filter=lambda ti: None if ti.name.endswith(".lock")
                else ti)
    return buf.getvalue()


def unpack(files: bytes, run_dir: Path) -> None:
    """Put a shipped run directory at ``run_dir`` (extracted beside it, then renamed)."""
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", dir=run_dir.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(files)) as tar:
            tar.extractall(tmp, filter="data")
        if run_dir.exists():
            shutil.rmtree(run_dir)
        tmp.rename(run_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _evaluate(task: dict, out: Path) -> int:
    from benchmark.config import make_config
    from benchmark.pipeline import run_result
    cfg = make_config(dict(task["config"], out=str(out), resume=True, report=False))
    result = run_result(cfg, quiet=True, tables=False)
    return sum(int(r.record["n_eval"]) * len(r.variants) for r in result.splits.values())


def run_task(task: dict) -> dict:
    """Run one cell or shard task; never raises for the cell's own errors (they are recorded)."""
    t0 = time.monotonic()
    out = Path(task["out"])
    scratch = None
    try:
        if task.get("ship"):
            scratch = Path(tempfile.mkdtemp(prefix="edgetpu-bench-cell-"))
            out = scratch / "run"
        images = _evaluate(task, out)
        files = _tar(out) if scratch is not None else None
        return {"ok": True, "images": images, "seconds": time.monotonic() - t0,
                "files": files, "host": os.uname().nodename}
    except Exception as e:      # recorded per cell: the study goes on
        return {"ok": False, "error": one_line(e), "seconds": time.monotonic() - t0,
                "host": os.uname().nodename}
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def init_worker(threads: int, log_dir: str | None) -> None:
    """Process-pool initializer: the worker's threads, and its native logs to a file."""
    os.environ["EDGETPU_BENCH_DATA_WORKERS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(log_dir) / f"worker-{os.getpid()}.log",
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
