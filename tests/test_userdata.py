"""imagefolder and csv datasets: layouts, labels, image modes, errors, cache, CLI."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from benchmark.datasets.registry import DATASETS, load_dataset
from benchmark.errors import DataError, UsageError
from conftest import ROOT, read_results, run_cli

SIZE = (12, 10)  # width, height of the fixture images


def _png16_rgb(path, value: int) -> None:
    """A flat 16-bit-per-channel RGB PNG (Pillow cannot write those)."""
    w, h = SIZE
    row = b"\0" + struct.pack(">HHH", value, value // 2, 0) * w
    raw = zlib.compress(row * h)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)    # 16 bit, truecolour
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw)
                     + chunk(b"IEND", b""))


def write_image(path, kind: str) -> None:
    """One flat image of the given kind; the RGB it should become is in EXPECTED."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "rgb":
        Image.new("RGB", SIZE, (200, 100, 50)).save(path)
    elif kind == "jpeg":
        Image.new("RGB", SIZE, (200, 100, 50)).save(path, format="JPEG", quality=95)
    elif kind == "grey":
        Image.new("L", SIZE, 90).save(path)
    elif kind == "rgba":  # half-transparent white over black -> ~128
        Image.new("RGBA", SIZE, (255, 255, 255, 128)).save(path)
    elif kind == "palette":
        im = Image.new("P", SIZE, 1)
        im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
        im.save(path)
    elif kind == "grey16":
        Image.fromarray(np.full(SIZE[::-1], 40000, np.uint16)).save(path)
    elif kind == "rgb16":
        _png16_rgb(path, 65535)
    elif kind == "broken":
        path.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    else:
        raise AssertionError(kind)


EXPECTED = {"rgb": (200, 100, 50), "grey": (90, 90, 90), "rgba": (128, 128, 128),
            "palette": (10, 200, 30), "grey16": (156, 156, 156), "rgb16": (255, 127, 0)}


def make_tree(root, classes=("cat", "dog", "eel"), per_class=3, ext=".png", kind="rgb"):
    for c in classes:
        for i in range(per_class):
            write_image(root / c / f"{c}_{i}{ext}", kind)
    return root


def load(kind, data_dir, tmp_path, **kw):
    kw.setdefault("image_size", 8)
    return load_dataset(kind, data_dir=data_dir, cache_dir=tmp_path / "cache", verbose=False,
                        **kw)


def test_registered():
    assert "imagefolder" in DATASETS and "csv" in DATASETS


def test_imagefolder_labels_are_sorted_folder_positions(tmp_path):
    root = make_tree(tmp_path / "data", classes=("zebra", "ant", "mole"), per_class=5)
    (root / "README.txt").write_text("not an image")
    (root / "ant" / "notes.md").write_text("ignored")
    write_image(root / "ant" / ".hidden.png", "broken")          # hidden: ignored
    ds = load("imagefolder", root, tmp_path)
    assert ds.class_names == ("ant", "mole", "zebra") and ds.num_classes == 3
    assert len(ds) == 15 and ds.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert ds.images.shape == (15, 8, 8, 3) and ds.images.dtype == np.uint8
    assert ds.meta["layout"] == "class folders" and ds.meta["explicit_split"] is False
    tr, ev = ds.split("verification")
    # 20 % of 5 per class held out, disjoint, every class on both sides
    assert ev.size == 3 and np.intersect1d(tr, ev).size == 0 and tr.size + ev.size == 15
    assert sorted(ds.labels[ev].tolist()) == [0, 1, 2]
    tr_full, ev_full = ds.split("full")
    assert ev_full.size == 15 and tr_full.size == 12         # round(0.9 * 5) of each class


def test_holdout_is_stable_stratified_and_independent_of_location(tmp_path):
    a = make_tree(tmp_path / "a", per_class=10)
    b = make_tree(tmp_path / "b", per_class=10)
    da = load("imagefolder", a, tmp_path)
    db = load("imagefolder", b, tmp_path)
    ea, eb = da.split("verification")[1], db.split("verification")[1]
    assert ea.tolist() == eb.tolist() and ea.size == 6
    assert np.bincount(da.labels[ea]).tolist() == [2, 2, 2]
    dc = load("imagefolder", a, tmp_path, options={"holdout": 0.5})
    assert dc.split("verification")[1].size == 15


def test_single_image_class_stays_in_training(tmp_path):
    root = make_tree(tmp_path / "d", classes=("a", "b"), per_class=2)
    write_image(root / "c" / "only.png", "rgb")
    ds = load("imagefolder", root, tmp_path)
    tr, ev = ds.split("verification")
    assert ds.labels[ev].tolist() == [0, 1] and 2 in ds.labels[tr]


def test_imagefolder_train_test_folders(tmp_path):
    root = tmp_path / "d"
    make_tree(root / "train", classes=("a", "b"), per_class=3)
    make_tree(root / "test", classes=("a", "b", "c"), per_class=1, ext=".jpg", kind="jpeg")
    ds = load("imagefolder", root, tmp_path)
    assert ds.class_names == ("a", "b", "c") and len(ds) == 9
    tr, ev = ds.split("verification")
    assert tr.tolist() == list(range(6)) and ev.tolist() == [6, 7, 8]
    assert ds.labels[ev].tolist() == [0, 1, 2]
    tr_full, ev_full = ds.split("full")
    assert ev_full.size == 9 and set(tr_full.tolist()) <= set(range(6))
    assert ds.meta["layout"] == "train/ and test/ folders"


def test_val_folder_is_the_test_part(tmp_path):
    root = tmp_path / "d"
    make_tree(root / "train", classes=("a", "b"), per_class=2)
    make_tree(root / "val", classes=("a", "b"), per_class=1)
    ds = load("imagefolder", root, tmp_path)
    assert ds.split("verification")[1].tolist() == [4, 5]
    assert ds.meta["layout"] == "train/ and val/ folders"


def test_image_modes_become_rgb(tmp_path):
    root = tmp_path / "d"
    for k in EXPECTED:
        write_image(root / k / f"x{'.png' if k != 'rgb' else '.bmp'}", k)
    write_image(root / "gif" / "x.GIF", "palette")
    write_image(root / "ppm" / "x.ppm", "rgb")
    ds = load("imagefolder", root, tmp_path)
    got = {ds.class_names[lab]: tuple(int(v) for v in ds.images[i, 4, 4])
           for i, lab in enumerate(ds.labels)}
    for k, rgb in EXPECTED.items():
        assert np.allclose(got[k], rgb, atol=1), (k, got[k])
    assert got["gif"] == EXPECTED["palette"] and got["ppm"] == EXPECTED["rgb"]
    modes = ds.meta["modes"]
    assert modes["L"] == 1 and modes["RGBA"] == 1 and modes["P"] == 2
    assert modes.get("I;16", 0) + modes.get("I", 0) == 1


def test_images_are_resized_bilinear_to_the_model_input(tmp_path):
    root = tmp_path / "d"
    (root / "a").mkdir(parents=True)
    arr = np.zeros((10, 12, 3), np.uint8)
    arr[:, 6:] = 255
    Image.fromarray(arr).save(root / "a" / "half.png")
    ds = load("imagefolder", root, tmp_path, image_size=24)
    assert ds.images.shape == (1, 24, 24, 3)
    row = ds.images[0, 12, :, 0]
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row.astype(int)) >= 0)
    assert 0 < row[11] < 255 and 0 < row[12] < 255               # interpolated edge


def test_num_classes_mismatch_names_the_folder(tmp_path):
    root = make_tree(tmp_path / "d")
    with pytest.raises(DataError, match=r"d has 3 class folders \(cat, dog, eel\) but "
                                        r"--num-classes is 7"):
        load("imagefolder", root, tmp_path, num_classes=7)
    assert load("imagefolder", root, tmp_path, num_classes=3).num_classes == 3


def test_imagefolder_layout_errors(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load("imagefolder", tmp_path / "missing", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders in"):
        load("imagefolder", tmp_path / "empty", tmp_path)
    root = make_tree(tmp_path / "loose")
    write_image(root / "stray.png", "rgb")
    with pytest.raises(DataError, match="stray.png is not inside a class folder"):
        load("imagefolder", root, tmp_path)
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        load("imagefolder", tmp_path / "noimg", tmp_path)
    with pytest.raises(UsageError, match="needs --data-dir"):
        load("imagefolder", None, tmp_path)
    with pytest.raises(UsageError, match="unknown imagefolder option"):
        load("imagefolder", root, tmp_path, options={"roi_crop": True})
    with pytest.raises(UsageError, match="holdout must be a fraction"):
        load("imagefolder", root, tmp_path, options={"holdout": 1.5})


def test_bad_image_fails_naming_the_file_or_is_skipped(tmp_path):
    root = make_tree(tmp_path / "d")
    write_image(root / "dog" / "broken.png", "broken")
    with pytest.raises(DataError, match=r"cannot read image .*dog/broken.png: .*"
                                        r"--on-bad-image skip"):
        load("imagefolder", root, tmp_path)
    ds = load("imagefolder", root, tmp_path, on_bad_image="skip")
    assert len(ds) == 9 and ds.meta["skipped"] == [str(root / "dog" / "broken.png")]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def _manifest(tmp_path, text, name="m.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_with_names_header_and_relative_paths(tmp_path):
    make_tree(tmp_path / "img", classes=("a", "b"), per_class=2)
    m = _manifest(tmp_path, "path,label\n# a comment\nimg/b/b_0.png,bee\nimg/a/a_0.png,ant\n\n"
                  "img/a/a_1.png,ant\nimg/b/b_1.png,bee\n")
    ds = load("csv", m, tmp_path)
    assert ds.class_names == ("ant", "bee") and ds.labels.tolist() == [1, 0, 0, 1]
    assert ds.images.shape == (4, 8, 8, 3) and ds.meta["layout"] == "manifest"


def test_csv_integer_labels_and_class_names_file(tmp_path):
    make_tree(tmp_path / "img", classes=("a", "b"), per_class=2)
    rows = "img/a/a_0.png,0\nimg/a/a_1.png,0\nimg/b/b_0.png,2\nimg/b/b_1.png,2\n"
    m = _manifest(tmp_path, rows)                       # no header
    ds = load("csv", m, tmp_path)
    assert ds.class_names == ("0", "1", "2") and ds.labels.tolist() == [0, 0, 2, 2]
    assert load("csv", m, tmp_path, num_classes=5).class_names == ("0", "1", "2", "3", "4")
    (tmp_path / "names.txt").write_text("red\ngreen\nblue\n\n")
    m2 = _manifest(tmp_path, rows.replace(",2\n", ",blue\n", 1), "m2.csv")
    ds = load("csv", m2, tmp_path, options={"class_names": "names.txt"})
    assert ds.class_names == ("red", "green", "blue") and ds.labels.tolist() == [0, 0, 2, 2]


def test_csv_label_errors_name_the_line(tmp_path):
    make_tree(tmp_path / "img", classes=("a",), per_class=2)
    m = _manifest(tmp_path, "img/a/a_0.png,0\nimg/a/a_1.png,9\n")
    with pytest.raises(DataError, match=r"m.csv line 2: label 9 is outside 0..6 "
                                        r"\(--num-classes 7\)"):
        load("csv", m, tmp_path, num_classes=7)
    m = _manifest(tmp_path, "img/a/a_0.png,0\nimg/a/a_1.png,cat\n")
    with pytest.raises(DataError, match="line 2: label 'cat' mixes integer and name labels"):
        load("csv", m, tmp_path)
    m = _manifest(tmp_path, "img/a/a_0.png,cat\nimg/a/a_1.png,dog\n")
    with pytest.raises(DataError, match="names 2 classes but --num-classes is 3"):
        load("csv", m, tmp_path, num_classes=3)
    (tmp_path / "n.txt").write_text("cat\n")
    with pytest.raises(DataError, match="line 2: class 'dog' is not a known class name"):
        load("csv", m, tmp_path, options={"class_names": "n.txt"})
    with pytest.raises(DataError, match="n.txt has 1 names but --num-classes is 2"):
        load("csv", m, tmp_path, options={"class_names": "n.txt"}, num_classes=2)
    m = _manifest(tmp_path, "img/a/a_0.png,0,train\nimg/a/a_1.png,0\n")
    with pytest.raises(DataError, match="line 2 has no split but other rows do"):
        load("csv", m, tmp_path)
    m = _manifest(tmp_path, "img/a/a_0.png,0,holdout\n")
    with pytest.raises(DataError, match="line 1: split 'holdout' is not train or test"):
        load("csv", m, tmp_path)
    m = _manifest(tmp_path, "img/a/a_0.png\n")
    with pytest.raises(DataError, match="line 1: expected path,label"):
        load("csv", m, tmp_path)
    m = _manifest(tmp_path, "img/a/a_0.png,0,train\nimg/a/a_0.png,0,test\n")
    with pytest.raises(DataError, match="lists img/a/a_0.png as train .line 1. and as test"):
        load("csv", m, tmp_path)
    with pytest.raises(DataError, match="is a folder"):
        load("csv", tmp_path, tmp_path)


def test_csv_split_column_gives_train_and_eval_indices(tmp_path):
    make_tree(tmp_path / "img", classes=("a", "b"), per_class=3)
    m = _manifest(tmp_path, "label,split,path,comment\n"
                  "0,train,img/a/a_0.png,x\n1,test,img/b/b_0.png,y\n0,test,img/a/a_1.png,\n"
                  "1,train,img/b/b_1.png,\n0,TRAIN,img/a/a_2.png,\n1,val,img/b/b_2.png,\n")
    ds = load("csv", m, tmp_path)
    tr, ev = ds.split("verification")
    assert tr.tolist() == [0, 3, 4] and ev.tolist() == [1, 2, 5]
    assert ds.meta["explicit_split"] and ds.meta["n_test"] == 3
    tr_full, ev_full = ds.split("full")
    assert ev_full.size == 6 and set(tr_full.tolist()) <= {0, 3, 4}


def test_csv_missing_file_obeys_on_bad_image(tmp_path):
    make_tree(tmp_path / "img", classes=("a",), per_class=2)
    m = _manifest(tmp_path, "img/a/a_0.png,0\nimg/a/gone.png,0\nimg/a/a_1.png,0\n")
    with pytest.raises(DataError, match="cannot read image .*gone.png"):
        load("csv", m, tmp_path)
    ds = load("csv", m, tmp_path, on_bad_image="skip")
    assert len(ds) == 2 and ds.meta["skipped"] == [str(tmp_path / "img/a/gone.png")]


def test_cache_hit_and_invalidation(tmp_path):
    root = make_tree(tmp_path / "d")
    cache = tmp_path / "cache"
    a = load("imagefolder", root, tmp_path)
    b = load("imagefolder", root, tmp_path)
    assert a.meta["cache_key"] == b.meta["cache_key"] and len(list(cache.iterdir())) == 1
    assert isinstance(b.images, np.memmap)
    c = load("imagefolder", root, tmp_path, image_size=12)
    assert c.meta["cache_key"] != a.meta["cache_key"] and len(list(cache.iterdir())) == 2
    write_image(root / "cat" / "cat_0.png", "grey")                   # content changed
    d = load("imagefolder", root, tmp_path)
    assert d.meta["cache_key"] != a.meta["cache_key"] and tuple(d.images[0, 0, 0]) == (90,) * 3
    m = _manifest(tmp_path, "d/cat/cat_0.png,0\nd/dog/dog_0.png,1\n")
    e = load("csv", m, tmp_path)
    m.write_text("d/cat/cat_0.png,1\nd/dog/dog_0.png,0\n")           # relabelled
    f = load("csv", m, tmp_path)
    assert e.meta["cache_key"] != f.meta["cache_key"] and f.labels.tolist() == [1, 0]


def test_num_classes_is_rejected_for_fixed_datasets(tmp_path):
    with pytest.raises(UsageError, match="--num-classes is for the csv and imagefolder datasets"):
        load_dataset("gtsrb", data_dir=tmp_path, num_classes=43, cache_dir=tmp_path)


# ---- end to end through the CLI ------------------------------------------------------------

GTSRB_MODEL = ROOT / "models" / "signnet-gtsrb" / "verification"
needs_model = pytest.mark.skipif(not (GTSRB_MODEL / "signnet-gtsrb_int8.tflite").is_file(),
                                 reason="models/signnet-gtsrb/verification not present")


@pytest.fixture(scope="module")
def sign_folders(tmp_path_factory):
    """43 class folders of 1-2 small images each (the signnet-gtsrb class count)."""
    root = tmp_path_factory.mktemp("signs")
    rng = np.random.default_rng(0)
    for c in range(43):
        for i in range(1 + c % 2):
            arr = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
            (root / f"{c:02d}").mkdir(exist_ok=True)
            Image.fromarray(arr).save(root / f"{c:02d}" / f"img{i}.png")
    return root


@needs_model
def test_cli_evaluates_an_imagefolder(sign_folders, tmp_path):
    out = tmp_path / "run"
    r = run_cli("benchmark.run", "--model", "signnet-gtsrb", "--dataset", "imagefolder",
                "--data-dir", sign_folders, "--split", "verification", "--device", "cpu",
                "--out", out, "--no-report", "--cache-dir", tmp_path / "cache", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = read_results(out)
    assert res["dataset"] == "imagefolder" and res["n_eval"] == 21 and res["n_train"] == 43
    assert res["class_names"][:3] == ["00", "01", "02"]
    assert set(res["variants"]) == {"float", "int8"}


@needs_model
def test_cli_num_classes_mismatch_is_one_line(sign_folders, tmp_path):
    r = run_cli("benchmark.run", "--model", "signnet-gtsrb", "--dataset", "imagefolder",
                "--data-dir", sign_folders, "--num-classes", "7", "--device", "cpu",
                "--out", tmp_path / "run", "--no-report", "--cache-dir", tmp_path / "cache",
                timeout=300)
    assert r.returncode == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith("benchmark.run: error: ") and "has 43 class folders" in lines[0]
    assert "--num-classes is 7" in lines[0]
    assert not (tmp_path / "run" / "results.json").exists()
