"""Issue #12 acceptance on real photos: GTSRB images regrouped into a 42-class folder of one's
own (classes 0 and 1, speed limits 20 and 30, merged; folder names are words, not GTSRB's
numbers), with train/ and test/ folders. ``train --num-classes 42 --init-from signnet-gtsrb``
fine-tunes the shipped body with a new 42-way head, then ``convert`` and ``run`` report float
vs int8 with per-class tables. Skipped without ../shared/data/gtsrb."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, run_cli, run_main

GTSRB = SHARED / "data" / "gtsrb"
SHIPPED = ROOT / "models" / "signnet-gtsrb" / "verification" / "signnet-gtsrb.keras"


def _name(gtsrb_class: int) -> str:
    """Folder name of a GTSRB class in the regrouped set: 0 and 1 become one class."""
    return f"sign-{max(gtsrb_class, 1) - 1:02d}"


def build_gtsrb42(gtsrb: Path, root: Path, *, train: int = 8, test: int = 3) -> Path:
    """``root/train/<class>/`` (``train`` images per class, spread over its tracks) and
    ``root/test/<class>/`` (``test`` images per class from the official test set)."""
    with zipfile.ZipFile(gtsrb / "GTSRB_Final_Training_Images.zip") as z:
        by_class: dict[int, list[str]] = {}
        for n in z.namelist():
            if n.endswith(".ppm"):
                by_class.setdefault(int(n.split("/")[-2]), []).append(n)
        for c, names in sorted(by_class.items()):
            names.sort()
            step = max(1, len(names) // train)
            for n in names[::step][:train]:
                out = root / "train" / _name(c) / f"{c:02d}_{Path(n).stem}.ppm"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(z.read(n))
    with zipfile.ZipFile(gtsrb / "GTSRB_Final_Test_GT.zip") as z:
        gt = next(n for n in z.namelist() if n.endswith(".csv"))
        rows = list(csv.DictReader(io.StringIO(z.read(gt).decode()), delimiter=";"))
    taken: dict[int, int] = {}
    with zipfile.ZipFile(gtsrb / "GTSRB_Final_Test_Images.zip") as z:
        members = {Path(n).name: n for n in z.namelist() if n.endswith(".ppm")}
        for r in rows:
            c = int(r["ClassId"])
            if taken.get(c, 0) >= test:
                continue
            taken[c] = taken.get(c, 0) + 1
            out = root / "test" / _name(c) / r["Filename"]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(members[r["Filename"]]))
    return root


@pytest.mark.slow
@pytest.mark.skipif(not (GTSRB / "GTSRB_Final_Test_GT.zip").is_file(), reason="no GTSRB copy")
@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped signnet-gtsrb not present")
def test_own_42_class_signs_fine_tuned_from_signnet_gtsrb(tf, tmp_path):
    data = build_gtsrb42(GTSRB, tmp_path / "signs42", train=8, test=3)
    env = {"EDGETPU_BENCH_CACHE": str(tmp_path / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = ["--dataset", "imagefolder", "--data-dir", data, "--split", "verification",
              "--model-dir", tmp_path / "models"]
    # train and convert in this process (TensorFlow imported once); run as the user runs it
    r = run_main("benchmark.train", *common, "--num-classes", "42", "--init-from",
                 "signnet-gtsrb", "--epochs", "4", "--batch-size", "32", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    meta = json.loads((tmp_path / "models/signnet/verification/train_meta.json").read_text())
    assert meta["num_classes"] == 42 and meta["init_from"]["new_head"] == ["probs"]
    assert meta["class_names"][0] == "sign-00" and meta["validation"]["n"] > 0
    r = run_main("benchmark.convert", *common, "--representative-size", "100", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "run"
    r = run_cli("benchmark.run", *common, "--device", "cpu", "--out", out, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["n_eval"] == 42 * 3 + 3          # the merged class has 2 x 3 test images
    for v in ("float", "int8"):
        m = res["variants"][v]
        # the GTSRB body transfers: far above chance (1/42) after 4 epochs on 8 images a class
        assert m["accuracy"] > 0.3, (v, m["accuracy"])
        assert len(m["per_class"]["recall"]) == 42 and "top5_accuracy" in m
    assert "Per class: verification" in r.stdout and "sign-41" in r.stdout
    print(r.stdout)
