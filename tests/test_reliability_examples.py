"""The examples of issue #16 that had no command-level test: one line, exit code, files kept.

Each case runs a command's ``main`` through :func:`benchmark.cli.main_wrapper`
(what a user runs) and asserts the exit code, one ``error:`` line naming the file
or option, no traceback, and, where a user's file is involved, its bytes unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.cli import main_wrapper
from conftest import ROOT
from test_bad_input import _npz, run_train  # noqa: F401  (run_train is a fixture)

INT8 = ROOT / "models" / "signnet" / "full" / "signnet_int8.tflite"
RUN = ["--split", "verification", "--limit", "4", "--workers", "1", "--quiet", "--no-report"]


def _main(module: str, argv, capsys) -> tuple[int, str]:
    main = importlib.import_module(module).main
    code = main_wrapper(module.removesuffix(".__main__"), main, [str(a) for a in argv])
    return code, capsys.readouterr().err


def _line(err: str, prog: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith(f"{prog}: error: "), err
    assert sum("error:" in x for x in lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[-1], (w, lines[-1])
    return lines[-1]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EDGETPU_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# ---------------------------------------------------------------- damaged CIFAR .npz

@pytest.mark.parametrize("damage", ["truncated", "crc"])
def test_damaged_cifar_npz_is_one_line_exit_3(tmp_path, run_train, damage):  # noqa: F811
    path = _npz(tmp_path / "cifar.npz")
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:len(data) // 2]
    else:  # a flipped byte inside the first member's data: a CRC error when it is read
        data[120] ^= 0xFF
    path.write_bytes(bytes(data))
    before = _sha(path)
    code, err = run_train("cifar100", path, "--on-bad-image", "skip")
    assert code == 3, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"benchmark.train: error: cannot read {path}: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert _sha(path) == before


# ---------------------------------------------------------------- model metadata

@pytest.fixture
def model_dir(tmp_path):
    md = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "signnet" / "verification", md / "signnet" / "verification")
    return md


@pytest.mark.parametrize("text,words", [
    ("{}", ["missing key 'model'"]),
    ('{"dataset": "carolo-synth", "split', ["is not valid JSON", "Unterminated string"]),
])
def test_bad_train_meta_names_the_file_before_anything_is_written(model_dir, tmp_path, capsys,
                                                                  text, words):
    meta = model_dir / "signnet" / "verification" / "train_meta.json"
    meta.write_text(text)
    out = tmp_path / "run"
    code, err = _main("benchmark.run", [*RUN, "--model-dir", model_dir, "--out", out], capsys)
    assert code == 3, err
    _line(err, "benchmark.run", str(meta), *words)
    assert not out.exists() and meta.read_text() == text


@pytest.fixture(scope="module")
def folder43(tmp_path_factory):
    root = tmp_path_factory.mktemp("f43")
    for c in range(43):
        d = root / f"{c:05d}"
        d.mkdir()
        for i in range(2):
            Image.new("RGB", (16, 16), (c * 5, i * 50, 0)).save(d / f"{i}.png")
    return root


@pytest.mark.parametrize("argv,words", [
    (["--model", "signnet", "--dataset", "imagefolder"],
     ["class names of signnet (train_meta.json) and the data do not match",
      "43 of 43 data classes are not model classes"]),
    (["--model", INT8, "--class-map", "positional", "--preprocess", "unit"],
     ["--class-map positional: the model has 30 outputs but the data 43 classes"]),
])
def test_30_output_model_on_43_class_folder_before_evaluating(folder43, tmp_path, capsys,
                                                              monkeypatch, argv, words):
    from benchmark import pipeline

    def never(*a, **k):
        raise AssertionError("refused only after evaluating")
    monkeypatch.setattr(pipeline, "_evaluate_all", never)
    out = tmp_path / "run"
    code, err = _main("benchmark.run", [*RUN, *argv, "--data-dir", folder43, "--out", out],
                      capsys)
    assert code == 3, err
    _line(err, "benchmark.run", *words)
    assert not out.exists()      # nothing was written: the same --out can be used again


def test_a_folder_of_the_users_is_refused_and_left_as_it_was(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    code, err = _main("benchmark.run", [*RUN, "--out", out], capsys)
    assert code == 2, err
    _line(err, "benchmark.run", f"--out {out} holds files benchmark.run did not write "
                                "(notes.txt); choose another --out")
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine\n"


# ---------------------------------------------------------------- a full dataset cache

def test_cache_that_fills_up_while_storing_is_one_line(tmp_path, capsys, monkeypatch):
    from benchmark.datasets import cache
    real = np.save

    def save(file, arr, *a, **k):
        if str(file).startswith(str(tmp_path / "cache")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, arr, *a, **k)
    monkeypatch.setattr(cache.np, "save", save)
    from test_fuzz_cli import _manifest        # 60 small images of 30 classes
    manifest = _manifest(tmp_path / "data")
    argv = [*RUN, "--model", INT8, "--class-map", "positional", "--preprocess", "unit",
            "--dataset", "csv", "--data-dir", manifest,
            "--cache-dir", tmp_path / "cache", "--out", tmp_path / "run"]
    code, err = _main("benchmark.run", argv, capsys)
    assert code == 3, err
    _line(err, "benchmark.run", str(tmp_path / "cache"), "No space left on device")
    assert [p.name for p in (tmp_path / "cache").rglob("*") if not p.is_dir()] == []
    monkeypatch.setattr(cache.np, "save", real)
    code, err = _main("benchmark.run", [*argv, "--resume"], capsys)
    assert code == 0, err


# ---------------------------------------------------------------- an output that is a file

def _file_cases(f: Path, d: Path, run: Path, study: Path):
    """``(module, argv, message start)``: each command's output option given a file (or a
    folder where a file is written)."""
    return [
        ("benchmark.run", [*RUN, "--out", f], f"--out {f} exists and is not a directory"),
        ("benchmark.run", [*RUN, "--out", d / "r", "--cache-dir", f],
         f"--cache-dir {f}: is a file, not a folder"),
        ("benchmark.run", [*RUN, "--out", f / "sub"], f"--out {f / 'sub'}: {f} is a file"),
        ("benchmark.report", [run, "--out", d], f"--out {d}: is a folder, not a file"),
        ("benchmark.report", [run, "--out", d / "r.html", "--figures", f],
         f"--figures {f}: is a file, not a folder"),
        ("benchmark.compile.__main__", ["--analyze-only", INT8, "--out-dir", f],
         f"--out-dir {f} is a file, not a folder"),
        ("benchmark.latency", [INT8, "--runs", 2, "--warmup", 0, "--json", d],
         f"--json {d}: is a folder, not a file"),
        ("benchmark.train", ["--split", "verification", "--model-dir", f],
         f"--model-dir {f / 'signnet' / 'verification'}: {f} is a file, not a folder"),
        ("benchmark.convert", ["--split", "verification", "--model-dir", f],
         f"--model-dir {f / 'signnet' / 'verification'}: {f} is a file, not a folder"),
        ("benchmark.diagnose.cli", ["--split", "verification", "--out", f],
         f"--out {f}: is a file, not a folder"),
        ("benchmark.study.cli", [study, "--out", f], f"--out {f}: is a file, not a folder"),
        ("benchmark.quant.actbits", ["--act-bits", "8,4", "--out", f],
         f"--out {f}: is a file, not a folder"),
        ("benchmark.quant.calsweep", ["--calibration-sizes", "8", "--out", f],
         f"--out {f}: is a file, not a folder"),
    ]


@pytest.fixture(scope="module")
def file_places(tmp_path_factory):
    from test_report_fast import small_run
    root = tmp_path_factory.mktemp("files")
    f = root / "mine.txt"
    f.write_text("the user's own file\n")
    (root / "d").mkdir()
    cm = np.array([[3, 1], [0, 4]])
    run = small_run(root / "run", {"float": cm, "int8": cm}, ["a", "b"])
    study = root / "s.toml"
    study.write_text('name = "s"\nsplits = ["verification"]\nlimit = 4\n\n[[models]]\n'
                     'name = "signnet"\n')
    return f, root / "d", run, study


@pytest.mark.parametrize("i", range(len(_file_cases(Path("f"), Path("d"), Path("r"),
                                                    Path("s")))))
def test_an_output_that_is_a_file_is_refused_and_kept(file_places, capsys, i):
    f, d, run, study = file_places
    module, argv, message = _file_cases(f, d, run, study)[i]
    code, err = _main(module, argv, capsys)
    assert code == 2, err
    _line(err, module.removesuffix(".__main__"), message)
    assert f.read_text() == "the user's own file\n"
    assert os.listdir(d) == []
    assert not (d / "r").exists()


def test_study_file_example_is_valid(file_places):
    """The study the file cases use is a real study (so its refusal is the --out one)."""
    from benchmark.study.spec import load_study
    assert load_study(file_places[3]).name == "s"


# ---------------------------------------------------------------- a damaged .keras

@pytest.mark.parametrize("damage,words", [
    ("truncated", "not a readable .keras file (a zip archive; truncated or damaged?)"),
    ("flipped", "damaged .keras file: its member model.weights.h5 fails the CRC check"),
])
def test_damaged_keras_is_named_before_data_or_tensorflow(tmp_path, capsys, monkeypatch,
                                                          damage, words):
    """Keras said "File not found" for a truncated file and let BadZipFile escape (exit 1)."""
    from benchmark import train
    monkeypatch.setattr(train, "load_dataset", lambda *a, **k: pytest.fail("data loaded"))
    src = (ROOT / "models" / "signnet" / "verification" / "signnet.keras").read_bytes()
    p = tmp_path / "init.keras"
    p.write_bytes(src[:len(src) // 2] if damage == "truncated"
                  else src[:-2000] + bytes([src[-2000] ^ 1]) + src[-1999:])
    code, err = _main("benchmark.train", ["--split", "verification", "--init-from", p,
                                          "--model-dir", tmp_path / "m"], capsys)
    assert code == 3, err
    _line(err, "benchmark.train", f"{p}: {words}")
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- --out among the inputs

def test_out_inside_the_data_folder_or_the_model_folder_is_refused(folder43, model_dir,
                                                                   tmp_path, capsys):
    """A run directory inside an image folder would be read as a class by the next run."""
    before = sorted(p.name for p in folder43.iterdir())
    code, err = _main("benchmark.run", [*RUN, "--model", "signnet-gtsrb", "--dataset",
                                        "imagefolder", "--data-dir", folder43,
                                        "--out", folder43 / "run"], capsys)
    assert code == 2, err
    _line(err, "benchmark.run", f"--out {folder43 / 'run'}: inside the data folder of split "
                                f"verification {folder43}; choose a folder outside")
    assert sorted(p.name for p in folder43.iterdir()) == before
    art = model_dir / "signnet" / "verification"
    code, err = _main("benchmark.run", [*RUN, "--model-dir", model_dir, "--out", art], capsys)
    assert code == 2, err
    _line(err, "benchmark.run", f"--out {art}: is the model folder of split verification")
    cache = tmp_path / "c"
    code, err = _main("benchmark.run", [*RUN, "--cache-dir", cache, "--out", cache / "r"],
                      capsys)
    assert code == 2, err
    _line(err, "benchmark.run", f"--out {cache / 'r'}: inside the dataset cache")


# ---------------------------------------------------------------- a .tflite the interpreter rejects

def _rejected_at_prepare(seed: int = 7, tries: int = 300) -> bytes:
    """The first seeded mutation of the shipped int8 model that parses as a flatbuffer but
    that the LiteRT interpreter refuses in ``allocate_tensors``."""
    import random

    from ai_edge_litert.interpreter import Interpreter
    from test_fuzz_cli import mutate
    rng, base = random.Random(seed), INT8.read_bytes()
    for _ in range(tries):
        data = mutate(base, rng)
        try:
            Interpreter(model_content=data).allocate_tensors()
        except RuntimeError as e:
            if "prepare" in str(e):
                return data
        except Exception:       # refused earlier (not a flatbuffer, a bad index ...)
            continue
    pytest.skip("no mutation that fails only at prepare (another LiteRT version?)")


def test_model_rejected_at_prepare_is_one_line_naming_it(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert.interpreter")
    p = tmp_path / "m.tflite"
    p.write_bytes(_rejected_at_prepare())
    code, err = _main("benchmark.latency", [p, "--runs", 2, "--warmup", 0], capsys)
    assert code == 3, err
    _line(err, "benchmark.latency", f"{p}: the TFLite interpreter cannot prepare this model: ")
    code, err = _main("benchmark.run", [*RUN, "--model", p, "--class-map", "positional",
                                        "--preprocess", "unit", "--out", tmp_path / "run"],
                      capsys)
    assert code == 3, err
    _line(err, "benchmark.run", str(p))


# ---------------------------------------------------------------- --download without room

def test_download_without_room_for_the_archives_is_refused(tmp_path, monkeypatch):
    from collections import namedtuple

    from benchmark.datasets import download
    from benchmark.errors import UsageError
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 12, 0, 50 * 10 ** 6))
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("fetched"))
    with pytest.raises(UsageError, match=rf"^--data-dir {tmp_path / 'gt'}: needs about "
                                         r"1\d\d\.\d MiB, only 47.7 MiB free"):
        download.download_dataset("gtsrb", tmp_path / "gt", url="http://localhost/x/",
                                  progress=False)
    assert not (tmp_path / "gt").exists()
