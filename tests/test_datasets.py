"""Splits, the dataset cache and the registry (on small renders)."""

import json

import numpy as np
import pytest

from benchmark.datasets import cache
from benchmark.datasets.base import split_indices
from benchmark.datasets.registry import load_dataset
from benchmark.errors import DataError, UsageError

LABELS = np.repeat(np.arange(3), 20)            # 3 classes x 20
GROUPS = np.tile(np.repeat(np.arange(4), 5), 3)  # 4 sessions per class


def test_full_split_is_stratified_and_evaluates_everything():
    train, ev = split_indices(LABELS, GROUPS, "full", seed=0)
    np.testing.assert_array_equal(ev, np.arange(60))
    assert np.bincount(LABELS[train]).tolist() == [18, 18, 18]
    again, _ = split_indices(LABELS, GROUPS, "full", seed=0)
    other, _ = split_indices(LABELS, GROUPS, "full", seed=1)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)


def test_verification_split_keeps_groups_apart():
    train, ev = split_indices(LABELS, GROUPS, "verification", seed=0, verification_groups=(3,))
    assert set(GROUPS[ev]) == {3} and 3 not in set(GROUPS[train])
    assert train.size + ev.size == 60 and np.intersect1d(train, ev).size == 0
    with pytest.raises(DataError, match="held-out groups"):
        split_indices(LABELS, GROUPS, "verification", seed=0, verification_groups=(9,))
    with pytest.raises(UsageError, match="unknown split"):
        split_indices(LABELS, GROUPS, "test", seed=0)


def test_cache_roundtrip_and_key(tmp_path):
    arrays = {"images": np.zeros((2, 4, 4, 3), np.uint8), "labels": np.array([0, 1]),
              "groups": np.array([0, 0])}
    key = cache.cache_key({"a": 1, "b": [1, 2]})
    assert key == cache.cache_key({"b": [1, 2], "a": 1})
    assert key != cache.cache_key({"a": 2, "b": [1, 2]})
    assert cache.load(tmp_path, key) is None
    cache.store(tmp_path, key, arrays, {"x": 1})
    got, meta = cache.load(tmp_path, key)
    assert meta == {"x": 1} and isinstance(got["images"], np.memmap)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_registry_renders_once_then_reads_the_cache(tmp_path):
    opts = {"n_sessions": 4, "per_class_per_session": 1}
    a = load_dataset("carolo-synth", options=opts, cache_dir=tmp_path, verbose=False)
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and len(a) == 120 and a.num_classes == 30
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert meta["spec"]["n_sessions"] == 4
    b = load_dataset("carolo-synth", options=opts, cache_dir=tmp_path, verbose=False)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.verification_groups == (3,)
    c = load_dataset("carolo-synth", options=opts, image_size=48, cache_dir=tmp_path,
                     verbose=False)
    assert c.images.shape[1:] == (48, 48, 3) and len(list(tmp_path.iterdir())) == 2
    with pytest.raises(UsageError, match="unknown carolo-synth option"):
        load_dataset("carolo-synth", options={"sessions": 3}, cache_dir=tmp_path)
    with pytest.raises(UsageError, match="unknown dataset"):
        load_dataset("mnist", cache_dir=tmp_path)
