"""Where cells run: a local process pool, or Ray Core tasks on a cluster.

Both hand back :class:`concurrent.futures.Future` objects of
:func:`benchmark.study.cells.run_task` results, so the runner has one loop.

- ``local``: :class:`~concurrent.futures.ProcessPoolExecutor` with the
  ``spawn`` start method (a fresh interpreter per worker, no inherited
  TensorFlow state); each worker uses ``cores // workers`` interpreter
  threads, so the pool does not oversubscribe the cores. A worker that dies
  (SIGKILL, a crash in native code) breaks the pool: the runner starts a new
  one and resubmits the tasks that had not finished (they resume).
- ``ray``: each task is a ``@ray.remote`` function (Ray schedules, retries
  and moves the results; there is no scheduler of ours). ``ray.init(address=...)``
  joins a running cluster; without an address a local Ray is started. Edge
  TPU cells ask for the custom resource ``edgetpu`` (one unit), so they only
  run on hosts started with ``ray start --resources '{"edgetpu": 1}'``. The
  worker writes the cell into a scratch directory and returns it as a
  ``.tar`` in the task result; the driver unpacks it into the study
  directory, so the hosts need no shared file system (but the same checkout,
  models and data paths).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from benchmark.errors import BackendUnavailable

EXECUTORS = ("local", "ray")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """Interpreter threads per worker so that ``workers`` of them fill the cores once."""
    return max(1, usable_cores() // max(1, workers))


class LocalExecutor:
    """A spawn process pool of ``workers`` interpreters."""

    name = "local"
    ships_files = False

    def __init__(self, workers: int, log_dir: Path | None = None):
        self.workers = workers
        self.threads = threads_per_worker(workers)
        self.log_dir = str(log_dir) if log_dir else None
        self.pool = None
        self.restart()

    def restart(self) -> None:
        from benchmark.study.cells import init_worker
        from benchmark.workers import hidden_main
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        with hidden_main():
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker, initargs=(self.threads, self.log_dir))

    def submit(self, task: dict) -> Future:
        from benchmark.study.cells import run_task
        return self.pool.submit(run_task, task)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def abort(self) -> None:
        """Stop now (interrupted): cancel the queue, end the workers (cells in flight are lost)."""
        if self.pool is None:
            return
        procs = list(getattr(self.pool, "_processes", {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)
        self.pool = None


def _ray():
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("--executor ray needs Ray: pip install -e '.[study]' "
                                 "(or pip install ray)") from None
    return ray


class RayExecutor:
    """Ray Core tasks; ``address`` joins a cluster (``None``: a local Ray of ``workers`` CPUs)."""

    name = "ray"
    ships_files = True

    def __init__(self, workers: int | None, address: str | None = None):
        ray = _ray()
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            kw = {"address": address} if address else {"num_cpus": workers or usable_cores()}
            try:
                ray.init(include_dashboard=False, log_to_driver=False,
                         configure_logging=False, **kw)
            except ConnectionError as e:
                raise BackendUnavailable(f"--address {address}: cannot join the Ray cluster "
                                         f"({' '.join(str(e).split())[:200]})") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or cpus
        self.threads = max(1, cpus // max(1, self.workers)) if not address else 1
        from benchmark.study.cells import run_task
        self.remote = ray.remote(max_retries=1)(run_task)

    def submit(self, task: dict) -> Future:
        opts = {"num_cpus": 1}
        if task.get("device") == "edgetpu":
            opts["resources"] = {"edgetpu": 1}
        return self.remote.options(**opts).remote(task).future()

    def restart(self) -> None:       # Ray replaces dead workers itself
        pass

    def abort(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_executor(name: str, workers: int | None, address: str | None, log_dir: Path | None):
    from benchmark.errors import UsageError
    if name not in EXECUTORS:
        raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    if workers is not None and workers < 1:
        raise UsageError("--workers must be >= 1")
    if address and name != "ray":
        raise UsageError("--address is for --executor ray")
    if name == "ray":
        return RayExecutor(workers, address)
    return LocalExecutor(workers or max(1, usable_cores()), log_dir)
