"""benchmark.train and benchmark.convert when the disk fills up mid-write (needs TensorFlow).

The faults are injected as in tests/test_reliability_fulldisk.py (``os.fsync`` of a named
temporary raises ``ENOSPC``; Keras' own ``.keras`` writer through ``Model.save``).
Asserted: exit code 3, one line naming the file, no temporary left, the files already
written kept, and a rerun finishing the work. Read-only folders:
tests/test_reliability_readonly.py.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil

from conftest import ROOT
from test_reliability_fulldisk import NOSPACE, _main, _one_line, _temporaries
from test_reliability_fulldisk import disk_fills_at  # noqa: F401 (a fixture)

TRAIN = ["--split", "verification", "--epochs", "1", "--limit-train", "16", "--batch-size", "8"]


def test_train_disk_full_writing_its_record_then_rerun(tf, tmp_path, capsys,
                                                       disk_fills_at):  # noqa: F811
    md = tmp_path / "models"
    art = md / "signnet" / "verification"
    disk_fills_at("*/.train_meta.json.tmp*")
    code, err = _main("benchmark.train", [*TRAIN, "--model-dir", md], capsys)
    assert code == 3, err
    _one_line(err, "benchmark.train", str(art / "train_meta.json"))
    assert sorted(os.listdir(art)) == ["history.json", "signnet.keras"]   # kept, no temporary
    disk_fills_at(None)
    code, err = _main("benchmark.train", [*TRAIN, "--model-dir", md], capsys)
    assert code == 2 and "pass --overwrite" in err        # the user is asked, not overwritten
    code, err = _main("benchmark.train", [*TRAIN, "--model-dir", md, "--overwrite"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(art)) == ["history.json", "signnet.keras", "train_meta.json"]


def test_train_disk_full_while_keras_saves_leaves_no_temporary(tf, tmp_path, monkeypatch,
                                                               capsys):
    import keras
    real = keras.Model.save

    def save(self, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, NOSPACE, str(path))
    monkeypatch.setattr(keras.Model, "save", save)
    md = tmp_path / "models"
    code, err = _main("benchmark.train", [*TRAIN, "--model-dir", md], capsys)
    assert code == 3, err
    _one_line(err, "benchmark.train", ".signnet.tmp.keras")
    assert os.listdir(md / "signnet" / "verification") == []
    monkeypatch.setattr(keras.Model, "save", real)
    code, err = _main("benchmark.train", [*TRAIN, "--model-dir", md], capsys)
    assert code == 0, err


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_convert_disk_full_writing_the_int8_model_then_rerun(tf, tmp_path, capsys,
                                                             disk_fills_at):  # noqa: F811
    md = tmp_path / "models"
    art = md / "signnet" / "verification"
    art.mkdir(parents=True)
    src = ROOT / "models" / "signnet" / "verification"
    for name in ("signnet.keras", "train_meta.json"):
        shutil.copy(src / name, art / name)
    inputs = {n: _sha(art / n) for n in os.listdir(art)}
    disk_fills_at("*/.signnet_int8.tflite.tmp*")
    argv = ["--split", "verification", "--model-dir", md, "--representative-size", "16"]
    code, err = _main("benchmark.convert", argv, capsys)
    assert code == 3, err
    _one_line(err, "benchmark.convert", str(art / "signnet_int8.tflite"))
    assert not _temporaries(art) and not (art / "signnet_int8.tflite").exists()
    assert {n: _sha(art / n) for n in inputs} == inputs          # the trained model kept
    disk_fills_at(None)
    code, err = _main("benchmark.convert", argv, capsys)
    assert code == 0, err
    assert (art / "signnet_int8.tflite").is_file() and (art / "convert_meta.json").is_file()
