"""TrainConfig / ConvertConfig: built from the command line, validated before anything heavy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark import convert, train
from benchmark.artifacts import TrainMeta
from benchmark.convert import ConvertConfig
from benchmark.errors import DataError, UsageError
from benchmark.train import TrainConfig


def test_train_config_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig.from_args(train.parse_args([
        "--model", "signnet-gtsrb", "--dataset", "gtsrb", "--split", "full", "--epochs", "3",
        "--batch-size", "8", "--learning-rate", "0.01", "--no-augment", "--seed", "2",
        "--data-seed", "5", "--limit-train", "40", "--data-dir", "g", "--roi-crop",
        "--on-bad-image", "skip", "--model-dir", "m", "--cache-dir", "c"]))
    assert cfg == TrainConfig(
        split="full", model="signnet-gtsrb", dataset="gtsrb", epochs=3, batch_size=8,
        learning_rate=0.01, augment=False, seed=2, data_seed=5, limit_train=40,
        model_dir=Path("m"), data_dir=Path("g"), on_bad_image="skip",
        dataset_options={"roi_crop": True}, cache_dir=Path("c"))
    assert cfg.validate() is cfg
    default = TrainConfig.from_args(train.parse_args(["--split", "verification"]))
    assert (default.dataset, default.augment, default.dataset_options, default.cache_dir) == \
        ("carolo-synth", None, {}, None)


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--batch-size", "-2"], "--batch-size must be >= 1, got -2"),
    (["--learning-rate", "0"], "--learning-rate must be a number > 0, got 0.0"),
    (["--limit-train", "0"], "--limit-train must be >= 1, got 0"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--synth-sessions", "0"], r"carolo-synth option n_sessions \(--synth-sessions\) must be "
                                "an integer >= 1, got 0"),
    (["--dataset", "gtsrb"], "gtsrb needs --data-dir"),
    (["--dataset", "imagefolder", "--data-dir", "/nonexistent/x"],
     "imagefolder data dir /nonexistent/x is not a folder"),
    (["--model", "nope"], "unknown model 'nope'"),
])
def test_train_rejects_bad_settings_naming_them(argv, message, monkeypatch):
    def no_tf(what):
        raise AssertionError("validation must come before TensorFlow")
    monkeypatch.setattr(train, "require_tensorflow", no_tf)
    with pytest.raises((UsageError, DataError), match=message):
        train.main(["--split", "full", *argv])
    with pytest.raises(UsageError, match="--split must be one of full, verification"):
        TrainConfig(split="test").validate()


def test_train_writes_the_dataset_cache_into_cache_dir(tmp_path, monkeypatch):
    """``--cache-dir``: the rendered dataset goes there (training itself faked: no TensorFlow)."""
    got = {}

    def fake_fit(tf, entry, ds, rows, hp, cfg, init=None):
        got["rows"], got["hp"], got["labels"] = rows, hp, ds.labels
        return None, {"loss": [1.0]}, 0.25, {"validation": {"n": int(rows.validation.size)}}

    def fake_save(entry, cfg, model, history, meta):
        got["meta"] = meta
        return tmp_path / "signnet.keras"

    monkeypatch.setattr(train, "require_tensorflow", lambda what: None)
    monkeypatch.setattr(train, "fit", fake_fit)
    monkeypatch.setattr(train, "save", fake_save)
    train.main(["--split", "verification", "--synth-sessions", "4", "--synth-per-class", "1",
                "--epochs", "1", "--no-augment", "--cache-dir", str(tmp_path / "cache"),
                "--model-dir", str(tmp_path / "models")])
    [entry] = list((tmp_path / "cache").iterdir())
    assert json.loads((entry / "meta.json").read_text())["spec"]["n_sessions"] == 4
    meta, rows = got["meta"], got["rows"]
    # 3 training sessions x 30 classes; 10 % of the (class, session) units held out
    assert (rows.fit.size, rows.validation.size) == (81, 9)
    assert not set(rows.fit) & set(rows.validation)
    assert got["hp"]["epochs"] == 1 and got["hp"]["augment"] is False
    assert meta.dataset_options == {"n_sessions": 4, "per_class_per_session": 1}
    assert meta.dataset_meta["cache_key"] == entry.name and meta.data_dir is None
    assert meta.n_train == 81
    assert list(meta.to_json()) == [
        "model", "dataset", "split", "dataset_meta", "dataset_options", "data_dir",
        "num_classes", "class_names", "input_size", "preprocessing", "n_train", "n_eval",
        "seed", "data_seed", "hyperparameters", "train_seconds", "environment", "validation",
        "training_rows"]
    tr = meta.extra["training_rows"]
    assert (tr["n_fit"], tr["n_validation"], tr["val_fraction"]) == (81, 9, 0.1)
    assert TrainMeta.from_json(meta.to_json()) == meta


def test_convert_config_from_the_command_line(tmp_path):
    cfg = ConvertConfig.from_args(convert.parse_args([
        "--model", "resnet20", "--split", "full", "--weights", "w.npz", "--dataset",
        "cifar100", "--data-dir", "d", "--data-seed", "3", "--io-type", "int8",
        "--representative-size", "50", "--act-observer", "mse", "--seed", "4",
        "--cache-dir", "c", "--on-bad-image", "skip"]))
    assert cfg == ConvertConfig(
        split="full", model="resnet20", weights="w.npz", dataset="cifar100", data_dir="d",
        data_seed=3, io_type="int8", representative_size=50, act_observer="mse", seed=4,
        cache_dir=Path("c"), on_bad_image="skip")
    assert cfg.validate() is cfg
    with pytest.raises(UsageError, match="--representative-size must be >= 1, got 0"):
        convert.main(["--split", "full", "--representative-size", "0"])
    with pytest.raises(UsageError, match="--act-observer must be one of minmax"):
        ConvertConfig(split="full", act_observer="max").validate()


def _fake_artifacts(root: Path, meta_text: str) -> Path:
    art = root / "signnet" / "verification"
    art.mkdir(parents=True)
    (art / "signnet.keras").write_bytes(b"never loaded")
    (art / "train_meta.json").write_text(meta_text)
    return art


def test_convert_reads_train_meta_through_the_reader(tmp_path):
    art = _fake_artifacts(tmp_path, '{"model": "signnet"')
    with pytest.raises(DataError, match=f"{art / 'train_meta.json'} is not valid JSON"):
        convert.main(["--split", "verification", "--model-dir", str(tmp_path)])
    meta = json.loads((Path(__file__).parent.parent / "models" / "signnet" / "verification"
                       / "train_meta.json").read_text())
    (art / "train_meta.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="--dataset gtsrb: .* was trained on carolo-synth"):
        convert.main(["--split", "verification", "--model-dir", str(tmp_path),
                      "--dataset", "gtsrb"])
