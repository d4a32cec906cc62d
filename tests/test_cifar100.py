"""CIFAR-100 loader: official python format (archive the test writes), folder, partial .npz."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest

from benchmark.datasets import cifar100
from benchmark.datasets.registry import load_dataset
from benchmark.errors import DataError, UsageError

from conftest import SHARED, load_predictions, read_results, run_cli, run_main

CIFAR = SHARED / "data" / "cifar100" / "cifar100_partial.npz"
WEIGHTS = SHARED / "models" / "cifar100_resnet"


def _pixels(n: int, seed: int) -> np.ndarray:
    """(n, 3072) rows in the official channel-major order."""
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def _write_official(root, n_train=7, n_test=5, names=None):
    """The official ``cifar-100-python`` files, written here by hand (not by the loader)."""
    names = names or [f"class{i}" for i in range(100)]
    batches = {"train": (_pixels(n_train, 1), [(3 * i) % 100 for i in range(n_train)]),
               "test": (_pixels(n_test, 2), [(7 * i + 1) % 100 for i in range(n_test)])}
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for part, (data, labels) in batches.items():
        with open(folder / part, "wb") as f:
            pickle.dump({b"filenames": [b"x.png"] * len(labels), b"batch_label": b"b",
                         b"fine_labels": labels, b"coarse_labels": [0] * len(labels),
                         b"data": data}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [n.encode() for n in names],
                     b"coarse_label_names": [b"c"] * 20}, f)
    archive = root / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-100-python")
    return folder, archive, batches


@pytest.mark.parametrize("which", ["archive", "folder", "parent-of-archive"])
def test_official_format(tmp_path, which):
    folder, archive, batches = _write_official(tmp_path / "src")
    if which == "parent-of-archive":
        (tmp_path / "only").mkdir()
        archive.rename(tmp_path / "only" / archive.name)
        source = tmp_path / "only"
    else:
        source = {"archive": archive, "folder": folder}[which]
    ds = load_dataset("cifar100", image_size=32, data_dir=source)
    n_test, n_train = 5, 7
    assert len(ds) == n_test + n_train and ds.num_classes == 100
    assert ds.class_names[:2] == ("class0", "class1")
    # Rows 0..4 are the test images in file order, then the training images.
    data, labels = batches["test"]
    np.testing.assert_array_equal(ds.labels[:n_test], labels)
    np.testing.assert_array_equal(ds.labels[n_test:], batches["train"][1])
    # Channel-major rows: value (c, y, x) sits at c*1024 + y*32 + x.
    row = data[3]
    assert ds.images[3, 4, 5, 0] == row[0 * 1024 + 4 * 32 + 5]
    assert ds.images[3, 31, 0, 2] == row[2 * 1024 + 31 * 32 + 0]
    train, test = ds.split("verification")
    np.testing.assert_array_equal(test, np.arange(n_test))
    np.testing.assert_array_equal(train, np.arange(n_test, n_test + n_train))
    assert ds.meta["n_test"] == n_test and "rows 0..4 are the test images" in ds.meta["layout"]


def test_resize_and_errors(tmp_path):
    folder, archive, _ = _write_official(tmp_path / "src")
    ds = load_dataset("cifar100", image_size=40, data_dir=archive)
    assert ds.images.shape == (12, 40, 40, 3) and ds.images.dtype == np.uint8
    with pytest.raises(DataError, match="no CIFAR-100 data at"):
        load_dataset("cifar100", data_dir=tmp_path / "empty")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset("cifar100", data_dir=bad)
    (folder / "test").write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8),
                                                b"fine_labels": [0, 1]}))
    with pytest.raises(DataError, match=r"test: data has shape \(2, 5\)"):
        load_dataset("cifar100", data_dir=folder)
    with pytest.raises(UsageError, match="cifar100 needs --data-dir"):
        load_dataset("cifar100")


def test_writer_round_trip(tmp_path):
    """write_official_archive (a helper for users with partial copies) reads back identically."""
    _, archive, _ = _write_official(tmp_path / "src")
    parts = cifar100.read(archive)
    again = cifar100.read(cifar100.write_official_archive(tmp_path / "copy.tar.gz", parts))
    for k in ("test", "train"):
        for a, b in zip(parts[k], again[k]):
            np.testing.assert_array_equal(a, b)
    assert parts["class_names"] == again["class_names"]


@pytest.mark.skipif(not CIFAR.is_file(), reason="../shared/data/cifar100 not present")
def test_shared_partial_archive():
    ds = load_dataset("cifar100", image_size=32, data_dir=CIFAR.parent)
    with np.load(CIFAR) as z:
        np.testing.assert_array_equal(ds.images[:916], z["test_images"])
        np.testing.assert_array_equal(ds.images[916:], z["train_images"])
        np.testing.assert_array_equal(ds.labels[:916], z["test_fine_labels"])
        assert list(ds.class_names) == [str(n) for n in z["fine_label_names"]]
    train, test = ds.split("verification")
    assert test.size == 916 and train.size == 486 and not set(train) & set(test)


@pytest.mark.slow
@pytest.mark.skipif(not (CIFAR.is_file() and WEIGHTS.is_dir()),
                    reason="../shared CIFAR-100 data or ResNet weights not present")
def test_run_resnet20_on_shared_images(tf, tmp_path):
    # In this process (TensorFlow is imported already): the run is about what it computes;
    # the second run below, about what the command prints, stays a subprocess.
    out = tmp_path / "run"
    r = run_main("benchmark.run", "--model", "resnet20", "--dataset", "cifar100",
                 "--data-dir", CIFAR.parent, "--weights", WEIGHTS / "cifar100_resnet20.npz",
                 "--device", "cpu", "--out", out, "--no-report", "--quiet",
                 env={"EDGETPU_BENCH_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    res = read_results(out)
    assert res["variants"]["float"]["accuracy"] == pytest.approx(0.6932, abs=6e-4)
    assert res["variants"]["int8"]["accuracy"] > 0.65
    with np.load(CIFAR) as z:
        for v in ("float", "int8"):
            p = load_predictions(out, v)
            # index = the image's position in the file's test batch
            np.testing.assert_array_equal(p["index"], np.arange(916))
            np.testing.assert_array_equal(p["labels"], z["test_fine_labels"])
    cal = res["calibration_images"]
    assert cal["size"] == 486 and min(cal["rows"]) >= 916  # training rows only
    assert res["model_source"]["weights_sha256"]
    # Second run reuses the conversion.
    r2 = run_cli("benchmark.run", "--model", "resnet20", "--dataset", "cifar100",
                 "--data-dir", CIFAR.parent, "--weights", WEIGHTS / "cifar100_resnet20.npz",
                 "--out", tmp_path / "run2", "--no-report", "--limit", "50",
                 env={"EDGETPU_BENCH_CACHE": str(tmp_path / "cache")})
    assert r2.returncode == 0 and "using the models converted earlier" in r2.stderr


def test_resnet_without_weights_is_one_line(tmp_path):
    r = run_cli("benchmark.run", "--model", "resnet56", "--dataset", "cifar100",
                "--data-dir", tmp_path, "--out", tmp_path / "x")
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("benchmark.run: error: resnet56 has no shipped weights: pass --weights")
    assert "Traceback" not in r.stderr


def test_resnet_is_not_trained_here():
    r = run_cli("benchmark.train", "--model", "resnet20", "--split", "full")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "resnet20 is not trained here: it loads pretrained weights" in r.stderr


@pytest.mark.skipif(not CIFAR.is_file(), reason="../shared/data/cifar100 not present")
def test_missing_weights_file_is_one_line(tmp_path):
    r = run_cli("benchmark.run", "--model", "resnet20", "--dataset", "cifar100",
                "--data-dir", CIFAR.parent, "--weights", tmp_path / "nope.npz",
                "--out", tmp_path / "x")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == \
        f"benchmark.run: error: weights file not found: {tmp_path / 'nope.npz'}"
