"""Calibration specs (--calibration-from) and the calibration-sweep summary."""

import numpy as np
import pytest

from benchmark.datasets.base import Dataset
from benchmark.errors import DataError, UsageError
from benchmark.quant import calibration as C
from benchmark.quant.calsweep import format_summary, parse_ints, summary


def _ds():
    rng = np.random.default_rng(0)
    return Dataset(name="toy", images=rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8),
                   labels=np.arange(40) % 4, groups=np.arange(40) // 10,
                   class_names=("a", "b", "c", "d"), verification_groups=(3,))


def test_parse_spec_and_errors():
    s = C.parse_spec("class:b+2, track:1+3 ,brightness:0.5")
    assert s.classes == ("b", "2") and s.groups == (1, 3) and s.brightness == 0.5
    assert C.parse_spec(None).empty and C.parse_spec("").describe() == ""
    for bad in ("colour:red", "brightness:0", "group:x", "class:"):
        with pytest.raises(UsageError, match="--calibration-from"):
            C.parse_spec(bad)


def test_select_narrows_the_pool_and_scales_pixels():
    ds = _ds()
    train = np.arange(30)
    idx, images, rec = C.select(ds, train, C.parse_spec("class:b,group:1,brightness:0.5"),
                                3, 0, 4)
    assert set(ds.labels[idx]) == {1} and set(ds.groups[idx]) == {1}
    assert idx.tolist() == [13, 17]          # the only two of class b in group 1
    np.testing.assert_array_equal(
        images, np.clip(np.rint(ds.images[idx] * np.float32(0.5)), 0, 255).astype(np.uint8))
    assert rec == {"calibration_from": "class:b,group:1,brightness:0.5"}
    # the plain draw is the one benchmark.convert always made
    rng = np.random.default_rng(np.random.SeedSequence([7, 0xCA11B]))
    plain, _, rec = C.select(ds, train, C.parse_spec(None), 5, 7, 4)
    np.testing.assert_array_equal(plain, np.sort(rng.choice(train, 5, replace=False)))
    assert rec == {}
    with pytest.raises(DataError, match="no training image"):
        C.select(ds, train, C.parse_spec("group:3"), 3, 0, 4)
    with pytest.raises(UsageError, match="unknown class"):
        C.select(ds, train, C.parse_spec("class:zebra"), 3, 0, 4)


def test_images_of_reproduces_the_calibration_images():
    ds = _ds()
    idx, images, rec = C.select(ds, np.arange(30), C.parse_spec("brightness:0.25"), 4, 1, 4)
    again = C.images_of(ds, {"indices": idx.tolist(), **rec}, 4)
    np.testing.assert_array_equal(again, images)


def test_folder_calibration(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    idx, images, rec = C.select(_ds(), np.arange(30), C.parse_spec(f"folder:{tmp_path}"),
                                2, 0, 4)
    assert images.shape == (2, 4, 4, 3) and len(rec["files"]) == 2
    assert all(f.endswith(".png") for f in rec["files"])


def test_parse_ints():
    assert parse_ints("1,4, 16", "--calibration-sizes") == (1, 4, 16)
    for bad in ("", "1,x", "0,4"):
        with pytest.raises(UsageError, match="--calibration-sizes"):
            parse_ints(bad, "--calibration-sizes")


def test_summary_median_and_worst():
    rows = [{"split": "verification", "size": 1, "seed": s, "delta_points": d, "swapped": w,
             "float_accuracy": 0.99, "mcnemar_p": p}
            for s, d, w, p in ((0, -20.0, 30, 1e-6), (1, -5.0, 9, 0.01), (2, -1.0, 3, 0.5))]
    rows.append({"split": "verification", "size": 16, "seed": 0, "delta_points": 0.0,
                 "swapped": 1, "float_accuracy": 0.99, "mcnemar_p": 1.0})
    s = summary(rows)
    assert [(x["size"], x["median_delta"], x["worst_delta"], x["significant"]) for x in s] \
        == [(1, -5.0, -20.0, 2), (16, 0.0, 0.0, 0)]
    assert "-20.00" in format_summary(s)
