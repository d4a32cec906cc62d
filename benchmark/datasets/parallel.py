"""Filling a ``.npy`` file row range by row range, on every core.

A loader that renders or decodes images creates the images file of its cache
entry (:func:`benchmark.datasets.cache.new_scratch`) and hands :func:`fill`
a list of tasks ``(start, stop, payload)``. Each task runs
``fn(path, start, stop, payload)`` in a worker process (a
``concurrent.futures`` pool of :func:`default_workers` processes, started with
``forkserver`` so a parent that has TensorFlow loaded is never forked, and
without re-running the caller's ``__main__`` in them); the
function maps only rows ``[start, stop)`` of the file (:func:`open_rows`),
writes them and unmaps them, so neither the workers nor the parent hold the
whole array in memory. Results come back in task order; with one worker, or a
job too small to pay for the processes (fewer than ``min_pool_rows`` rows or
a single task), the same function runs in the calling process.

The rows a task writes depend only on its payload, never on which process
runs it or in what order, so a file filled in the pool is byte-identical to
one filled serially.

``$EDGETPU_BENCH_DATA_WORKERS`` (an integer >= 1) overrides the number of
worker processes; 1 renders and decodes in the calling process.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from benchmark.errors import UsageError
from benchmark.workers import hidden_main

#: Environment variable overriding :func:`default_workers`.
ENV_WORKERS = "EDGETPU_BENCH_DATA_WORKERS"

Task = tuple[int, int, Any]


def default_workers() -> int:
    """Worker processes for rendering and decoding: ``$EDGETPU_BENCH_DATA_WORKERS``, else all cores.

    Raises
    ------
    UsageError
        The variable is set but is not an integer >= 1.
    """
    value = os.environ.get(ENV_WORKERS, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise UsageError(f"${ENV_WORKERS} must be an integer >= 1, got {value!r}")
        return n
    return os.cpu_count() or 1


def tasks(n_rows: int, chunk_rows: int, payload: Callable[[int, int], Any]) -> list[Task]:
    """``(start, stop, payload(start, stop))`` for consecutive chunks of ``chunk_rows`` rows."""
    return [(s, min(s + chunk_rows, n_rows), payload(s, min(s + chunk_rows, n_rows)))
            for s in range(0, n_rows, chunk_rows)]


def open_rows(path: Path, start: int, stop: int, mode: str = "r+") -> np.ndarray:
    """Rows ``[start, stop)`` of the ``.npy`` array at ``path`` as a memory map of those rows only.

    The array must be C-ordered. Deleting the returned map unmaps it (its
    pages leave the process's resident set; written rows stay in the file).
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if fortran:
        raise ValueError(f"{path} is Fortran-ordered; open_rows needs C order")
    if not 0 <= start <= stop <= shape[0]:
        raise ValueError(f"rows [{start}, {stop}) outside the {shape[0]} rows of {path}")
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    if stop == start:
        return np.empty((0,) + tuple(shape[1:]), dtype)
    return np.memmap(path, dtype=dtype, mode=mode, offset=offset + start * row_bytes,
                     shape=(stop - start,) + tuple(shape[1:]))


def fill(path: Path, fn: Callable[[Path, int, int, Any], Any], jobs: Sequence[Task], *,
         workers: int | None = None, min_pool_rows: int = 0,
         progress: Callable[[int, int], None] | None = None) -> list:
    """Run ``fn(path, start, stop, payload)`` for every task; the results in task order.

    Parameters
    ----------
    path : Path
        The ``.npy`` file the tasks write into (each its own rows).
    fn : callable
        A module-level (picklable) function.
    jobs : sequence of (start, stop, payload)
        ``payload`` must be picklable; paths in it should be absolute (a
        worker's working directory is the one its pool server started in).
    workers : int, optional
        Worker processes (default :func:`default_workers`); 1 runs in-process.
    min_pool_rows : int
        Fewer rows than this run in-process (the pool's start-up would cost
        more than it saves).
    progress : callable, optional
        ``progress(rows_done, rows_total)`` after each finished task.

    Raises
    ------
    Exception
        The exception of the first failing task in task order (what a
        serial run would have raised); later tasks are cancelled.
    """
    jobs = list(jobs)
    path = Path(path).absolute()  # a worker's directory is the one its pool started in
    total = sum(stop - start for start, stop, _ in jobs)
    workers = default_workers() if workers is None else max(1, int(workers))
    workers = min(workers, len(jobs))
    if workers <= 1 or total < min_pool_rows:
        results, done = [], 0
        for start, stop, payload in jobs:
            results.append(fn(path, start, stop, payload))
            done += stop - start
            if progress is not None:
                progress(done, total)
        return results
    return _fill_in_pool(path, fn, jobs, workers, total, progress)


def _fill_in_pool(path, fn, jobs, workers, total, progress) -> list:
    """:func:`fill` in a pool of ``workers`` processes."""
    ctx = multiprocessing.get_context("forkserver")
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        with hidden_main():  # the first ``workers`` submits start the processes
            futures = [ex.submit(fn, path, start, stop, payload)
                       for start, stop, payload in jobs]
        index = {f: i for i, f in enumerate(futures)}
        pending, done_rows, first_error = set(futures), 0, None
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in sorted(finished, key=index.get):
                if f.cancelled():
                    continue
                if f.exception() is not None:
                    i = index[f]
                    if first_error is None or i < first_error:
                        first_error = i
                    for later in futures[i + 1:]:
                        later.cancel()
                    continue
                start, stop, _ = jobs[index[f]]
                done_rows += stop - start
                if progress is not None and first_error is None:
                    progress(done_rows, total)
        if first_error is not None:
            raise futures[first_error].exception()
        return [f.result() for f in futures]
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
