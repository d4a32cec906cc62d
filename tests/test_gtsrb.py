"""GTSRB loader: the real archives in ../shared (read in place) and official-layout fixtures."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from benchmark.datasets import gtsrb
from benchmark.datasets.registry import load_dataset
from benchmark.errors import DataError, UsageError
from conftest import SHARED

REAL = SHARED / "data" / "gtsrb"
HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


def _ppm(color, size=(20, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PPM")
    return buf.getvalue()


def make_fixture(root, *, zipped=True, bad=None):
    """3 classes x 2 tracks x 3 images for training, 6 test images, official names."""
    files = {}
    for c in range(3):
        rows = []
        for t in range(2):
            for i in range(3):
                name = f"{t:05d}_{i:05d}.ppm"
                files[f"GTSRB/Final_Training/Images/{c:05d}/{name}"] = _ppm((80 * c, 40 * t, i))
                rows.append(f"{name};20;16;2;2;17;13;{c}\n")
        files[f"GTSRB/Final_Training/Images/{c:05d}/GT-{c:05d}.csv"] = HEADER + "".join(rows)
    test_rows = []
    for i in range(6):
        name = f"{i:05d}.ppm"
        files[f"GTSRB/Final_Test/Images/{name}"] = _ppm((10 * i, 0, 0))
        test_rows.append(f"{name};20;16;1;1;18;14;{i % 3}\n")
    if bad:
        files[bad] = b"not an image"
    gt = HEADER + "".join(test_rows)
    if zipped:
        with zipfile.ZipFile(root / "GTSRB_Final_Training_Images.zip", "w") as z:
            for k, v in files.items():
                if k.startswith("GTSRB/Final_Training"):
                    z.writestr(k, v)
        with zipfile.ZipFile(root / "GTSRB_Final_Test_Images.zip", "w") as z:
            for k, v in files.items():
                if k.startswith("GTSRB/Final_Test"):
                    z.writestr(k, v)
        with zipfile.ZipFile(root / "GTSRB_Final_Test_GT.zip", "w") as z:
            z.writestr("GT-final_test.csv", gt)
    else:
        for k, v in files.items():
            (root / k).parent.mkdir(parents=True, exist_ok=True)
            (root / k).write_bytes(v.encode() if isinstance(v, str) else v)
        (root / "GT-final_test.csv").write_text(gt)
    return root


@pytest.mark.parametrize("zipped", [True, False])
def test_fixture_zipped_or_extracted(tmp_path, zipped):
    data = make_fixture(tmp_path, zipped=zipped)
    ds = load_dataset("gtsrb", data_dir=data, image_size=16, cache_dir=tmp_path / "cache",
                      verbose=False)
    assert len(ds) == 24 and ds.num_classes == 43 and ds.images.shape == (24, 16, 16, 3)
    assert ds.labels[:6].tolist() == [0] * 6 and ds.labels[18:].tolist() == [0, 1, 2, 0, 1, 2]
    tr, ev = ds.split("verification")
    assert tr.size == 18 and ev.size == 6 and set(ds.groups[ev]) == {gtsrb.TEST_GROUP}
    # a training image of class 1, track 1 is a flat colour (80, 40, 0..2)
    assert tuple(ds.images[9, 8, 8]) == (80, 40, 0)


def test_full_split_is_by_track_and_only_from_training_images(tmp_path):
    ds = load_dataset("gtsrb", data_dir=make_fixture(tmp_path), image_size=8,
                      cache_dir=tmp_path / "cache", verbose=False)
    tr, ev = ds.split("full", train_fraction=0.5)
    assert ev.size == 24 and np.all(ds.groups[tr] != gtsrb.TEST_GROUP)
    assert tr.size == 9                              # one of two tracks per class, 3 images each
    held = np.setdiff1d(np.flatnonzero(ds.groups != gtsrb.TEST_GROUP), tr)
    assert np.intersect1d(ds.groups[tr], ds.groups[held]).size == 0


def test_cache_is_reused_and_invalidated_by_preprocessing(tmp_path):
    data = make_fixture(tmp_path)
    cache = tmp_path / "cache"
    a = load_dataset("gtsrb", data_dir=data, image_size=8, cache_dir=cache, verbose=False)
    load_dataset("gtsrb", data_dir=data, image_size=8, cache_dir=cache, verbose=False)
    assert len(list(cache.iterdir())) == 1
    b = load_dataset("gtsrb", data_dir=data, image_size=8, options={"roi_crop": True},
                     cache_dir=cache, verbose=False)
    assert len(list(cache.iterdir())) == 2 and a.meta["cache_key"] != b.meta["cache_key"]
    load_dataset("gtsrb", data_dir=data, image_size=12, cache_dir=cache, verbose=False)
    assert len(list(cache.iterdir())) == 3


def test_bad_image_fails_naming_the_file_or_is_skipped(tmp_path):
    bad = "GTSRB/Final_Training/Images/00001/00000_00001.ppm"
    data = make_fixture(tmp_path, bad=bad)
    with pytest.raises(DataError, match="cannot read GTSRB image .*00000_00001.ppm"):
        load_dataset("gtsrb", data_dir=data, image_size=8, cache_dir=tmp_path / "c",
                     verbose=False)
    ds = load_dataset("gtsrb", data_dir=data, image_size=8, cache_dir=tmp_path / "c",
                      verbose=False, on_bad_image="skip")
    assert len(ds) == 23 and ds.meta["skipped"] == [bad]


def test_missing_data_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="put GTSRB_Final_Training_Images.zip"):
        load_dataset("gtsrb", data_dir=tmp_path, cache_dir=tmp_path / "c", verbose=False)
    with pytest.raises(UsageError, match="needs --data-dir"):
        load_dataset("gtsrb", cache_dir=tmp_path / "c", verbose=False)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/gtsrb not present")
def test_real_archives_read_in_place():
    records, sources = gtsrb.read_records(REAL)
    train = [r for r in records if r.source == "train"]
    test = [r for r in records if r.source == "test"]
    assert len(train) == 39209 and len(test) == 12630
    assert len({r.label for r in records}) == 43
    assert test[0].member == "GTSRB/Final_Test/Images/00000.ppm" and test[0].label == 16
    imgs, keep, skipped = gtsrb.decode(train[:5] + test[:5], sources, image_size=80,
                                       roi_crop=True)
    assert imgs.shape == (10, 80, 80, 3) and keep.all() and skipped == []
    assert imgs.std() > 10
