"""Evaluation that uses the machine: batch-N copies and worker processes, bit-identical.

Every fast configuration is compared with the batch-1, single-process path
(``EvalSettings(workers=1, cpu_batch=1, copy_rows=False)``) on the shipped
SignNet models and, when a converted int8 CIFAR ResNet is at hand, on it.
Batch-N copies are written to a temporary directory (never the model folder).
"""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark import batching
from benchmark.evaluate import EvalSettings, evaluate_variant
from benchmark.preprocess import PixelTransform
from benchmark.variants import Variant

ROOT = Path(__file__).resolve().parent.parent
SIGNNET = ROOT / "models" / "signnet" / "verification"
CIFAR = Path("/work/shared/data/cifar100")
BASELINE = EvalSettings(workers=1, cpu_batch=1, copy_rows=False)


@pytest.fixture(autouse=True)
def batched_tmp(tmp_path, monkeypatch):
    """Batch-N copies go to a fresh directory per test."""
    d = tmp_path / "batched"
    monkeypatch.setattr(batching, "batched_dir", lambda: d)
    return d


@pytest.fixture(scope="module")
def carolo():
    from benchmark.datasets.registry import load_dataset
    return load_dataset("carolo-synth", image_size=80, verbose=False)


def _variant(path: Path, kind: str) -> Variant:
    return Variant(kind, kind, "cpu", Path(path), 8 if kind == "int8" else None)


def _same(a, b) -> bool:
    pa, pb = a.predictions, b.predictions
    return (pa.probs.dtype == pb.probs.dtype and pa.probs.tobytes() == pb.probs.tobytes()
            and np.array_equal(pa.index, pb.index) and np.array_equal(pa.labels, pb.labels))


def _check_configs(path, kind, ds, idx, preprocess, logits, configs):
    v = _variant(path, kind)
    base = evaluate_variant(v, ds, idx, preprocess=preprocess, logits=logits, settings=BASELINE)
    assert base.runtime["batch"] == 1 and base.runtime["workers"] == 1
    for settings in configs:
        r = evaluate_variant(v, ds, idx, preprocess=preprocess, logits=logits, settings=settings)
        assert _same(r, base), (settings, r.runtime)
        assert r.runtime["xnnpack"] is True
        assert r.summary["accuracy"] == base.summary["accuracy"]
        np.testing.assert_array_equal(r.confusion, base.confusion)
    return base


@pytest.mark.parametrize("kind", ["int8", "float"])
def test_signnet_bit_identical(kind, carolo, batched_tmp):
    from benchmark.models.registry import get_model
    entry = get_model("signnet")
    idx = carolo.split("verification")[1]
    if kind == "float":
        idx = idx[::3]  # the float model is ~4x slower; a strided (non-contiguous) subset
    configs = [EvalSettings(), EvalSettings(workers=1), EvalSettings(workers=2, cpu_batch=16),
               EvalSettings(workers=2, cpu_batch=1), EvalSettings(cpu_batch=64, batch_size=50)]
    _check_configs(SIGNNET / f"signnet_{kind}.tflite", kind, carolo, idx, entry.preprocess,
                   entry.outputs == "logits", configs)
    copies = sorted(p.name for p in batched_tmp.glob("*.tflite"))
    assert len(copies) >= 2 and all(batched_tmp.joinpath(c).with_suffix(".json").is_file()
                                    for c in copies)


def _cifar_resnet_int8():
    hits = sorted(glob.glob(os.environ.get("EDGETPU_BENCH_CIFAR_INT8", "")) or
                  glob.glob("/tmp/eval-cache/converted/resnet*-*/resnet*_int8.tflite"))
    return Path(hits[0]) if hits else None


def test_cifar_resnet_int8_bit_identical():
    model = _cifar_resnet_int8()
    if model is None or not CIFAR.is_dir():
        pytest.skip("no converted int8 CIFAR ResNet (python -m benchmark.run --model resnet20 "
                    "--dataset cifar100 ... --cache-dir /tmp/eval-cache) or CIFAR data")
    from benchmark.datasets.registry import load_dataset
    from benchmark.models.registry import get_model
    entry = get_model(model.name.split("_")[0])
    ds = load_dataset("cifar100", data_dir=CIFAR, image_size=32, verbose=False)
    idx = ds.split("verification")[1]
    rng = np.random.default_rng(0)
    idx = np.concatenate([idx[:300], rng.permutation(idx)[:200]])  # unsorted, repeats
    _check_configs(model, "int8", ds, idx, entry.preprocess, entry.outputs == "logits",
                   [EvalSettings(), EvalSettings(workers=2), EvalSettings(workers=1)])


def test_batched_copy_edits_and_cache(batched_tmp):
    from benchmark.tflite_graph import read_graph
    src = SIGNNET / "signnet_int8.tflite"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in SIGNNET.iterdir())
    path, note = batching.batched_model(src, 16)
    assert path is not None and path.parent == batched_tmp and "built" in note
    assert path.name.startswith(hashlib.sha256(src.read_bytes()).hexdigest())
    g = read_graph(path)
    assert g.input_tensors()[0].shape_signature[0] == -1
    assert batching.batched_model(src, 16) == (path, "cached batch-16 copy")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in SIGNNET.iterdir()) == before


def test_unbatchable_model_falls_back_to_batch1(batched_tmp, monkeypatch):
    # The unedited batch-1 bytes cannot be resized (RESHAPE to [1, 1600]).
    monkeypatch.setattr(batching, "batch_model_bytes", lambda model, batch: model)
    src = SIGNNET / "signnet_int8.tflite"
    path, note = batching.batched_model(src, 8)
    assert path is None and note.startswith("batch 1:")
    assert not list(batched_tmp.glob("*.tflite")) and list(batched_tmp.glob("*.json"))
    plan = batching.plan_cpu(src, 1000, workers=1)
    assert plan.batch == 1 and plan.model == src
    # Outputs that differ from batch 1 are refused too (here: the float model's copy).
    other = (SIGNNET / "signnet_float.tflite").read_bytes()
    monkeypatch.setattr(batching, "batch_model_bytes",
                        lambda model, batch: _REAL_BATCH_MODEL_BYTES(other, batch))
    path, note = batching.batched_model(src, 4)
    assert path is None and "expected" in note


_REAL_BATCH_MODEL_BYTES = batching.batch_model_bytes


def test_backend_batched_predict_partial_chunks(batched_tmp, carolo):
    from benchmark.backends.litert_cpu import LiteRTCPUBackend
    from benchmark.models.registry import get_model
    t = get_model("signnet").preprocess
    src = SIGNNET / "signnet_int8.tflite"
    path, _ = batching.batched_model(src, 32)
    imgs = np.array(carolo.images[:70])
    one, big = LiteRTCPUBackend(src, num_threads=1), LiteRTCPUBackend(path, batch=32)
    assert big.input_spec.shape[0] == 32 and big.delegated() and one.delegated()
    np.testing.assert_array_equal(big.predict_images(imgs, t), one.predict_images(imgs, t))
    np.testing.assert_array_equal(big.predict(t(imgs)), one.predict(t(imgs)))


def test_choose_rule():
    light = batching.ModelCost(macs=21_000_000, operators=14, activation_bytes=102_400)
    heavy = batching.ModelCost(macs=126_000_000, operators=90, activation_bytes=18_496)
    kw = dict(cores=2, num_threads=None, workers=None)
    assert batching.choose(light, 1440, **kw) == (32, 1, 2)
    assert batching.choose(heavy, 1440, **kw) == (32, 2, 1)
    assert batching.choose(heavy, 100, **kw)[1] == 1            # too few images for two
    assert batching.choose(heavy, 1440, cores=2, num_threads=1, workers=None)[1:] == (1, 1)
    assert batching.choose(light, 1440, cores=2, num_threads=None, workers=2)[1:] == (2, 1)
    assert batching.choose(light, 1440, batch=1, **kw)[0] == 1
    huge = batching.ModelCost(macs=4e9, operators=70, activation_bytes=112 * 112 * 64 * 4)
    assert batching.choose(huge, 50_000, cores=8, num_threads=None, workers=None) == (1, 8, 1)
    fl = batching.ModelCost(macs=21_000_000, operators=12, activation_bytes=409_600)
    assert batching.choose(fl, 1440, **kw) == (8, 1, 2)


def test_edgetpu_and_other_devices_stay_batch1(monkeypatch, carolo):
    import benchmark.backends as backends
    from benchmark.backends.fake import FakeBackend
    monkeypatch.setattr(batching, "plan_cpu", lambda *a, **k: pytest.fail("planned"))
    opened = []

    def fake(device, path, **kw):
        opened.append(device)
        return FakeBackend(num_classes=carolo.num_classes)
    monkeypatch.setattr(backends, "make_backend", fake)
    v = Variant("int8-edgetpu", "compiled", "edgetpu", SIGNNET / "signnet_int8.tflite", 8)
    r = evaluate_variant(v, carolo, np.arange(10), preprocess=PixelTransform(), logits=False)
    assert opened == ["edgetpu"] and r.predictions.labels.size == 10
    assert "workers" not in r.runtime


def test_pool_failure_runs_in_this_process(monkeypatch, carolo):
    from benchmark.models.registry import get_model
    entry = get_model("signnet")

    def broken(workers):
        raise OSError("no processes here")
    monkeypatch.setattr(batching, "shard_pool", broken)
    v, idx = _variant(SIGNNET / "signnet_int8.tflite", "int8"), np.arange(200)
    base = evaluate_variant(v, carolo, idx, preprocess=entry.preprocess, logits=False,
                            settings=BASELINE)
    r = evaluate_variant(v, carolo, idx, preprocess=entry.preprocess, logits=False,
                         settings=EvalSettings(workers=2, latency=3, latency_warmup=1))
    assert _same(r, base) and r.runtime["workers"] == 1 and "workers failed" in r.runtime["plan"]
    assert r.latency is not None and len(r.latency["samples_ms"]) == 3


def test_read_rows_copies_out_of_the_map(carolo):
    assert isinstance(carolo.images, np.memmap)
    rows = batching.read_rows(carolo.images, np.arange(5, 9))
    assert type(rows) is np.ndarray and rows.flags.owndata
    np.testing.assert_array_equal(rows, carolo.images[5:9])
    np.testing.assert_array_equal(batching.read_rows(carolo.images, [3, 1]),
                                  carolo.images[[3, 1]])


SCRIPT = """
import numpy as np
from pathlib import Path
from benchmark.datasets.registry import load_dataset
from benchmark.evaluate import EvalSettings, evaluate_variant
from benchmark.preprocess import PixelTransform
from benchmark.models.registry import get_model
from benchmark.variants import Variant
print("main ran")
ds = load_dataset("carolo-synth", image_size=80, verbose=False)
v = Variant("int8", "int8", "cpu", Path({model!r}), 8)
r = evaluate_variant(v, ds, np.arange(256), preprocess=get_model("signnet").preprocess,
                     logits=False, settings=EvalSettings(workers=2))
print(r.runtime["workers"], r.runtime["plan"])
"""


def test_workers_do_not_rerun_an_unguarded_script(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT.format(model=str(SIGNNET / "signnet_int8.tflite")))
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGETPU_BENCH_CACHE=os.environ.get(
        "EDGETPU_BENCH_CACHE", str(ROOT / "datasets" / "cache")))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("main ran") == 1 and p.stdout.splitlines()[-1].startswith("2 ")
