"""Classes by name (benchmark.classmap), declared preprocessing and graph checks (pure, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.classmap import (apply_class_map, match_classes, normalise_name, parse_labels,
                                read_class_map)
from benchmark.datasets.base import Dataset
from benchmark.errors import DataError, UsageError
from benchmark.modelcheck import check_distribution, distribution_tolerance
from benchmark.models.user import _graph_size, resolve_preprocessing
from benchmark.preprocess import Preprocessing


def test_normalise_ignores_case_and_separators():
    assert normalise_name("Speed_Limit-30") == normalise_name("speedlimit 30") == "speedlimit30"
    assert normalise_name("Ｓｔｏｐ") == "stop"       # NFKC: full-width letters
    assert normalise_name("stop") != normalise_name("stops")


def test_labels_one_per_line_and_coral_style():
    assert parse_labels("a\n\nb\n") == ("a", "b")
    assert parse_labels("0  background\n1 tench, Tinca tinca\n3 goldfish\n") == \
        ("background", "tench, Tinca tinca", "", "goldfish")   # index 2 unnamed
    # not every line is "index name": a plain list (names may start with digits)
    assert parse_labels("3 way junction\nstop\n") == ("3 way junction", "stop")
    with pytest.raises(DataError, match="no class names"):
        parse_labels("\n\n", source="x.txt")


def test_same_order_is_identity_and_changes_nothing():
    m = match_classes(("a", "b"), ("A", "b"), num_outputs=2)
    assert m.mode == "identity" and not m.changes_labels and m.describe() == ""


def test_other_order_is_remapped():
    m = match_classes(("red", "green", "blue"), ("blue", "green", "red"), num_outputs=3)
    assert m.mode == "reordered" and m.data_to_model.tolist() == [2, 1, 0]
    assert "another order" in m.describe()


def test_background_class_of_a_1001_output_model():
    data = tuple(f"class {i}" for i in range(1000))
    m = match_classes(("background",) + data, data, num_outputs=1001)
    assert m.mode == "subset"
    assert m.data_to_model.tolist() == list(range(1, 1001))    # shifted by the background
    assert "the other 1 outputs stay in the argmax" in m.describe()


def test_partial_overlap_needs_a_class_map():
    with pytest.raises(DataError) as e:
        match_classes(("a", "b", "c"), ("a", "x", "c", "y"), num_outputs=3)
    msg = str(e.value)
    assert "first difference at index 1: model 'b', data 'x'" in msg
    assert "2 of 4 data classes are not model classes ('x', 'y')" in msg
    assert "--class-map auto evaluates the 2 shared classes only" in msg
    m = match_classes(("a", "b", "c"), ("a", "x", "c", "y"), num_outputs=3, class_map="auto")
    assert m.mode == "partial" and m.data_to_model.tolist() == [0, -1, 2, -1]
    rec = m.record(np.array([0, 1, 1, 3, 2]))
    assert rec["dropped"] == {"x": 2, "y": 1} and rec["dropped_images"] == 3
    with pytest.raises(DataError, match="no data class matches"):
        match_classes(("a",), ("z",), num_outputs=1, class_map="auto")


def test_class_map_file(tmp_path):
    f = tmp_path / "map.toml"
    f.write_text('[classes]\nx = "b"\ny = 0\n')
    assert read_class_map(f) == {"x": "b", "y": 0}
    m = match_classes(("a", "b", "c"), ("x", "c", "y"), num_outputs=3, class_map=str(f))
    assert m.data_to_model.tolist() == [1, 2, 0] and m.mode == "reordered"
    for body, match in (('nope = "a"', "'nope' is not a class of the data"),
                        ('x = "zz"', "'zz' is not a class of the model"),
                        ("x = 7", "7 is not an output index"),
                        ('x = "b"\ny = "b"', "two data classes map to one model output"),
                        ("x = true", "each entry must be")):
        f.write_text(body)
        with pytest.raises(UsageError, match=match):
            match_classes(("a", "b", "c"), ("x", "c", "y"), num_outputs=3, class_map=str(f))


def test_repeated_names_matched_in_order(tmp_path):
    """ImageNet: two 'crane's, 'Cardigan' (a corgi) and 'cardigan' (a sweater)."""
    model = ("background", "crane", "Cardigan", "x", "crane", "cardigan")
    data = ("crane", "Cardigan", "x", "crane", "cardigan")
    m = match_classes(model, data, num_outputs=6)
    assert m.mode == "subset" and m.data_to_model.tolist() == [1, 2, 3, 4, 5]
    assert "repeated names cardigan, crane matched in order" in m.how
    f = tmp_path / "map.toml"
    f.write_text('[classes]\ny = "crane"\n')
    with pytest.raises(UsageError, match="'crane' names 2 classes of the model"):
        match_classes(("crane", "crane", "x"), ("x", "y"), num_outputs=3, class_map=str(f))
    f.write_text("[classes]\nx = 4\n")         # output 4 is the second crane's already
    with pytest.raises(UsageError, match="two data classes map to one model output"):
        match_classes(model, data, num_outputs=6, class_map=str(f))


def test_names_must_match_the_outputs():
    with pytest.raises(DataError, match="names 2 classes but the model has 3 outputs"):
        match_classes(("a", "b"), ("a", "b"), num_outputs=3)


def test_no_names_needs_positional():
    with pytest.raises(UsageError, match="--class-map positional"):
        match_classes(None, ("a", "b"), num_outputs=2)
    m = match_classes(None, ("a", "b"), num_outputs=2, class_map="positional")
    assert m.mode == "positional" and m.data_to_model.tolist() == [0, 1]
    with pytest.raises(DataError, match="2 outputs but the data 3 classes"):
        match_classes(None, ("a", "b", "c"), num_outputs=2, class_map="positional")


def _dataset():
    labels = np.array([0, 0, 1, 1, 2, 2])
    return Dataset(name="t", images=np.zeros((6, 2, 2, 3), np.uint8), labels=labels,
                   groups=np.array([0, 1, 0, 1, 0, 1]), class_names=("a", "x", "c"),
                   verification_groups=(1,), meta={"cache_key": "k"})


def test_mapped_dataset_keeps_the_split_and_drops_unmatched():
    ds = _dataset()
    m = match_classes(("c", "b", "a"), ds.class_names, num_outputs=3, class_map="auto")
    mapped = apply_class_map(ds, m)
    assert mapped.labels.tolist() == [2, 2, -1, -1, 0, 0]
    assert mapped.class_names == ("c", "b", "a") and mapped.num_classes == 3
    assert mapped.meta["cache_key"].startswith("k+classmap-")
    train, ev = mapped.split("verification")
    assert train.tolist() == [0, 2, 4] and ev.tolist() == [1, 5]   # image 3 (x) dropped
    full_train, _ = mapped.split("full", seed=0)
    np.testing.assert_array_equal(full_train, ds.split("full", seed=0)[0])


def test_preprocessing_view_crop_and_bgr():
    p = Preprocessing(input_size=2, crop=0.5, channel_order="bgr")
    assert (p.load_size(), p.offset()) == (4, 1)
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(1, 4, 4, 3)
    np.testing.assert_array_equal(p.view(img), img[:, 1:3, 1:3, ::-1])
    assert p.view_key() == "crop2of4-bgr" and Preprocessing(input_size=4).view_key() == ""


def test_preprocessing_layers_and_refusals():
    p = resolve_preprocessing([({"preset": "imagenet"}, "model.toml"),
                               ({"scale": "1/255", "mean": "0.5"}, "flags")], (1, 64, 64, 3),
                              model="m")
    assert (p.input_size, p.mean, p.std, p.source) == (64, (0.5,), (0.229, 0.224, 0.225),
                                                       "model.toml < flags")
    with pytest.raises(UsageError, match="declare how its inputs are made"):
        resolve_preprocessing([({}, "flags")], (1, 8, 8, 3), model="m")
    with pytest.raises(UsageError, match="input_size 32 is declared but the model's input is 8"):
        resolve_preprocessing([({"preset": "unit", "input_size": 32}, "flags")], (1, 8, 8, 3),
                              model="m")
    with pytest.raises(UsageError, match="layout nchw .channels-first. is not supported"):
        resolve_preprocessing([({"preset": "unit", "layout": "nchw"}, "flags")], None, model="m")
    with pytest.raises(UsageError, match="its input size is not in the file"):
        resolve_preprocessing([({"preset": "unit"}, "flags")], None, model="m")
    with pytest.raises(UsageError, match="crop must be in"):
        resolve_preprocessing([({"preset": "unit", "crop": 1.5}, "flags")], None, model="m")


def test_input_shapes():
    assert _graph_size((1, 96, 96, 3), "m") == 96
    with pytest.raises(DataError, match="channels-first"):
        _graph_size((1, 3, 224, 224), "m")
    with pytest.raises(DataError, match="not square"):
        _graph_size((1, 96, 128, 3), "m")
    with pytest.raises(DataError, match="1 channels"):
        _graph_size((1, 28, 28, 1), "m")


def test_distribution_tolerance_follows_the_output_step():
    step = 1 / 256
    k = 30
    tol = distribution_tolerance(k, step)
    assert tol == pytest.approx(1e-3 + 30 / 512)
    row = np.full((1, k), 1 / k)
    check_distribution(row * (1 + 0.9 * tol), step=step, what="m")     # within rounding
    with pytest.raises(DataError, match="do not sum to 1 within"):
        check_distribution(row * (1 + 1.1 * tol), step=step, what="m")
    with pytest.raises(DataError, match="do not sum to 1 within 0.001"):
        check_distribution(row * 1.01, step=0.0, what="m")              # float: tight


def test_numbered_data_classes_are_indices():
    model = ("speed limit 20", "speed limit 30", "stop")
    m = match_classes(model, ("00000", "00002"), num_outputs=3)
    assert m.mode == "subset" and m.data_to_model.tolist() == [0, 2]
    assert m.how.startswith("by index")
    m = match_classes(model, ("00", "01", "02"), num_outputs=3)
    assert m.mode == "identity"
    with pytest.raises(DataError, match="do not match"):        # 7 is not an output
        match_classes(model, ("00", "07"), num_outputs=3)
    m = match_classes(("1", "0"), ("0", "1"), num_outputs=2)     # numeric names: by name
    assert m.mode == "reordered" and m.data_to_model.tolist() == [1, 0]


def test_model_synonyms_match_by_their_first_name_and_repeats_in_order():
    from benchmark.classmap import match_classes
    model = ("background", "tench, Tinca tinca", "crane", "Cardigan, Pembroke", "cardigan",
             "crane")
    data = ("tench", "crane (n02012849)", "Cardigan (n02113186)", "cardigan (n02963159)",
            "crane (n03126707)")
    cm = match_classes(model, data, num_outputs=6)
    assert cm.mode == "subset"
    assert cm.data_to_model.tolist() == [1, 2, 3, 4, 5]
    assert "by the first of the model's synonyms" in cm.how


def test_synonyms_do_not_rescue_a_real_mismatch():
    from benchmark.classmap import match_classes
    with pytest.raises(DataError, match="1 of 2 data classes are not model classes"):
        match_classes(("tench, Tinca tinca", "goldfish"), ("tench", "shark"), num_outputs=2)
