"""Every CLI entry point over damaged inputs: a clean exit code, no traceback, nothing lost.

Seeded mutations (truncation, bit flips, zeroed windows, garbage, empty files)
of a real int8 model, a compiled model, a compiler log, a config file, GTSRB
archives, a CSV manifest and a run directory are fed to ``benchmark.compile``
(``--analyze-only`` and ``--inspect``), ``benchmark.latency``,
``benchmark.compile --parse-log``, ``benchmark.run`` (config files, archives,
manifests, a user's ``.tflite``), ``benchmark.report``, ``benchmark.diagnose``
(models), ``benchmark.study`` (study files), ``benchmark.convert`` (a ``.keras``)
and ``benchmark.train`` (``--init-from``). All cases run in
one child process (tests/fuzz_driver.py) so a native crash is caught and
named. Asserted for every case: the exit code is 0, 2, 3 or 4; no traceback;
a failure ends in one ``error:`` line; no input file changed; no temporary
left behind.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, link_datasets
from test_gtsrb import make_fixture

SEED = 20261202
INT8 = ROOT / "models" / "signnet" / "full" / "signnet_int8.tflite"
LOG = """Edge TPU Compiler version 16.0.384591198
Input: m.tflite
Output: m_edgetpu.tflite

Operator                       Count      Status

CONV_2D                        5          Mapped to Edge TPU
SOFTMAX                        1          Operation is working on an unsupported data type
"""
CONFIG = ('model = "signnet"\nsplit = "verification"\nlimit = 6\nvariants = ["float", "int8"]\n'
          'report = false\nworkers = 1\nseed = 0\nbins = 20\n')
STUDY = ('name = "fz"\nsplits = ["verification"]\nvariants = ["float", "int8"]\nlimit = 4\n\n'
         '[[models]]\nname = "signnet"\n\n[metrics]\nbins = 20\nseed = 0\n')
KERAS = ROOT / "models" / "signnet" / "verification" / "signnet.keras"
COUNTS = {"model": 50, "compiled": 25, "latency": 25, "log": 30, "config": 30, "archive": 15,
          "manifest": 15, "tflite_run": 10, "report": 20, "diagnose": 15, "study": 20,
          "study_run": 3, "convert": 6, "train": 4}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded damage: truncate, flip bits, zero a window, add garbage, or empty."""
    kind = rng.choice(["truncate", "flip", "flip", "zero", "garbage", "empty"])
    if not data or kind == "empty":
        return b""
    if kind == "truncate":
        return data[:rng.randrange(len(data))]
    b = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "zero":
        start = rng.randrange(len(b))
        b[start:start + 64] = bytes(len(b[start:start + 64]))
    else:
        at = rng.randrange(len(b))
        b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    return bytes(b)


def _manifest(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir(parents=True)
    rows = ["path,label,split"]
    for i in range(60):  # 30 classes, as the shipped SignNet has
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(
            root / "imgs" / f"{i}.png")
        rows.append(f"imgs/{i}.png,{i % 30},{'train' if i < 30 else 'test'}")
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    return root / "m.csv"


def _small_run(root: Path) -> Path:
    from test_report_fast import small_run
    cm = np.array([[3, 1], [0, 4]])
    return small_run(root / "run", {"float": cm, "int8": cm}, ["a", "b"])


def _case(cases, group, i, command, prog, argv, env=None):
    cases.append({"id": f"{group}-{i}", "command": command, "prog": prog,
                  "argv": [str(a) for a in argv], "env": env or {}})


RUN = ("benchmark.run:main", "benchmark.run")
COMPILE = ("benchmark.compile.__main__:main", "benchmark.compile")


def _model_cases(cases, inputs, outs, rng, compiled: Path):
    base = INT8.read_bytes()
    for i in range(COUNTS["model"]):
        p = inputs / f"model-{i}.tflite"
        p.write_bytes(mutate(base, rng))
        argv = ["--analyze-only", p, "--out-dir", outs / f"m{i}", "--json"]
        _case(cases, "model", i, *COMPILE, argv)
    cbase = compiled.read_bytes()
    for i in range(COUNTS["compiled"]):
        p = inputs / f"c-{i}_edgetpu.tflite"
        p.write_bytes(mutate(cbase, rng))
        _case(cases, "compiled", i, *COMPILE, ["--inspect", p])
    for i in range(COUNTS["latency"]):
        p = inputs / f"lat-{i}.tflite"
        p.write_bytes(mutate(base, rng))
        _case(cases, "latency", i, "benchmark.latency:main", "benchmark.latency",
              [p, "--runs", 2, "--warmup", 0])


def _text_cases(cases, inputs, outs, rng):
    for i in range(COUNTS["log"]):
        p = inputs / f"log-{i}.log"
        p.write_bytes(mutate(LOG.encode(), rng))
        _case(cases, "log", i, *COMPILE, ["--parse-log", p])
    for i in range(COUNTS["config"]):
        p = inputs / f"cfg-{i}.toml"
        p.write_bytes(mutate(CONFIG.encode(), rng))
        _case(cases, "config", i, *RUN, ["--config", p, "--out", outs / f"cfg{i}", "--quiet"])


def _data_cases(cases, inputs, outs, rng, cache):
    env = {"EDGETPU_BENCH_CACHE": str(cache)}
    gt = make_fixture(_mkdir(inputs / "gtsrb-base"))
    archives = sorted(gt.glob("*.zip"))
    for i in range(COUNTS["archive"]):
        d = _mkdir(inputs / f"gtsrb-{i}")
        for a in archives:
            shutil.copy(a, d / a.name)
        victim = d / rng.choice(archives).name
        victim.write_bytes(mutate(victim.read_bytes(), rng))
        _case(cases, "archive", i, *RUN, ["--model", "signnet-gtsrb", "--dataset", "gtsrb",
                                          "--data-dir", d, "--limit", 4, "--workers", 1,
                                          "--no-report", "--quiet", "--out", outs / f"g{i}"],
              env)
    manifest = _manifest(_mkdir(inputs / "csv-base"))
    for i in range(COUNTS["manifest"]):
        p = manifest.with_name(f"m-{i}.csv")
        p.write_bytes(mutate(manifest.read_bytes(), rng))
        _case(cases, "manifest", i, *RUN, ["--dataset", "csv", "--data-dir", p, "--split",
                                           "verification", "--limit", 4, "--workers", 1,
                                           "--no-report", "--quiet", "--out", outs / f"c{i}"],
              env)
    for i in range(COUNTS["tflite_run"]):
        p = inputs / f"user-{i}.tflite"
        p.write_bytes(mutate(INT8.read_bytes(), rng))
        _case(cases, "tflite_run", i, *RUN, ["--model", p, "--class-map", "positional",
                                             "--preprocess", "unit",
                                             "--dataset", "csv", "--data-dir", manifest,
                                             "--split", "verification", "--workers", 1,
                                             "--no-report", "--quiet", "--out", outs / f"u{i}"],
              env)


def _report_cases(cases, inputs, outs, rng):
    base = _small_run(_mkdir(inputs / "report-base"))
    files = sorted(p.name for p in base.iterdir() if p.suffix in (".json", ".npz", ".csv"))
    for i in range(COUNTS["report"]):
        d = inputs / f"report-{i}"
        shutil.copytree(base, d)
        victim = d / rng.choice(files)
        victim.write_bytes(mutate(victim.read_bytes(), rng))
        _case(cases, "report", i, "benchmark.report:main", "benchmark.report",
              [d, "--out", outs / f"r{i}.html"])


def _more_cases(cases, inputs, outs, rng, cache):
    """benchmark.diagnose (damaged int8 models), benchmark.study (damaged study files: listed,
    a few run), benchmark.convert (a damaged .keras in a model folder) and benchmark.train
    (a damaged --init-from .keras)."""
    env = {"EDGETPU_BENCH_CACHE": str(cache)}
    base = INT8.read_bytes()
    for i in range(COUNTS["diagnose"]):
        p = _mkdir(inputs / f"diag-{i}") / INT8.name   # with its calibration record beside it
        p.write_bytes(mutate(base, rng))
        for name in ("representative_indices.json", "convert_meta.json"):
            shutil.copy(INT8.with_name(name), p.with_name(name))
        _case(cases, "diagnose", i, "benchmark.diagnose.cli:main", "benchmark.diagnose",
              ["--split", "full", "--int8", p, "--no-float", "--limit", 4,
               "--calibration-limit", 4, "--out", outs / f"d{i}", "--no-plots"], env)
    study = "benchmark.study.cli:main", "benchmark.study"
    for i in range(COUNTS["study"] + COUNTS["study_run"]):
        p = inputs / f"study-{i}.toml"
        p.write_bytes(mutate(STUDY.encode(), rng))
        listed = i < COUNTS["study"]
        group, n = ("study", i) if listed else ("study_run", i - COUNTS["study"])
        _case(cases, group, n, *study, [p, "--out", outs / f"s{i}", "--workers", 1, "--quiet",
                                        "--no-report", *(["--list"] if listed else [])], env)
    kbase = KERAS.read_bytes()
    for i in range(COUNTS["convert"]):
        md = _mkdir(outs / f"md{i}" / "signnet" / "verification")  # convert writes here
        shutil.copy(KERAS.with_name("train_meta.json"), md / "train_meta.json")
        (md / "signnet.keras").write_bytes(mutate(kbase, rng))
        _case(cases, "convert", i, "benchmark.convert:main", "benchmark.convert",
              ["--split", "verification", "--model-dir", outs / f"md{i}"], env)
    for i in range(COUNTS["train"]):
        p = inputs / f"init-{i}.keras"
        p.write_bytes(mutate(kbase, rng))
        _case(cases, "train", i, "benchmark.train:main", "benchmark.train",
              ["--split", "verification", "--init-from", p, "--model-dir", outs / f"t{i}",
               "--epochs", 1, "--limit-train", 8], env)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _snapshot(*roots: Path) -> dict:
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    from benchmark.backends.fake import make_fake_compiled
    root = tmp_path_factory.mktemp("fuzz")
    inputs, outs, cache = _mkdir(root / "inputs"), _mkdir(root / "outs"), root / "cache"
    # the cases load the undamaged synthetic dataset instead of rendering it again (25 s);
    # predictions and conversions still go to the fuzz cache itself
    link_datasets(cache)
    rng = random.Random(SEED)
    compiled = make_fake_compiled(INT8, root / "base_edgetpu.tflite") and \
        root / "base_edgetpu.tflite"
    cases: list[dict] = []
    _model_cases(cases, inputs, outs, rng, compiled)
    _text_cases(cases, inputs, outs, rng)
    _data_cases(cases, inputs, outs, rng, cache)
    _report_cases(cases, inputs, outs, rng)
    _more_cases(cases, inputs, outs, rng, cache)
    before = _snapshot(inputs, ROOT / "models")
    (root / "cases.json").write_text(json.dumps(cases))
    results = root / "results.jsonl"
    p = subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz_driver.py"),
                        str(root / "cases.json"), str(results)], cwd=root, capture_output=True,
                       text=True, timeout=600)
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    done = {x["id"]: x for x in lines if "code" in x}
    started = [x["started"] for x in lines if "started" in x]
    return {"cases": cases, "done": done, "started": started, "proc": p, "root": root,
            "before": before, "after": _snapshot(inputs, ROOT / "models"), "outs": outs,
            "cache": cache}


def test_at_least_200_cases_and_no_crash(fuzz):
    assert len(fuzz["cases"]) >= 200
    p = fuzz["proc"]
    last = fuzz["started"][-1] if fuzz["started"] else None
    assert p.returncode == 0, f"driver died ({p.returncode}) during case {last}: {p.stderr[-2000:]}"
    assert len(fuzz["done"]) == len(fuzz["cases"])


def test_exit_codes_and_one_line_errors(fuzz):
    bad = []
    for case in fuzz["cases"]:
        r = fuzz["done"].get(case["id"])
        if r is None:
            continue
        err = r["stderr"]
        if r["code"] not in (0, 2, 3, 4) or "Traceback" in err or "internal error" in err:
            bad.append((case["id"], r["code"], err[-300:], case["argv"]))
        elif r["code"] != 0 and "error:" not in err.strip().splitlines()[-1]:
            bad.append((case["id"], r["code"], "no error line: " + err[-300:], case["argv"]))
    assert not bad, "\n".join(map(str, bad[:10]))


def test_mutations_are_neither_all_fatal_nor_all_harmless(fuzz):
    """Every group has rejected inputs, and some damaged inputs still run (bits in weights)."""
    outcomes: dict[str, list[int]] = {}
    for case in fuzz["cases"]:
        r = fuzz["done"].get(case["id"])
        if r is not None:
            outcomes.setdefault(case["id"].rsplit("-", 1)[0], []).append(r["code"])
    for group, codes in outcomes.items():
        if group == "log":  # --parse-log reports a damaged log inside its JSON, exit 0
            continue
        assert any(c != 0 for c in codes), f"{group}: no mutation was rejected"
    assert sum(c == 0 for codes in outcomes.values() for c in codes) >= 20


def test_no_input_changed_and_no_temporary_left(fuzz):
    before, after = fuzz["before"], fuzz["after"]
    assert {k: after.get(k) for k in before} == before  # nothing changed or deleted
    added = [k for k in after if k not in before]
    # the only thing written beside an input: a run's own figure cache (rundir.FILES)
    assert all("/.figures/" in k for k in added), added[:5]
    left = [p for root in (fuzz["outs"], fuzz["cache"], fuzz["root"] / "inputs")
            if root.exists() for p in root.rglob("*") if ".tmp-" in p.name]
    assert not left, left[:5]
