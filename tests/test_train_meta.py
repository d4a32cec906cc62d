"""The train_meta.json / convert_meta.json records and their readers."""

from __future__ import annotations

import json
import re

import pytest

from benchmark.artifacts import ConvertMeta, TrainMeta, read_convert_meta, read_train_meta
from benchmark.datasets.registry import trained_dataset_options
from benchmark.errors import DataError
from conftest import ROOT

SHIPPED = sorted(ROOT.glob("models/*/*/train_meta.json"))

PRETRAINED = {
    "model": "resnet20", "dataset": "cifar100", "split": "verification", "source": "pretrained",
    "weights": "w.npz", "weights_sha256": "ab" * 32, "dataset_meta": {"cache_key": "k"},
    "dataset_options": {}, "data_dir": "d", "num_classes": 100, "class_names": ["a"] * 100,
    "input_size": 32, "preprocessing": {"scale": 1}, "n_train": 10, "n_eval": 5,
    "data_seed": 0, "environment": {}}


@pytest.mark.skipif(not SHIPPED, reason="no shipped models")
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: "/".join(p.parts[-3:-1]))
def test_shipped_records_read_and_write_back_unchanged(path):
    meta = read_train_meta(path)
    data = json.loads(path.read_text())
    assert meta.to_json() == data and list(meta.to_json()) == list(data)
    assert not meta.pretrained and meta.seed is not None
    assert trained_dataset_options(meta) == trained_dataset_options(data)
    conv = path.with_name("convert_meta.json")
    cm = read_convert_meta(conv)
    assert cm.to_json() == json.loads(conv.read_text())
    assert cm.observer in ("minmax", "percentile", "mse")


def test_pretrained_record_round_trips_in_order(tmp_path):
    meta = TrainMeta.from_json(dict(PRETRAINED, source_model="x.keras"))
    assert meta.pretrained and meta.seed is None and meta.extra == {"source_model": "x.keras"}
    assert list(meta.to_json()) == [*PRETRAINED, "source_model"]
    p = tmp_path / "train_meta.json"
    p.write_text(json.dumps(meta.to_json()))
    assert read_train_meta(p) == meta


@pytest.mark.parametrize("content,words", [
    (None, "is missing"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({k: v for k, v in PRETRAINED.items() if k != "num_classes"}),
     "missing key 'num_classes'"),
    (json.dumps(dict(PRETRAINED, num_classes="100")), "'num_classes' is \"100\", expected int"),
    (json.dumps(dict(PRETRAINED, n_train=True)), "'n_train' is true, expected int"),
    (json.dumps({k: v for k, v in PRETRAINED.items() if k != "weights"}),
     "a pretrained model's record has no weights"),
    (json.dumps({k: v for k, v in PRETRAINED.items() if k != "source"}),
     "a trained model's record has no seed"),
])
def test_train_meta_reader_errors_name_the_file(tmp_path, content, words):
    p = tmp_path / "split" / "train_meta.json"
    p.parent.mkdir()
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError) as e:
        read_train_meta(p)
    assert str(p) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


def test_convert_meta_reader_errors_name_the_file(tmp_path):
    p = tmp_path / "convert_meta.json"
    with pytest.raises(DataError, match=re.escape(f"conversion record {p} is missing")):
        read_convert_meta(p)
    good = ConvertMeta(io_type="uint8", representative_size=10, seed=0, act_observer="mse",
                       activation_ranges=None, export_max_abs_diff=0.0, variants={},
                       environment={})
    assert list(good.to_json()) == ["io_type", "representative_size", "seed", "act_observer",
                                    "activation_ranges", "export_max_abs_diff", "variants",
                                    "environment"]
    p.write_text(json.dumps({k: v for k, v in good.to_json().items() if k != "variants"}))
    with pytest.raises(DataError, match=re.escape(f"{p}: missing key 'variants'")):
        read_convert_meta(p)
