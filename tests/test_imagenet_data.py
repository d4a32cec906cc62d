"""imagenet dataset: class index from the synset list, centre crop, splits, cache, errors; CLI.

The fixture is generated: three WordNet id folders with a few non-square
PNG/JPEG images, and a LOC_synset_mapping.txt of 1000 made-up ids in which
the three sit at known positions. No ImageNet image is used.
"""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from benchmark.datasets import imagenet
from benchmark.datasets.registry import DATASETS, load_dataset
from benchmark.errors import DataError, UsageError
from conftest import load_predictions, read_results, run_main

#: 1000 made-up, sorted WordNet ids; the fixture's class folders sit at POSITIONS.
WNIDS = [f"n{1000000 + 37 * i:08d}" for i in range(1000)]
POSITIONS = (3, 500, 998)
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 200, 0)


def mapping_lines(wnids=WNIDS) -> list[str]:
    names = {i: f"class {i}, alias {i}" for i in range(len(wnids))}
    names[3], names[500], names[998] = "tench, Tinca tinca", "crane", "crane"
    return [f"{w} {names[i]}" for i, w in enumerate(wnids)]


def framed(size, inner, colour=RED, border=BLUE) -> Image.Image:
    """``size`` = (w, h) image of ``border`` with the box ``inner`` = (l, t, r, b) in ``colour``."""
    im = Image.new("RGB", size, border)
    im.paste(colour, inner)
    return im


def make_imagenet(root, per_class=3, mapping="LOC_synset_mapping.txt", positions=POSITIONS):
    """Class folders of non-square images; a class list file unless ``mapping`` is None."""
    rng = np.random.default_rng(0)
    for k, pos in enumerate(positions):
        folder = root / WNIDS[pos]
        folder.mkdir(parents=True)
        for i in range(per_class):
            w, h = (300, 200) if (k + i) % 2 == 0 else (200, 300)
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            if i % 2:
                Image.fromarray(arr).save(folder / f"ILSVRC2012_val_{k}{i:07d}.JPEG",
                                          quality=90)
            else:
                Image.fromarray(arr).save(folder / f"ILSVRC2012_val_{k}{i:07d}.png")
    if mapping == "LOC_synset_mapping.txt":
        (root / mapping).write_text("\n".join(mapping_lines()) + "\n")
    elif mapping == "synsets.txt":
        (root / mapping).write_text("\n".join(WNIDS) + "\n")
    return root


def load(data_dir, tmp_path, **kw):
    kw.setdefault("image_size", 56)
    return load_dataset("imagenet", data_dir=data_dir, cache_dir=tmp_path / "cache",
                        verbose=False, **kw)


def test_registered():
    assert "imagenet" in DATASETS


def test_labels_are_positions_in_the_synset_list_and_names_are_parsed(tmp_path):
    root = make_imagenet(tmp_path / "val")
    ds = load(root, tmp_path)
    assert ds.num_classes == 1000 and len(ds) == 9
    assert sorted(set(ds.labels.tolist())) == list(POSITIONS)
    assert np.bincount(ds.labels, minlength=1000)[list(POSITIONS)].tolist() == [3, 3, 3]
    assert ds.class_names[3] == "tench"
    assert ds.class_names[7] == "class 7"
    # "crane" names two ids: each gets its id appended
    assert ds.class_names[500] == f"crane ({WNIDS[500]})"
    assert ds.class_names[998] == f"crane ({WNIDS[998]})"
    assert ds.images.shape == (9, 56, 56, 3) and ds.images.dtype == np.uint8
    assert ds.meta["wnids"] == WNIDS
    assert ds.meta["class_list"].endswith("LOC_synset_mapping.txt")


def test_class_list_in_parent_and_plain_synsets_txt(tmp_path):
    make_imagenet(tmp_path / "val", mapping=None)
    (tmp_path / "synsets.txt").write_text("\n".join(reversed(WNIDS)) + "\n")  # any order
    ds = load(tmp_path / "val", tmp_path)
    assert sorted(set(ds.labels.tolist())) == list(POSITIONS)
    assert ds.class_names[500] == WNIDS[500]


def test_1000_folders_without_class_list_use_sorted_order(tmp_path):
    root = make_imagenet(tmp_path / "val", mapping=None, positions=(0, 999))
    for w in WNIDS[1:999]:
        (root / w).mkdir()
    ds = load(root, tmp_path)
    assert sorted(set(ds.labels.tolist())) == [0, 999]
    assert ds.meta["class_list"] == "the 1000 class folders"


def test_centre_crop_of_the_resized_shorter_side(tmp_path):
    """256/224 of the crop for the shorter side, then the centre square (torchvision's maths)."""
    root = tmp_path / "val"
    # 300x200 -> shorter side 64 (56 * 256 / 224): 96x64, crop x 20..76, y 4..60, i.e.
    # x 62.5..237.5, y 12.5..187.5 of the original. Red covers that with a margin wider than
    # the bilinear filter, blue the rest: any other crop or scale shows blue.
    wide = framed((300, 200), (55, 5, 245, 195))
    tall = framed((200, 300), (5, 55, 195, 245))   # 200x300 -> 64x96, crop x 4..60, y 20..76
    for name, im in (("a.png", wide), ("b.png", tall)):
        (root / WNIDS[POSITIONS[0]]).mkdir(parents=True, exist_ok=True)
        im.save(root / WNIDS[POSITIONS[0]] / name)
    (root / "LOC_synset_mapping.txt").write_text("\n".join(mapping_lines()))
    ds = load(root, tmp_path)
    for i, im in enumerate((wide, tall)):
        assert (ds.images[i] == RED).all(), f"image {i}: not only the red centre"
        box = (20, 4, 76, 60) if i == 0 else (4, 20, 60, 76)
        size = (96, 64) if i == 0 else (64, 96)
        want = np.asarray(im.resize(size, Image.Resampling.BILINEAR).crop(box))
        np.testing.assert_array_equal(ds.images[i], want)
    # 224 inputs: shorter side 256
    assert imagenet.shorter_side(224) == 256
    # a stripe centred 10 px right of the image centre lands 10 * 64/200 = 3.2 px right of
    # the crop's centre (28), 2.6 px wide: columns 30..32 (unscaled it would be 38, 8 wide)
    striped = framed((300, 200), (55, 5, 245, 195))
    striped.paste(GREEN, (156, 5, 164, 195))
    out = np.asarray(imagenet.resize_center_crop(striped, 56))
    green_cols = np.flatnonzero((out[:, :, 1] > 60).all(axis=0))
    assert green_cols.size and green_cols.min() >= 29 and green_cols.max() <= 33, green_cols


def test_verification_holds_out_a_seeded_stratified_calibration_share(tmp_path):
    root = make_imagenet(tmp_path / "val", per_class=4)
    ds = load(root, tmp_path)
    cal, ev = ds.split("verification")
    assert np.intersect1d(cal, ev).size == 0 and cal.size + ev.size == len(ds)
    # 2 % of 4 rounds to 0, but every class of two or more images gives one
    assert np.bincount(ds.labels[cal], minlength=1000)[list(POSITIONS)].tolist() == [1, 1, 1]
    assert ds.meta["n_evaluated"] == 9 and ds.meta["n_calibration_pool"] == 3
    picks = {tuple(load(root, tmp_path, seed=s).split("verification")[0]) for s in range(8)}
    assert len(picks) > 1, "the seed should change the calibration images"
    assert tuple(load(root, tmp_path, seed=0).split("verification")[0]) == tuple(cal)
    # full: calibrate on 90 % of everything, evaluate everything
    train, ev_full = ds.split("full")
    assert ev_full.size == len(ds) and train.size == 12   # round(0.9 * 4) of each class


def test_train_and_val_folders(tmp_path):
    root = tmp_path / "CLS-LOC"
    make_imagenet(root / "train", per_class=3, mapping=None)
    make_imagenet(root / "val", per_class=2, mapping=None)
    (root / "test").mkdir()            # Kaggle's test/ holds unlabelled images: ignored
    Image.new("RGB", (30, 20)).save(root / "test" / "ILSVRC2012_test_00000001.JPEG")
    (tmp_path / "LOC_synset_mapping.txt").write_text("\n".join(mapping_lines()))  # in parent
    ds = load(root, tmp_path)
    assert len(ds) == 15
    cal, ev = ds.split("verification")
    assert ds.meta["layout"] == "train/ and val/ folders"
    assert cal.size == 9 and ev.size == 6
    assert np.bincount(ds.labels[ev], minlength=1000)[list(POSITIONS)].tolist() == [2, 2, 2]
    train, ev_full = ds.split("full")
    assert set(train) <= set(cal) and ev_full.size == 15


def test_cache_is_reused_and_keyed_by_crop(tmp_path, capsys):
    root = make_imagenet(tmp_path / "val")
    kw = dict(data_dir=root, cache_dir=tmp_path / "cache", verbose=True)
    a = load_dataset("imagenet", image_size=56, **kw)
    assert "decoding 9 imagenet images" in capsys.readouterr().err
    b = load_dataset("imagenet", image_size=56, seed=5, **kw)   # the seed is not in the key
    assert capsys.readouterr().err == ""
    assert a.meta["cache_key"] == b.meta["cache_key"]
    assert isinstance(b.images, np.memmap)
    np.testing.assert_array_equal(a.images, b.images)
    c = load_dataset("imagenet", image_size=48, **kw)
    assert "decoding" in capsys.readouterr().err
    assert c.meta["resize_shorter_side"] == 55 and c.images.shape[1:] == (48, 48, 3)
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert entries == sorted([a.meta["cache_key"], c.meta["cache_key"]])  # no scratch left


def test_bad_image_skip_compacts_and_fail_leaves_no_scratch(tmp_path):
    root = make_imagenet(tmp_path / "val")
    bad = root / WNIDS[POSITIONS[1]] / "ILSVRC2012_val_broken.JPEG"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DataError, match=r"cannot read image .*broken.JPEG"):
        load(root, tmp_path)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    ds = load(root, tmp_path, on_bad_image="skip")
    assert len(ds) == 9 and ds.meta["skipped"] == [str(bad)]
    assert np.bincount(ds.labels, minlength=1000)[list(POSITIONS)].tolist() == [3, 3, 3]
    bad.unlink()
    clean = load(root, tmp_path)
    np.testing.assert_array_equal(ds.images, clean.images)
    np.testing.assert_array_equal(ds.labels, clean.labels)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_errors(tmp_path):
    root = make_imagenet(tmp_path / "val", mapping=None)
    with pytest.raises(DataError, match=r"has 3 of the 1000 class folders and no class list: "
                       r"put LOC_synset_mapping.txt .* or synsets.txt") as e:
        load(root, tmp_path)
    _one_line(e)
    (root / "LOC_synset_mapping.txt").write_text("\n".join(mapping_lines()[:999]))
    with pytest.raises(DataError, match="lists 999 WordNet ids; the ILSVRC-2012 class list "
                       "has 1000") as e:
        load(root, tmp_path)
    _one_line(e)
    lines = mapping_lines()
    lines[10] = "tench n01440764"
    (root / "LOC_synset_mapping.txt").write_text("\n".join(lines))
    with pytest.raises(DataError, match="line 11: 'tench n01440764' does not start with a "
                       "WordNet id"):
        load(root, tmp_path)
    other = [f"n{2000000 + i:08d}" for i in range(1000)]
    (root / "LOC_synset_mapping.txt").write_text("\n".join(mapping_lines(other)))
    with pytest.raises(DataError, match=f"class folder {WNIDS[3]} is not among the WordNet "
                       "ids in"):
        load(root, tmp_path)
    (root / "LOC_synset_mapping.txt").write_text("\n".join(mapping_lines()))
    (root / "cats").mkdir()
    with pytest.raises(DataError, match="folder .*cats is not a WordNet id like n01440764"):
        load(root, tmp_path)
    (root / "cats").rmdir()
    Image.new("RGB", (9, 9)).save(root / "stray.png")
    with pytest.raises(DataError, match="stray.png is not inside a class folder"):
        load(root, tmp_path)
    (root / "stray.png").unlink()
    with pytest.raises(DataError, match="is not a folder"):
        load(tmp_path / "missing", tmp_path)
    with pytest.raises(UsageError, match="imagenet needs --data-dir"):
        load(None, tmp_path)
    with pytest.raises(UsageError, match="unknown imagenet option"):
        load(root, tmp_path, options={"holdout": 0.1})
    with pytest.raises(UsageError, match="--num-classes is for the csv and imagefolder datasets"):
        load(root, tmp_path, num_classes=1000)


def test_single_image_classes_leave_nothing_to_calibrate(tmp_path):
    root = make_imagenet(tmp_path / "val", per_class=1)
    with pytest.raises(DataError, match="no images for calibration .*at least two images"):
        load(root, tmp_path)


@pytest.mark.slow
def test_run_mobilenetv2_on_imagenet_folder(tf, tmp_path):
    """benchmark.run --weights: convert a random MobileNetV2 and evaluate float and int8."""
    import keras
    root = make_imagenet(tmp_path / "val", per_class=3)
    keras.utils.set_random_seed(0)
    weights = tmp_path / "mnv2.weights.h5"
    keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3),
                                   classifier_activation=None).save_weights(weights)
    out = tmp_path / "run"
    env = {"EDGETPU_BENCH_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # In this process (TensorFlow is imported already): the test is about what the run
    # computes and writes, not about the process.
    r = run_main("benchmark.run", "--model", "mobilenetv2", "--dataset", "imagenet",
                 "--data-dir", root, "--weights", weights, "--device", "cpu", "--out", out,
                 "--no-report", "--quiet", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    for variant in ("float", "int8"):
        z = load_predictions(out, variant)
        assert z["probs"].shape == (6, 1000)
        np.testing.assert_allclose(z["probs"].sum(1), 1, atol=1e-3)
        assert set(z["labels"].tolist()) <= set(POSITIONS)
    res = read_results(out)
    assert res["dataset"] == "imagenet" and res["n_eval"] == 6
    assert res["calibration_images"]["size"] == 3
    assert res["model_source"]["weights"] == str(weights)
