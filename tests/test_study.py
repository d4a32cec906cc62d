"""Studies: the study file, the matrix, local and Ray executors, sharding, failures, kills."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import UsageError
from benchmark.rundir import read_run
from benchmark.study.progress import Progress
from benchmark.study.runner import run_study, summary
from benchmark.study.spec import load_study
from conftest import ROOT

STUDY = """
name = "signnet-accept"
splits = ["full", "verification"]
variants = ["float", "int8", "w6", "w4"]
limit = {limit}
{extra}

[[models]]
name = "signnet"
model_dir = "{models}"
"""


def _write(tmp: Path, name="study.toml", limit=120, extra="", models=ROOT / "models") -> Path:
    p = tmp / name
    p.write_text(STUDY.format(limit=limit, extra=extra, models=models))
    return p


def _table(study_dir: Path) -> list[tuple]:
    """results.csv rows without the cell key, sorted."""
    with open(study_dir / "results.csv", newline="") as f:
        rows = [tuple(v for k, v in r.items() if k != "cell") for r in csv.DictReader(f)]
    return sorted(rows)


@pytest.fixture(scope="module")
def local_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    study = load_study(_write(tmp), out=tmp / "out")
    result = run_study(study, executor="local", workers=2, quiet=True, report=False)
    assert not result.failed, summary(result, "")
    return study, result


# ------------------------------------------------------------------ the file


@pytest.mark.parametrize("text, message", [
    ("variants = ['int9']\n[[models]]\nname='signnet'", "variants: unknown int9"),
    ("colour = 1\n[[models]]\nname='signnet'", "unknown key(s) colour"),
    ("[[models]]\nname='nonet'", "unknown model 'nonet'"),
    ("splits = []\n[[models]]\nname='signnet'", "splits must be a non-empty list"),
    ("[[models]]\nname='signnet'\n[run]\nsplit='full'", "[run]: unknown or per-cell"),
    ("limit = 0\n[[models]]\nname='signnet'", "limit must be an integer >= 1"),
    ("name = 'x'", "needs at least one [[models]] entry"),
    ("[[models]\nname='signnet'", "not valid TOML"),
])
def test_study_file_errors_are_one_line(tmp_path, text, message):
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(UsageError) as e:
        load_study(p)
    assert message in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_the_matrix_expands_without_duplicate_float_cells(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("splits = ['full', 'verification']\nvariants = ['float', 'int8', 'w4']\n"
                 "observers = ['minmax', 'mse']\ndevices = ['cpu', 'edgetpu']\n"
                 "[[models]]\nname = 'signnet'\n")
    cells = load_study(p).cells()
    # per split: 1 float + 2 observers x 2 devices x 2 quantized variants
    assert len(cells) == 2 * (1 + 2 * 2 * 2)
    assert [c.result_variant for c in cells if c.device == "edgetpu"][:2] == ["int8-edgetpu",
                                                                              "w4"]
    assert {(c.observer, c.device) for c in cells if c.variant == "float"} == {("minmax", "cpu")}


def test_progress_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    s = Tty()
    p = Progress(4, stream=s)
    p.update(done=1, running=2, images=100, force=True)
    assert "study: 1/4 done, 2 running, 0 failed" in s.getvalue() and "img/s, ETA" in s.getvalue()
    quiet = Tty()
    Progress(4, stream=quiet, quiet=True).update(done=1, force=True)
    assert quiet.getvalue() == ""
    piped = io.StringIO()
    Progress(4, stream=piped).update(done=1, force=True)
    assert piped.getvalue() == ""


# ------------------------------------------------------------------ acceptance


def test_local_study_equals_each_cell_run_alone(local_study, tmp_path):
    from benchmark.run import main
    study, result = local_study
    assert len(result.states) == 8 and result.ran == 8
    for st in result.states:
        c = st.cell
        argv = ["--split", c.split, "--variants", "float" if c.variant == "float" else
                "float,int8", "--limit", "120", "--out", str(tmp_path / st.key), "--quiet",
                "--no-report", "--no-prediction-cache"]
        if c.variant.startswith("w"):
            argv += ["--weight-bits", c.variant[1:]]
        assert main(argv) == 0
        alone, cell = read_run(tmp_path / st.key), read_run(st.dir)
        v = c.result_variant
        sa, sc = alone.splits[c.split], cell.splits[c.split]
        assert (sa.dir / f"predictions_{v}.npz").read_bytes() == \
            (sc.dir / f"predictions_{v}.npz").read_bytes()
        rows = [r for r in (sa.dir / "metrics.csv").read_text().splitlines() if f",{v}," in r]
        assert rows and rows == [r for r in (sc.dir / "metrics.csv").read_text().splitlines()
                                 if f",{v}," in r]


def test_the_table_has_every_cell_and_parameter(local_study):
    study, result = local_study
    with open(study.out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    acc = {(r["split"], r["variant"]): float(r["value"]) for r in rows
           if r["metric"] == "accuracy"}
    assert set(acc) == {(s, v) for s in ("full", "verification")
                        for v in ("float", "int8", "w6", "w4")}
    for st in result.states:
        rec = read_run(st.dir).splits[st.cell.split].record
        assert acc[st.cell.split, st.cell.variant] == rec["variants"][st.cell.variant]["accuracy"]
    assert {"model", "dataset", "split", "observer", "device", "variant", "limit", "seed",
            "metric", "value"} <= set(rows[0])
    table = (study.out / "summary.md").read_text().splitlines()
    assert len(table) == 2 + 2 + 8 and "| signnet    | (model's)    | verification |" in table[-1]
    w4 = acc["verification", "w4"]
    assert f"{w4:.2%}" in table[-1]
    if importlib.util.find_spec("pyarrow"):
        import pandas as pd
        df = pd.read_parquet(study.out / "results.parquet")
        assert len(df) == len(rows) and df["value"].dtype == np.float64


def test_a_second_run_does_no_work(local_study):
    study, first = local_study
    stamps = {st.key: (st.dir / "results.json").stat().st_mtime_ns for st in first.states}
    again = run_study(study, executor="local", workers=2, quiet=True, report=False)
    assert again.ran == 0 and not again.failed
    assert {s.status for s in again.states} == {"done"}
    assert stamps == {st.key: (st.dir / "results.json").stat().st_mtime_ns
                      for st in again.states}


@pytest.mark.slow
def test_ray_study_equals_the_local_one(local_study, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[study]')")
    study, _ = local_study
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rs = load_study(study.path, out=tmp_path / "ray")
        result = run_study(rs, executor="ray", quiet=True, report=False)
    finally:
        ray.shutdown()
    assert result.ran == 8 and not result.failed, summary(result, "")
    assert _table(rs.out) == _table(study.out)
    # the key does not depend on the executor
    assert sorted(s.key for s in result.states) == sorted(s.key for s in local_study[1].states)


def test_a_sharded_cell_equals_the_unsharded_one(local_study, tmp_path):
    study, result = local_study
    sharded = load_study(_write(tmp_path, extra="shards = 3"), out=tmp_path / "sharded")
    r = run_study(sharded, executor="local", workers=2, quiet=True, report=False)
    assert r.ran == 8 and not r.failed, summary(r, "")
    assert len(list((sharded.out / "shards").iterdir())) == 24
    by_key = {s.key: s for s in result.states}
    for st in r.states:
        ref = by_key[st.key]                       # same key: sharding is not an input
        for name in sorted(p.name for p in ref.dir.iterdir() if p.suffix == ".npz"):
            assert (st.dir / name).read_bytes() == (ref.dir / name).read_bytes(), name
        v = st.cell.result_variant
        assert [r for r in (st.dir / "metrics.csv").read_text().splitlines() if f",{v}," in r] \
            == [r for r in (ref.dir / "metrics.csv").read_text().splitlines() if f",{v}," in r]
    assert _table(sharded.out) == _table(study.out)


def test_failed_cells_are_recorded_and_listed(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "signnet", models / "signnet")
    (models / "signnet" / "full" / "signnet_int8.tflite").write_bytes(b"not a model")
    shutil.rmtree(models / "signnet" / "verification")
    p = _write(tmp_path, limit=40, models=models)
    study = load_study(p, out=tmp_path / "out")
    result = run_study(study, executor="local", workers=2, quiet=True, report=False)
    failed = {(s.cell.split, s.cell.variant): s for s in result.failed}
    assert ("full", "float") not in failed and len(failed) == 7
    assert all("verification" in s.error and s.key is None
               for (split, _), s in failed.items() if split == "verification")
    assert all("signnet_int8.tflite" in s.error for (split, _), s in failed.items()
               if split == "full")
    text = summary(result, "edgetpu-bench study s.toml")
    assert "8 cells, 1 done" in text and "7 failed" in text and "failed cells:" in text
    keys = [s.key for s in result.failed if s.key]
    if keys:
        assert f"rerun them: edgetpu-bench study s.toml --only {','.join(keys)}" in text


def test_two_workers_asking_for_one_conversion_build_it_once(tmp_path, monkeypatch):
    from benchmark import convcache

    built = []

    def fake_convert(tmp, *a, **k):
        built.append(1)
        time.sleep(0.3)
        (tmp / "train_meta.json").write_text('{"dataset": "x"}')
        (tmp / "convert_meta.json").write_text("{}")

    class Entry:
        name = "m"

    class Ds:
        meta = {"cache_key": "k"}

    src = tmp_path / "src.keras"
    src.write_bytes(b"weights")
    monkeypatch.setattr(convcache, "_convert_into", fake_convert)
    monkeypatch.setattr(convcache, "read_train_meta", lambda p: type(
        "M", (), {"to_json": lambda self: {"dataset": "x"}})())
    outs = []

    def ask():
        outs.append(convcache.ensure_converted(Entry(), "full", Ds(), src, {}, observer="mse",
                                               seed=0, data_dir=None, cache_dir=tmp_path,
                                               log=None)[0])
    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(outs) == 2 and outs[0] == outs[1]


# ------------------------------------------------------------------ interruption


def _start_study(path: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "benchmark.study", str(path), "--out",
                             str(out), "--workers", "2", "--quiet", "--no-report"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_a_cell(p, out: Path, timeout=120) -> bool:
    t0 = time.monotonic()
    while not list((out / "cells").glob("*/results.json")):
        if p.poll() is not None or time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.005)
    return True


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def test_killed_study_reruns_only_missing_cells(local_study, tmp_path):
    study, _ = local_study
    out = tmp_path / "out"
    p = _start_study(study.path, out)
    assert _wait_for_a_cell(p, out), p.stderr.read() if p.poll() is not None else "timeout"
    os.killpg(p.pid, signal.SIGSTOP)
    done = len(list((out / "cells").glob("*/results.json")))
    os.killpg(p.pid, signal.SIGKILL)
    p.communicate()
    assert 0 < done < 8
    again = run_study(load_study(study.path, out=out), workers=2, quiet=True, report=False)
    assert again.ran == 8 - done and not again.failed, summary(again, "")
    assert _table(out) == _table(study.out)


def test_a_killed_worker_loses_only_its_cell(local_study, tmp_path):
    study, _ = local_study
    out = tmp_path / "out"
    p = _start_study(study.path, out)
    assert _wait_for_a_cell(p, out)
    workers = [c for c in _children(p.pid)
               if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
    assert workers
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr[-2000:]
    assert "8 cells, 8 done" in stdout and "0 failed" in stdout
    assert _table(out) == _table(study.out)


def test_a_cell_failing_in_its_worker_is_listed_and_rerun_alone(tmp_path):
    from benchmark.study.executors import LocalExecutor
    from benchmark.study.runner import StudyResult, execute_cells, plan_cells
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "signnet", models / "signnet")
    float_file = models / "signnet" / "full" / "signnet_float.tflite"
    good = float_file.read_bytes()
    study = load_study(_write(tmp_path, limit=40, models=models), out=tmp_path / "out")
    states = plan_cells(study)
    float_file.write_bytes(b"broken")           # changed after planning: fails in the worker
    ex = LocalExecutor(2)
    try:
        execute_cells(study, states, ex, Progress(8, quiet=True))
    finally:
        ex.shutdown()
    failed = [s for s in states if s.status == "failed"]
    assert {s.cell.split for s in failed} == {"full"} and len(failed) == 4
    assert all(s.key and "signnet_float.tflite" in s.error and "\n" not in s.error
               for s in failed)
    assert not any((s.dir / "results.json").exists() for s in failed)
    keys = ",".join(s.key for s in failed)
    assert f"rerun them: edgetpu-bench study s.toml --only {keys}" in summary(
        StudyResult(study, states), "edgetpu-bench study s.toml")
    float_file.write_bytes(good)
    again = run_study(study, workers=2, quiet=True, report=False, only=set(keys.split(",")))
    assert again.ran == 4 and not again.failed and len(again.states) == 4


def test_paper_data_from_cells_equals_benchmark_paper(local_study, tmp_path):
    import dataclasses

    from benchmark.paper import main as paper_main
    from benchmark.study.paper import write_paper
    study, result = local_study
    files = ["paper_fig2_sweep.csv", "paper_fig1_reliability.csv"]
    s = dataclasses.replace(study, path=tmp_path / "s.toml", out=tmp_path / "study",
                            paper={"out": "exp-{model_id}-{observer}", "files": files})
    written = write_paper(s, result.states)
    assert written == [tmp_path / "study" / "paper" / "exp-signnet-minmax"]
    assert paper_main(["--model", "signnet", "--weight-bits", "6,4", "--limit", "120",
                       "--split", "all", "--out", str(tmp_path / "paper"), "--no-plots"]) == 0
    for f in files + ["paper_fig1_confidence.csv", "paper_fig2_swaps_by_confidence.csv"]:
        assert (written[0] / f).read_bytes() == (tmp_path / "paper" / f).read_bytes(), f
    for f in files:
        assert (tmp_path / "exp-signnet-minmax" / f).read_bytes() == \
            (tmp_path / "paper" / f).read_bytes()


def test_the_cifar_study_file_is_the_readme_sweep():
    study = load_study(ROOT / "results" / "cifar100-resnets.toml")
    cells = study.cells()
    assert len(cells) == 104
    assert {c.model.id for c in cells} == {"resnet20-chenyaofo", "resnet56-chenyaofo",
                                           "resnet20-paper", "resnet56-paper"}
    names = {study.paper["out"].format(model_id=c.model.id, observer=c.observer)
             for c in cells if c.variant != "float"}
    assert names == {p.name for p in (ROOT / "results").glob("cifar100-resnet*-*")
                     if p.is_dir()}
    shared_models = (ROOT.parent / "shared" / "models").resolve()
    assert all(Path(c.model.weights).resolve().parent.parent == shared_models for c in cells)


def test_ctrl_c_stops_the_study_and_a_rerun_finishes_it(local_study, tmp_path):
    study, _ = local_study
    out = tmp_path / "out"
    p = _start_study(study.path, out)
    assert _wait_for_a_cell(p, out)
    os.killpg(p.pid, signal.SIGINT)              # what Ctrl-C on the terminal sends
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "benchmark.study: interrupted"
    assert not (out / "results.csv").exists()
    again = run_study(load_study(study.path, out=out), workers=2, quiet=True, report=False)
    assert 0 < again.ran < 8 and not again.failed, summary(again, "")
    assert _table(out) == _table(study.out)


def test_edgetpu_cells_ask_ray_for_the_edgetpu_resource(monkeypatch):
    from concurrent.futures import Future

    from benchmark.study import executors
    asked, inits = [], []

    class Ref:
        def future(self):
            return Future()

    class Remote:
        def __init__(self, opts=None):
            self.opts = opts

        def options(self, **opts):
            return Remote(opts)

        def remote(self, task):
            asked.append((task["device"], self.opts))
            return Ref()

    class FakeRay:
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kw):
            inits.append(kw)

        @staticmethod
        def cluster_resources():
            return {"CPU": 4.0, "edgetpu": 2.0}

        @staticmethod
        def remote(**kw):
            return lambda fn: Remote()

        @staticmethod
        def shutdown():
            inits.append("shutdown")

    monkeypatch.setattr(executors, "_ray", lambda: FakeRay)
    ex = executors.make_executor("ray", None, "127.0.0.1:6379", None)
    ex.submit({"device": "edgetpu"})
    ex.submit({"device": "cpu"})
    ex.shutdown()
    assert inits[0]["address"] == "127.0.0.1:6379" and inits[-1] == "shutdown"
    assert asked == [("edgetpu", {"num_cpus": 1, "resources": {"edgetpu": 1}}),
                     ("cpu", {"num_cpus": 1})]
    with pytest.raises(UsageError, match="--address is for --executor ray"):
        executors.make_executor("local", 2, "h:1", None)


def test_a_model_given_by_path_is_resolved_beside_the_study_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("[[models]]\npath = 'nets/my_net.keras'\n[[models]]\nname = 'signnet'\n")
    study = load_study(p)
    assert [m.name for m in study.models] == [str(tmp_path / "nets" / "my_net.keras"), "signnet"]
    assert [m.id for m in study.models] == ["my_net", "signnet"]
    p.write_text("[[models]]\nname = 'signnet'\npath = 'x.keras'\n")
    with pytest.raises(UsageError, match="needs a name \\(registered\\) or a path"):
        load_study(p)


def test_sigterm_stops_the_driver_and_its_workers(local_study, tmp_path):
    study, _ = local_study
    out = tmp_path / "out"
    p = _start_study(study.path, out)
    assert _wait_for_a_cell(p, out)
    workers = _children(p.pid)
    p.send_signal(signal.SIGTERM)                # the driver only
    _, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr[-2000:]
    time.sleep(0.5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()
                and "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()]
    again = run_study(load_study(study.path, out=out), workers=2, quiet=True, report=False)
    assert not again.failed, summary(again, "")
    assert _table(out) == _table(study.out)


@pytest.mark.slow
def test_the_carolo_sweep_study_regenerates_the_committed_csv(tmp_path):
    text = (ROOT / "results" / "carolo-synth-sweep.toml").read_text()
    p = tmp_path / "sweep.toml"
    p.write_text(text.replace('model_dir = "../models"', f'model_dir = "{ROOT / "models"}"'))
    result = run_study(load_study(p, out=tmp_path / "out"), workers=2, quiet=True,
                       report=False)
    assert len(result.states) == 16 and not result.failed, summary(result, "")
    name = "carolo-synth-sweep/paper_fig2_sweep.csv"
    _same_sweep_csv(tmp_path / name, ROOT / "results" / name)


#: Columns computed from the confidences, not only from which predictions are right: on
#: another CPU, XNNPACK picks other kernels and an int8 output can move by one quantization
#: step (1/256), which moves these in the 6th decimal (this is what happened between the
#: machine the CSV was made on and an AVX2 one; docs/development.md). The rest must be equal.
_CONFIDENCE_COLUMNS = {"ece": 2e-4, "median_swapped_conf": 2e-3, "swaps_low_conf_share": 2e-3,
                       "all_low_conf_share": 2e-3}


def _same_sweep_csv(got: Path, want: Path) -> None:
    """The regenerated sweep table equals the committed one: every count-derived value exactly,
    the confidence-derived ones within :data:`_CONFIDENCE_COLUMNS` (the bytes when equal)."""
    if got.read_bytes() == want.read_bytes():
        return
    readers = [csv.DictReader(io.StringIO(f.read_text())) for f in (got, want)]
    rows = [list(r) for r in readers]
    assert readers[0].fieldnames == readers[1].fieldnames, "header differs"
    assert len(rows[0]) == len(rows[1]), f"{len(rows[0])} rows, committed {len(rows[1])}"
    for g, w in zip(*rows):
        for col, ref in w.items():
            tol = _CONFIDENCE_COLUMNS.get(col)
            if tol is None:
                assert g[col] == ref, (w["split"], w["variant"], col, g[col], ref)
            else:
                assert abs(float(g[col]) - float(ref)) <= tol, (w["variant"], col, g[col], ref)


def test_exported_metrics_equal_benchmark_run_split_all(local_study, tmp_path):
    import dataclasses

    from benchmark.run import main
    from benchmark.study.export import write_exports
    study, result = local_study
    s = dataclasses.replace(study, path=tmp_path / "s.toml", out=tmp_path / "study",
                            export={"out": "run-{model_id}", "files": ["metrics.csv"]})
    assert write_exports(s, result.states) == [tmp_path / "study" / "export" / "run-signnet"]
    assert main(["--split", "all", "--weight-bits", "6,4", "--limit", "120", "--out",
                 str(tmp_path / "run"), "--quiet", "--no-report", "--no-prediction-cache"]) == 0
    assert (tmp_path / "run-signnet" / "metrics.csv").read_bytes() == \
        (tmp_path / "run" / "metrics.csv").read_bytes()


def test_the_results_study_files_load():
    for name, cells in (("carolo-synth-run", 4), ("gtsrb-run", 4), ("carolo-synth-sweep", 16)):
        study = load_study(ROOT / "results" / f"{name}.toml")
        assert len(study.cells()) == cells
        out = (study.paper or study.export)["out"]
        assert (ROOT / "results" / out).is_dir(), out


def test_study_help_loads_nothing_heavy():
    code = ("import sys, runpy\nsys.argv = ['benchmark.study', '--help']\n"
            "try:\n    runpy.run_module('benchmark.study', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', "
            "'keras', 'matplotlib', 'ai_edge_litert', 'torch', 'ray', 'pyarrow', 'pandas'))\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert "usage:" in r.stdout and "--executor {local,ray}" in r.stdout
    assert "HEAVY []" in r.stderr, r.stderr[-2000:]


def test_only_refuses_a_key_that_is_not_a_cell(local_study):
    study, _ = local_study
    with pytest.raises(UsageError, match="--only: deadbeef is not a cell of"):
        run_study(study, only={"deadbeef"}, quiet=True, report=False)
