"""The dataset interface: typed options, validate_dataset, the registry and the shared flags."""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from benchmark.datasets import registry
from benchmark.datasets.base import Dataset
from benchmark.datasets.cli import add_dataset_arguments, dataset_options_from_args
from benchmark.datasets.entry import DatasetEntry, option
from benchmark.datasets.registry import DATASETS, load_dataset, validate_dataset
from benchmark.errors import DataError, UsageError
from conftest import ROOT


@pytest.fixture
def sources(tmp_path):
    """An existing (never decoded) data dir for every real-data loader."""
    folder = tmp_path / "folder"
    (folder / "cat").mkdir(parents=True)
    (folder / "cat" / "a.png").write_bytes(b"not a png")  # validation must not decode it
    manifest = tmp_path / "m.csv"
    manifest.write_text("folder/cat/a.png,0\n")
    npz = tmp_path / "c.npz"
    np.savez(npz, test_images=np.zeros((1, 32, 32, 3), np.uint8))
    return {"carolo-synth": None, "gtsrb": tmp_path, "cifar100": npz, "imagefolder": folder,
            "csv": manifest, "imagenet": folder}


# (dataset, bad options, the option the message must name, what it must say)
BAD_OPTIONS = [
    ("carolo-synth", {"sessions": 3}, "sessions", "unknown carolo-synth option"),
    ("carolo-synth", {"n_sessions": "3"}, "n_sessions", "must be an integer"),
    ("carolo-synth", {"n_sessions": True}, "n_sessions", "must be an integer"),
    ("carolo-synth", {"per_class_per_session": 0}, "per_class_per_session",
     "must be an integer >= 1"),
    ("gtsrb", {"roi_crop": "yes"}, "roi_crop", "must be true or false"),
    ("gtsrb", {"holdout": 0.1}, "holdout", "unknown gtsrb option"),
    ("cifar100", {"roi_crop": True}, "roi_crop", "cifar100 has none"),
    ("imagefolder", {"holdout": "0.3"}, "holdout", "must be a number"),
    ("imagefolder", {"holdout": 1.5}, "holdout", "must be a fraction in (0, 1)"),
    ("imagefolder", {"class_names": "n.txt"}, "class_names", "unknown imagefolder option"),
    ("csv", {"class_names": 3}, "class_names", "must be a file path"),
    ("csv", {"holdout": 0}, "holdout", "must be a fraction"),
    ("imagenet", {"holdout": 0.1}, "holdout", "unknown imagenet option"),
]


@pytest.mark.parametrize("name,options,key,words", BAD_OPTIONS)
def test_bad_option_is_a_usage_error_naming_it(name, options, key, words, sources, tmp_path):
    kw = dict(options=options, data_dir=sources[name])
    for check in (lambda: validate_dataset(name, **kw),
                  lambda: load_dataset(name, cache_dir=tmp_path / "c", verbose=False, **kw)):
        with pytest.raises(UsageError) as e:
            check()
        msg = str(e.value)
        assert key in msg and words in msg and "\n" not in msg
    assert not (tmp_path / "c").exists()  # nothing was loaded or written


def test_option_flags_are_named_in_messages():
    with pytest.raises(UsageError, match=r"n_sessions \(--synth-sessions\) must be"):
        validate_dataset("carolo-synth", options={"n_sessions": 0})
    with pytest.raises(UsageError, match=r"roi_crop \(--roi-crop\) must be true or false"):
        validate_dataset("gtsrb", options={"roi_crop": 1}, data_dir=ROOT)


def test_good_options_come_back_typed(sources):
    opts = validate_dataset("carolo-synth", options={"n_sessions": 5})
    assert (opts.n_sessions, opts.per_class_per_session) == (5, 16)
    csv = validate_dataset("csv", options={"class_names": sources["csv"]},
                           data_dir=sources["csv"])
    assert csv.class_names == str(sources["csv"]) and csv.holdout == 0.2
    assert validate_dataset("gtsrb", options=None, data_dir=sources["gtsrb"]).roi_crop is False


@pytest.mark.parametrize("name", ["gtsrb", "cifar100", "imagefolder", "csv", "imagenet"])
def test_missing_data_dir_is_caught_without_decoding(name, tmp_path, monkeypatch):
    def no_load(*a, **k):
        raise AssertionError("validate_dataset must not load")

    entry = DATASETS.get(name)
    monkeypatch.setitem(registry.DATASETS._resolved, name,
                        dataclasses.replace(entry, load=no_load))
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        validate_dataset(name, data_dir=missing)
    with pytest.raises(UsageError, match=f"{name} needs --data-dir"):
        validate_dataset(name, data_dir=None)


def test_validate_checks_a_folder_without_reading_its_images(sources):
    # the only image is garbage: listing is all validation does
    validate_dataset("imagefolder", data_dir=sources["imagefolder"])
    with pytest.raises(DataError, match="is a folder"):
        validate_dataset("csv", data_dir=sources["imagefolder"])
    with pytest.raises(DataError, match="cannot read class names file .*nope.txt"):
        validate_dataset("csv", data_dir=sources["csv"], options={"class_names": "nope.txt"})
    with pytest.raises(DataError, match="no CIFAR-100 data at"):
        validate_dataset("cifar100", data_dir=sources["imagefolder"])


def test_validate_other_arguments(tmp_path):
    with pytest.raises(UsageError, match=r"unknown dataset 'mnist' \(--dataset\); available: "
                                         "carolo-synth, cifar100, csv, gtsrb, imagefolder, "
                                         "imagenet"):
        validate_dataset("mnist")
    with pytest.raises(UsageError, match="--num-classes is for the csv and imagefolder datasets;"
                                         " gtsrb has a fixed class list"):
        validate_dataset("gtsrb", data_dir=tmp_path, num_classes=43)
    with pytest.raises(UsageError, match="--num-classes must be an integer >= 1, got 0"):
        validate_dataset("imagefolder", data_dir=tmp_path, num_classes=0)
    with pytest.raises(UsageError, match="--on-bad-image must be fail or skip, got 'ignore'"):
        validate_dataset("gtsrb", data_dir=tmp_path, on_bad_image="ignore")
    # --download: the data dir may not exist yet, but only gtsrb can be downloaded
    validate_dataset("gtsrb", data_dir=tmp_path / "later", download=True)
    with pytest.raises(UsageError, match="--download is not available for dataset 'csv'; "
                                         "it is for: gtsrb"):
        validate_dataset("csv", data_dir=tmp_path / "m.csv", download=True)


def test_listing_names_imports_no_loader():
    code = ("import sys; from benchmark.datasets.registry import DATASETS, list_datasets; "
            "names = list_datasets(); 'gtsrb' in DATASETS; "
            "print(sorted(m for m in sys.modules if m.startswith('benchmark.datasets.')), "
            "'PIL' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == ("['benchmark.datasets.entry', 'benchmark.datasets.registry'] "
                           "False")


@dataclass(frozen=True)
class _DotsOptions:
    n: int = option(3, help="images", check=lambda v: v >= 1, rule="an integer >= 1")


def _load_dots(req, opts):
    k = opts.n
    return Dataset(name=req.name, images=np.zeros((2 * k, req.image_size, req.image_size, 3),
                                                  np.uint8),
                   labels=np.repeat([0, 1], k), groups=np.arange(2 * k) % 2,
                   class_names=("a", "b"), verification_groups=(1,))


def test_a_registered_dataset_goes_through_the_same_checks():
    registry.register_dataset(DatasetEntry(name="dots", load=_load_dots, options=_DotsOptions))
    try:
        assert "dots" in DATASETS and "dots" in registry.list_datasets()
        ds = load_dataset("dots", image_size=4, options={"n": 2})
        assert len(ds) == 4 and ds.images.shape[1:] == (4, 4, 3)
        with pytest.raises(UsageError, match=r"dots option n must be an integer >= 1, got -1"):
            load_dataset("dots", options={"n": -1})
    finally:
        DATASETS.unregister("dots")
    assert "dots" not in DATASETS


def _parser(**kw):
    p = argparse.ArgumentParser(prog="x")
    add_dataset_arguments(p, **kw)
    return p


def test_dataset_flags_unset_are_none_for_config_files():
    values = vars(_parser().parse_args([]))
    assert set(values) == {"dataset", "data_dir", "download", "download_url", "num_classes",
                           "class_names", "roi_crop", "on_bad_image", "synth_sessions",
                           "synth_per_class", "cache_dir"}
    assert all(v is None for v in values.values())
    assert dataset_options_from_args(values) == {}
    assert set(values) == {"dataset", "data_dir", "download", "download_url", "num_classes",
                           "on_bad_image", "cache_dir"}


def test_dataset_flags_with_real_defaults_and_options(tmp_path, monkeypatch):
    values = vars(_parser(defaults_none=False, dataset_default="carolo-synth").parse_args([]))
    assert (values["dataset"], values["download"], values["roi_crop"],
            values["on_bad_image"]) == ("carolo-synth", False, False, "fail")
    monkeypatch.chdir(tmp_path)
    values = vars(_parser().parse_args(
        ["--roi-crop", "--synth-sessions", "4", "--synth-per-class", "2", "--class-names",
         "n.txt", "--cache-dir", "c"]))
    assert dataset_options_from_args(values) == {
        "roi_crop": True, "n_sessions": 4, "per_class_per_session": 2,
        "class_names": str(tmp_path / "n.txt")}
    assert values["cache_dir"] == "c"


def test_dataset_choices_come_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--dataset", "mnist"])
    assert "choose from carolo-synth, cifar100, csv, gtsrb, imagefolder, imagenet" in \
        capsys.readouterr().err.replace("'", "")


def test_damaged_sources_and_cache_entries_are_data_errors(tmp_path):
    from benchmark.datasets import cache

    (tmp_path / "GTSRB_Final_Training_Images.zip").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read .*GTSRB_Final_Training_Images.zip"):
        load_dataset("gtsrb", data_dir=tmp_path, cache_dir=tmp_path / "c", verbose=False)
    extracted = tmp_path / "x" / "GTSRB" / "Final_Training" / "Images" / "00000"
    extracted.mkdir(parents=True)
    (extracted / "GT-00000.csv").write_text("name;class\na.ppm;0\n")
    with pytest.raises(DataError, match="GT-00000.csv line 2: not a GTSRB label row"):
        load_dataset("gtsrb", data_dir=tmp_path / "x", cache_dir=tmp_path / "c", verbose=False)
    arrays = {"images": np.zeros((1, 2, 2, 3), np.uint8), "labels": np.zeros(1, np.int64),
              "groups": np.zeros(1, np.int64)}
    entry = cache.store(tmp_path / "c", "k", arrays, {})
    (entry / "labels.npy").unlink()
    with pytest.raises(DataError, match="cache entry .*k is damaged .*delete it"):
        cache.load(tmp_path / "c", "k")
