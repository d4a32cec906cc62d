"""Bad dataset input (issue #12, point 8): one line naming the file, exit code 3 (DataError).

Every case goes through ``benchmark.train``'s command line and
:func:`benchmark.cli.main_wrapper` (what a user runs); TensorFlow is not
needed because the dataset is read, and refused, before it is used.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from benchmark import train
from benchmark.cli import main_wrapper


@pytest.fixture
def run_train(tmp_path, monkeypatch, capsys):
    """``benchmark.train`` on a dataset: ``(exit code, stderr)``; training itself never runs."""
    def fit(*a, **k):
        raise AssertionError("the bad input must be refused before training")
    monkeypatch.setattr(train, "require_tensorflow", lambda what: None)
    monkeypatch.setattr(train, "fit", fit)
    monkeypatch.setenv("EDGETPU_BENCH_CACHE", str(tmp_path / "cache"))

    def run(dataset: str, data_dir, *extra):
        code = main_wrapper("benchmark.train", train.main, [
            "--split", "verification", "--dataset", dataset, "--data-dir", str(data_dir),
            "--model-dir", str(tmp_path / "models"), "--cache-dir", str(tmp_path / "cache"),
            *map(str, extra)])
        return code, capsys.readouterr().err
    return run


def _png(path, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, value, value)).save(path)


def _one_line(err: str, *words: str) -> None:
    """The error is one line, the last on stderr (progress lines such as 'decoding' may
    come before it)."""
    lines = err.rstrip("\n").split("\n")
    assert lines[-1].startswith("benchmark.train: error: "), err
    assert sum("error" in x for x in lines) == 1, err
    err = lines[-1]
    for w in words:
        assert w in err, (w, err)


# ---------------------------------------------------------------- csv, image folders


def test_csv_labels_written_as_floats(tmp_path, run_train):
    for i in range(3):
        _png(tmp_path / f"{i}.png")
    m = tmp_path / "labels.csv"
    m.write_text("path,label\n0.png,0\n1.png,3.0\n2.png,1\n")
    code, err = run_train("csv", m)
    assert code == 3
    _one_line(err, f"{m} line 3: label '3.0' is written as a float", "integer class ids")


def test_csv_float_looking_class_names_are_fine_when_listed(tmp_path):
    from benchmark.datasets.userdata import list_csv
    for i in range(2):
        _png(tmp_path / f"{i}.png")
    (tmp_path / "names.txt").write_text("1.5\n2.5\n")
    m = tmp_path / "labels.csv"
    m.write_text("0.png,2.5\n1.png,1.5\n")
    listing = list_csv(m, class_names="names.txt")
    assert [it.label for it in listing.items] == [1, 0]


def test_integer_folders_that_are_not_zero_padded_are_refused(tmp_path, run_train):
    for c in (1, 2, 10):
        _png(tmp_path / "train" / str(c) / "a.png")
        _png(tmp_path / "test" / str(c) / "a.png")
    code, err = run_train("imagefolder", tmp_path)
    assert code == 3
    _one_line(err, f"class folders of {tmp_path} are integers that are not zero-padded",
              "label 1 would be folder '10', not '2'", "rename them to 2 digits (01, ...)")


def test_zero_padded_and_single_digit_folders_load(tmp_path):
    from benchmark.datasets.userdata import list_imagefolder
    for c in ("07", "08", "09", "10"):
        _png(tmp_path / c / "a.png")
    assert list_imagefolder(tmp_path).class_names == ("07", "08", "09", "10")
    for c in ("1", "2", "3"):
        _png(tmp_path / "x" / c / "a.png")
    assert list_imagefolder(tmp_path / "x").class_names == ("1", "2", "3")


def test_dangling_symlink_is_named_not_dropped(tmp_path, run_train):
    for c in ("a", "b"):
        _png(tmp_path / c / "1.png")
        _png(tmp_path / c / "2.png")
    link = tmp_path / "b" / "3.png"
    link.symlink_to(tmp_path / "gone.png")
    code, err = run_train("imagefolder", tmp_path)
    assert code == 3
    _one_line(err, f"cannot read image {link}: a symlink to {tmp_path / 'gone.png'}, which "
              "does not exist", "--on-bad-image skip")


def test_dangling_symlink_is_listed_when_skipping(tmp_path):
    from benchmark.datasets.registry import load_dataset
    for c in ("a", "b"):
        _png(tmp_path / "d" / c / "1.png")
        _png(tmp_path / "d" / c / "2.png")
    link = tmp_path / "d" / "b" / "3.png"
    link.symlink_to(tmp_path / "gone.png")
    ds = load_dataset("imagefolder", image_size=8, data_dir=tmp_path / "d",
                      cache_dir=tmp_path / "c", on_bad_image="skip", verbose=False)
    assert ds.meta["skipped"] == [str(link)] and len(ds) == 4


def test_unreadable_class_folder_is_an_error(tmp_path, run_train, monkeypatch):
    """Listing a folder fails (simulated: the tests may run as root, which reads anything)."""
    for c in ("a", "b"):
        _png(tmp_path / c / "1.png")
    bad = tmp_path / "b"
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(bad):
            raise PermissionError(13, "Permission denied", str(bad))
        return real(path)
    monkeypatch.setattr(os, "scandir", scandir)
    code, err = run_train("imagefolder", tmp_path)
    assert code == 3
    _one_line(err, f"cannot read folder {bad}: Permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders without permission")
def test_unreadable_class_folder_for_real(tmp_path, run_train):
    for c in ("a", "b"):
        _png(tmp_path / c / "1.png")
    (tmp_path / "b").chmod(0)
    try:
        code, err = run_train("imagefolder", tmp_path)
    finally:
        (tmp_path / "b").chmod(0o755)
    assert code == 3
    _one_line(err, f"cannot read folder {tmp_path / 'b'}: Permission denied")


def _bytes_path(folder, name: bytes) -> bytes:
    return os.path.join(os.fsencode(folder), name)


def test_non_utf8_file_name_is_named(tmp_path, run_train):
    for c in ("a", "b"):
        _png(tmp_path / c / "1.png")
    raw = _bytes_path(tmp_path / "b", b"caf\xe9.png")
    try:
        with open(raw, "wb") as f:
            f.write((tmp_path / "a" / "1.png").read_bytes())
    except OSError as e:  # a file system that only takes UTF-8 names
        pytest.skip(f"cannot create a non-UTF-8 file name here: {e}")
    code, err = run_train("imagefolder", tmp_path)
    assert code == 3
    _one_line(err, "image b'", "caf\\xe9.png' has a name that is not UTF-8: rename it")


def test_non_utf8_class_folder_is_named(tmp_path, run_train):
    _png(tmp_path / "a" / "1.png")
    raw = _bytes_path(tmp_path, b"sch\xf6n")
    try:
        os.mkdir(raw)
    except OSError as e:
        pytest.skip(f"cannot create a non-UTF-8 folder name here: {e}")
    with open(os.path.join(raw, b"1.png"), "wb") as f:
        f.write((tmp_path / "a" / "1.png").read_bytes())
    code, err = run_train("imagefolder", tmp_path)
    assert code == 3
    _one_line(err, "class folder b'", "sch\\xf6n' has a name that is not UTF-8")


# ---------------------------------------------------------------- CIFAR .npz


def _npz(path, **over):
    rng = np.random.default_rng(0)
    arrays = {"test_images": rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
              "test_fine_labels": np.array([0, 1, 2, 1]),
              "train_images": rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
              "train_fine_labels": np.array([0, 1, 2, 0, 1, 2]),
              "fine_label_names": np.array(["a", "b", "c"])}
    arrays.update(over)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("over,words", [
    ({"test_images": np.random.default_rng(1).random((4, 32, 32, 3)).astype(np.float32)},
     ["test_images holds float32 values (max 0.99", "expected uint8 pixel values 0..255",
      "images scaled to [0, 1]? store round(x * 255) as uint8"]),
    ({"train_images": np.zeros((6, 3, 32, 32), np.uint8)},
     ["train_images has shape (6, 3, 32, 32), channels first",
      "store x.transpose(0, 2, 3, 1)"]),
    ({"test_images": np.full((4, 32, 32, 3), 300, np.int64)},
     ["test_images has pixel values 300..300, outside 0..255"]),
    ({"test_fine_labels": np.array([0, 1, 2])},
     ["test_images has 4 images but test_fine_labels has 3 labels"]),
    ({"train_fine_labels": np.array([0.0, 1, 2, 0, 1, 2])},
     ["train_fine_labels holds float64 values; expected integer class ids"]),
    ({"test_images": np.zeros((4, 32, 32), np.uint8)},
     ["test_images has shape (4, 32, 32); expected (N, 32, 32, 3) RGB"]),
])
def test_bad_cifar_npz(tmp_path, run_train, over, words):
    path = _npz(tmp_path / "cifar.npz", **over)
    code, err = run_train("cifar100", path)
    assert code == 3
    _one_line(err, f"{path}: ", *words)


def test_good_cifar_npz_and_wider_integer_pixels_load(tmp_path):
    from benchmark.datasets.cifar100 import read
    parts = read(_npz(tmp_path / "ok.npz", test_images=np.full((4, 32, 32, 3), 255, np.int64)))
    assert parts["test"][0].dtype == np.uint8 and parts["test"][0].max() == 255
    assert parts["train"][1].tolist() == [0, 1, 2, 0, 1, 2]


def test_official_pickle_pixel_values_are_checked():
    from benchmark.datasets.cifar100 import _batch
    from benchmark.errors import DataError
    with pytest.raises(DataError, match=r"test: data has pixel values 0\.\.256, outside 0\.\.255"):
        _batch({b"data": np.array([[0] * 3071 + [256]]), b"fine_labels": [0]}, "test")
