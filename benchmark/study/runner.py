"""Run a study: key every cell, skip the finished ones, run the rest, write the study's outputs.

The study directory::

    study.json            every cell: key, parameters, status, one-line error
    cells/<key>/          one benchmark.run run directory per cell
    shards/<key>-<i>of<n>/  the pieces of a sharded cell (merged into cells/<key>/)
    results.csv           tidy: one row per cell x metric, every parameter a column
    summary.md            one row per cell: its parameters and the main metrics
    results.parquet       the same table (when pyarrow is installed)
    report.html, .md      benchmark.report's comparison over all finished cells
    logs/                 the local workers' native logs (TFLite, TensorFlow)

A cell is finished when its run directory's top ``results.json`` exists (it
is written last, and only by a run that completed), so a killed study loses
only the cells in flight; their partial files are removed when they run
again. Failures are per cell: recorded, listed, never stopping the others.
"""

from __future__ import annotations

import csv
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import BenchError
from benchmark.study import cells as C
from benchmark.study.spec import Cell, Study

MAX_RESTARTS = 2


@dataclass
class CellState:
    cell: Cell
    key: str | None
    dir: Path | None
    status: str                   # done (kept), ran, failed, todo
    error: str | None = None
    shards_left: set = field(default_factory=set)


@dataclass
class StudyResult:
    study: Study
    states: list[CellState]
    ran: int = 0
    tables: tuple[Path, ...] = ()
    report: Path | None = None
    paper: tuple[Path, ...] = ()        # the [paper] and [export] folders written

    @property
    def failed(self) -> list[CellState]:
        return [s for s in self.states if s.status == "failed"]


def plan_cells(study: Study, only: set[str] | None = None) -> list[CellState]:
    """Every cell with its key and whether it is finished (planning errors are cell failures)."""
    out, data_cache = [], {}
    for c in study.cells():
        try:
            key = C.cell_key(study, c, data_cache)
        except BenchError as e:
            out.append(CellState(c, None, None, "failed", C.one_line(e)))
            continue
        if only is not None and key not in only:
            continue
        d = study.out / C.CELLS / key
        out.append(CellState(c, key, d, "done" if C.is_complete(d) else "todo"))
    unknown = sorted((only or set()) - {s.key for s in out})
    if unknown:
        from benchmark.errors import UsageError
        raise UsageError(f"--only: {', '.join(unknown)} is not a cell of {study.path} (the "
                         "inputs changed since, or a typo); --list shows the cells' keys")
    return out


def _tasks(study: Study, st: CellState, threads: int, ship: bool) -> list[dict]:
    settings = {} if "num_threads" in study.run else {"num_threads": threads}
    settings.update({} if "workers" in study.run else {"workers": 1})
    base = {"cell": st.key, "device": st.cell.device, "ship": ship}
    if study.shards == 1:
        cfg = C.cell_config(study, st.cell, **settings).to_dict()
        return [dict(base, config=cfg, out=str(st.dir))]
    tasks = []
    for i in range(study.shards):
        d = study.out / C.SHARDS / f"{st.key}-{i}of{study.shards}"
        if not C.is_complete(d):
            cfg = C.cell_config(study, st.cell, shard=f"{i}/{study.shards}", **settings)
            tasks.append(dict(base, config=cfg.to_dict(), out=str(d), shard=i))
    st.shards_left = {t["shard"] for t in tasks}
    return tasks


def _merge(study: Study, st: CellState) -> int:
    from benchmark.study.merge import merge_shards
    dirs = [study.out / C.SHARDS / f"{st.key}-{i}of{study.shards}" for i in range(study.shards)]
    cfg = C.cell_config(study, st.cell).to_dict()
    return merge_shards(dirs, st.dir, cfg)


def _finish_task(study: Study, st: CellState, task: dict, res: dict, executor) -> int:
    """Record one task's result; the images it evaluated."""
    if not res.get("ok"):
        st.status, st.error = "failed", res.get("error", "unknown error")
        return 0
    if res.get("files") is not None:
        C.unpack(res["files"], Path(task["out"]))
    if "shard" in task:
        st.shards_left.discard(task["shard"])
        if st.shards_left or st.status == "failed":
            return res["images"]
        try:
            _merge(study, st)
        except Exception as e:      # a failed merge fails the cell, not the study
            st.status, st.error = "failed", C.one_line(e)
            return res["images"]
    st.status = "ran"
    return res["images"]


def _result(future) -> dict | None:
    """The task's result dict; None when the process pool broke under it."""
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except Exception as e:          # a Ray worker crash, a lost object ...
        return {"ok": False, "error": C.one_line(e)}


def spread(todo: list[CellState]) -> list[CellState]:
    """``todo`` round-robin over the conversions the cells need (model, data, split, observer).

    Cells of one conversion wait for each other (the conversion cache's lock);
    interleaving them lets the first cells of a study build different
    conversions at the same time.
    """
    groups: dict = {}
    for st in todo:
        c = st.cell
        groups.setdefault((c.model, c.dataset.id, c.split, c.observer), []).append(st)
    out, lists = [], list(groups.values())
    while any(lists):
        out += [g.pop(0) for g in lists if g]
    return out


def execute_cells(study: Study, todo: list[CellState], executor, progress) -> None:
    """Run every task of ``todo`` on ``executor`` until each is done or failed."""
    todo = spread(todo)
    queue = [(st, t) for st in todo
             for t in _tasks(study, st, executor.threads, executor.ships_files)]
    for st in todo:
        if study.shards > 1 and not st.shards_left:
            queue.append((st, None))            # every shard finished earlier: merge only
    pending, restarts = {}, 0
    for st, t in queue:
        if t is None:
            _finish_task(study, st, {"shard": -1, "out": str(st.dir)},
                         {"ok": True, "images": 0}, executor)
            progress.update(done=1, force=True)
            continue
        pending[executor.submit(t)] = (st, t)
    while pending:
        done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        retry = []
        for f in done:
            st, t = pending.pop(f)
            res = _result(f)
            if res is None:
                retry.append((st, t))
                continue
            images = _finish_task(study, st, t, res, executor)
            cell_over = st.status in ("ran", "failed") and not st.shards_left
            progress.update(images=images,
                            done=int(cell_over and st.status == "ran"),
                            failed=int(cell_over and st.status == "failed"))
        if retry:
            restarts += 1
            if restarts > MAX_RESTARTS:
                for st, _ in retry + list(pending.values()):
                    st.status, st.error = "failed", "a worker process died (tried 3 times)"
                return
            executor.restart()
            still = list(pending.values()) + retry
            pending = {executor.submit(t): (st, t) for st, t in still}
        progress.update(running=min(len(pending), executor.workers))


# ------------------------------------------------------------------ outputs


def tidy_rows(study: Study, states: list[CellState]) -> tuple[list[str], list[list]]:
    """Header and rows of the results table: one row per finished cell x metric."""
    params = ["study", "cell", "model", "model_id", "weights", "dataset", "dataset_id",
              "dataset_options", "split", "observer", "device", "variant", "limit", "seed",
              "result_variant", "metric", "value"]
    rows = []
    for st in states:
        if st.status not in ("done", "ran"):
            continue
        p = dict(st.cell.params(), study=study.name, cell=st.key, limit=study.limit or "",
                 seed=study.seed, result_variant=st.cell.result_variant)
        with open(st.dir / "metrics.csv", newline="") as f:
            for r in csv.DictReader(f):
                if r["variant"] == st.cell.result_variant:
                    rows.append([*(p[k] for k in params[:-2]), r["metric"], r["value"]])
    return params, rows


def write_tables(study: Study, states: list[CellState], log) -> tuple[Path, ...]:
    """results.csv, and results.parquet when pyarrow is installed."""
    import importlib.util

    from benchmark.results import write_csv
    from benchmark.results import atomic_write_bytes
    header, rows = tidy_rows(study, states)
    out = [study.out / "results.csv", study.out / "summary.md"]
    write_csv(out[0], header, rows)
    atomic_write_bytes(out[1], (f"# Study {study.name}\n\n" + summary_table(header, rows))
                       .encode())
    if importlib.util.find_spec("pyarrow") is None:
        if log:
            log("pyarrow is not installed: results.parquet not written (pip install pyarrow); "
                "results.csv has the same table")
        return tuple(out)
    import pandas as pd
    df = pd.DataFrame(rows, columns=header)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    atomic_write_bytes(study.out / "results.parquet", df.to_parquet(index=False))
    return (*out, study.out / "results.parquet")


#: ``(metric, column, format)`` of the study's comparison table (summary.md).
SUMMARY_METRICS = (("accuracy", "accuracy", "{:.2%}"), ("calibration_ece", "ECE", "{:.2%}"),
                   ("agreement_with_float", "top-1 = float", "{:.2%}"),
                   ("swapped_pct", "swapped %", "{:.2f}"),
                   ("delta_error_pct", "Δ error %", "{:.2f}"),
                   ("ratio", "Δerror/swapped", "{:.2f}"))
SUMMARY_KEYS = ("model_id", "dataset_id", "split", "observer", "device", "variant")


def summary_table(header: list[str], rows: list[list]) -> str:
    """One Markdown row per cell: its parameters and the main metrics (from the tidy rows)."""
    from tabulate import tabulate
    col = {h: i for i, h in enumerate(header)}
    cells: dict = {}
    for r in rows:
        key = tuple(r[col[k]] for k in SUMMARY_KEYS)
        cells.setdefault(key, {})[r[col["metric"]]] = r[col["value"]]
    out = []
    for key, m in cells.items():
        vals = []
        for metric, _, fmt in SUMMARY_METRICS:
            try:
                vals.append(fmt.format(float(m[metric])))
            except (KeyError, ValueError):
                vals.append("")
        out.append([*key, *vals])
    return tabulate(out, headers=[*SUMMARY_KEYS, *(c for _, c, _ in SUMMARY_METRICS)],
                    tablefmt="github") + "\n"


def write_study_json(study: Study, states: list[CellState]) -> None:
    from benchmark.results import write_json
    write_json(study.out / "study.json", {
        "name": study.name, "file": str(study.path), "shards": study.shards,
        "cells": [{"key": s.key, "status": "done" if s.status == "ran" else s.status,
                   "error": s.error, "label": s.cell.label(), **s.cell.params()}
                  for s in states]})


def summary(result: StudyResult, argv_hint: str) -> str:
    states = result.states
    n_done = sum(s.status in ("done", "ran") for s in states)
    lines = [f"study {result.study.name}: {len(states)} cells, {n_done} done ({result.ran} run "
             f"now, {n_done - result.ran} kept), {len(result.failed)} failed",
             f"cells in {result.study.out / C.CELLS}"]
    lines += [f"table: {p}" for p in result.tables]
    if result.report:
        lines.append(f"report: {result.report}")
    lines += [f"exported: {p}" for p in result.paper]
    if result.failed:
        lines.append("failed cells:")
        lines += [f"  {s.key or '(not planned)'}  {s.cell.label()}: {s.error}"
                  for s in result.failed]
        keys = [s.key for s in result.failed if s.key]
        if keys:
            lines.append(f"rerun them: {argv_hint} --only {','.join(keys)}")
        if len(keys) < len(result.failed):
            lines.append(f"cells not planned run once fixed: {argv_hint}")
    return "\n".join(lines)


def run_study(study: Study, *, executor: str = "local", workers: int | None = None,
              address: str | None = None, quiet: bool = False, only: set[str] | None = None,
              report: bool = True, log=None) -> StudyResult:
    """Plan, run and write one study (see the module docstring)."""
    from benchmark.study.executors import make_executor
    from benchmark.study.progress import Progress
    states = plan_cells(study, only)
    todo = [s for s in states if s.status == "todo"]
    study.out.mkdir(parents=True, exist_ok=True)
    result = StudyResult(study, states)
    if todo:
        ex = make_executor(executor, workers, address, study.out / "logs")
        progress = Progress(len(todo), quiet=quiet)
        try:
            execute_cells(study, todo, ex, progress)
        except BaseException:       # Ctrl-C, SIGTERM: the workers stop with the driver
            progress.close()
            ex.abort()
            raise
        progress.close()
        ex.shutdown()
        result.ran = sum(s.status == "ran" for s in todo)
    write_study_json(study, states)
    finished = [s for s in states if s.status in ("done", "ran")]
    result.tables = write_tables(study, states, log)
    if study.paper and (result.ran or not (study.out / "paper").is_dir()):
        from benchmark.study.paper import write_paper
        result.paper = tuple(write_paper(study, states, log))
    if study.export and (result.ran or not (study.out / "export").is_dir()):
        from benchmark.study.export import write_exports
        result.paper += tuple(write_exports(study, states, log))
    html = study.out / "report.html"
    if report and finished and (result.ran or not html.exists()):
        from benchmark.report import write_report
        result.report, _ = write_report([s.dir for s in finished], out=html)
    elif html.exists():
        result.report = html
    return result
