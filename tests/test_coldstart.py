"""Cold start: rendering and decoding in a process pool straight into the cache, flat memory.

The pool must produce byte-identical cache files (images, labels, groups, meta
and keys) to the serial build, and :func:`benchmark.datasets.cache.release`
must give mapped pages back.
"""

import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from benchmark.datasets import cache, gtsrb, parallel, userdata
from benchmark.datasets import carolo_synth as cs
from benchmark.datasets.registry import load_dataset
from benchmark.errors import DataError, UsageError
from conftest import ROOT, SHARED
from test_gtsrb import make_fixture

SMALL = cs.SynthSpec(seed=3, n_sessions=2, per_class_per_session=2, image_size=24)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entry(root):
    """sha256 of every file of the one cache entry under ``root``; meta without timings."""
    (entry,) = [d for d in root.iterdir() if not d.name.startswith(".")]
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no scratch left
    meta = json.loads((entry / "meta.json").read_text())
    for k in ("render_seconds", "decode_seconds"):
        meta.pop(k, None)
    return entry.name, meta, {p.name: _sha(p) for p in entry.glob("*.npy")}


@pytest.fixture
def small_chunks(monkeypatch):
    """Tiny, uneven chunks and no minimum, so small jobs do go through the pool."""
    for module, chunk in ((cs, "RENDER_CHUNK"), (gtsrb, "DECODE_CHUNK"),
                          (userdata, "DECODE_CHUNK")):
        monkeypatch.setattr(module, chunk, 7)
    for module, least in ((cs, "RENDER_POOL_MIN"), (gtsrb, "DECODE_POOL_MIN"),
                          (userdata, "DECODE_POOL_MIN")):
        monkeypatch.setattr(module, least, 0)


def _load_both(monkeypatch, tmp_path, name, **kw):
    """The cache entry built with 1 worker and with 2 (fresh cache dirs)."""
    out = []
    for workers in ("1", "2"):
        monkeypatch.setenv(parallel.ENV_WORKERS, workers)
        root = tmp_path / f"cache-{workers}"
        ds = load_dataset(name, cache_dir=root, verbose=False, **kw)
        out.append(_entry(root))
        del ds
    return out


def test_render_in_pool_is_byte_identical_to_render_arrays(tmp_path, small_chunks):
    images, labels, sessions = cs.render_arrays(SMALL)
    path = cache.new_scratch(tmp_path, "k", "images", images.shape, np.uint8)
    cs.render_to_npy(SMALL, path, workers=2)
    got = np.load(path)
    assert got.dtype == np.uint8 and hashlib.sha256(got.tobytes()).hexdigest() == \
        hashlib.sha256(images.tobytes()).hexdigest()
    lab, sess = cs.label_arrays(SMALL)
    np.testing.assert_array_equal(lab, labels)
    np.testing.assert_array_equal(sess, sessions)
    assert lab.dtype == labels.dtype and sess.dtype == sessions.dtype


def test_carolo_cache_entry_is_the_same_serial_or_in_the_pool(tmp_path, monkeypatch,
                                                              small_chunks):
    serial, pooled = _load_both(monkeypatch, tmp_path, "carolo-synth", image_size=24, seed=3,
                                options={"n_sessions": 2, "per_class_per_session": 2})
    assert serial == pooled
    # and the images are those render_arrays gives (the pre-pool build)
    images, labels, _ = cs.render_arrays(SMALL)
    assert serial[2]["images.npy"] == _sha_of_saved(tmp_path, images)
    assert serial[2]["labels.npy"] == _sha_of_saved(tmp_path, labels)


def _sha_of_saved(tmp_path, array) -> str:
    np.save(tmp_path / "x.npy", array)
    return _sha(tmp_path / "x.npy")


@pytest.mark.parametrize("bad", [None, "GTSRB/Final_Training/Images/00001/00000_00001.ppm"])
def test_gtsrb_cache_entry_is_the_same_serial_or_in_the_pool(tmp_path, monkeypatch,
                                                             small_chunks, bad):
    data = tmp_path / "data"
    data.mkdir()
    make_fixture(data, bad=bad)
    serial, pooled = _load_both(monkeypatch, tmp_path, "gtsrb", data_dir=data, image_size=12,
                                on_bad_image="skip")
    assert serial == pooled
    assert serial[1]["n_images"] == (23 if bad else 24)
    # the serial in-memory decode() gives the same images
    records, sources = gtsrb.read_records(data)
    images, keep, skipped = gtsrb.decode(records, sources, image_size=12, roi_crop=False,
                                         on_bad_image="skip")
    assert serial[2]["images.npy"] == _sha_of_saved(tmp_path, images[keep])
    assert skipped == ([bad] if bad else [])


@pytest.mark.skipif(not (SHARED / "data" / "gtsrb" / gtsrb.ARCHIVES[0]).is_file(),
                    reason="the GTSRB archives are not in ../shared")
def test_real_gtsrb_subset_in_the_pool_equals_decode(tmp_path, monkeypatch):
    monkeypatch.setattr(gtsrb, "DECODE_CHUNK", 97)
    monkeypatch.setattr(gtsrb, "DECODE_POOL_MIN", 0)
    data = SHARED / "data" / "gtsrb"
    records, sources = gtsrb.read_records(data)
    subset = records[::150]  # every class, training and test
    ref, keep, _ = gtsrb.decode(subset, sources, image_size=32, roi_crop=True)
    path = cache.new_scratch(tmp_path, "k", "images", ref.shape, np.uint8)
    got_keep, skipped = gtsrb.decode_to_npy(subset, data, path, image_size=32, roi_crop=True,
                                            workers=2)
    assert keep.all() and got_keep.all() and skipped == []
    assert hashlib.sha256(np.load(path).tobytes()).hexdigest() == \
        hashlib.sha256(ref.tobytes()).hexdigest()


def _folders(root, n_per_class=6, bad=()):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        for i in range(n_per_class):
            p = root / c / f"{i:02d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (9 + i, 11, 3), dtype=np.uint8)).save(p)
    for rel in bad:
        (root / rel).write_bytes(b"not a png")
    return root


def test_imagefolder_skip_is_the_same_serial_or_in_the_pool(tmp_path, monkeypatch,
                                                            small_chunks):
    data = _folders(tmp_path / "data", bad=("cat/01.png", "dog/04.png"))
    serial, pooled = _load_both(monkeypatch, tmp_path, "imagefolder", data_dir=data,
                                image_size=8, on_bad_image="skip")
    assert serial == pooled
    assert serial[1]["n_images"] == 10 and len(serial[1]["skipped"]) == 2
    assert serial[1]["skipped"][0].endswith("cat/01.png")


def test_first_bad_image_in_order_is_reported_and_no_scratch_left(tmp_path, monkeypatch,
                                                                  small_chunks):
    data = _folders(tmp_path / "data", bad=("cat/01.png", "dog/04.png"))  # chunks 0 and 1
    monkeypatch.setenv(parallel.ENV_WORKERS, "2")
    with pytest.raises(DataError, match=r"cannot read image .*cat/01\.png"):
        load_dataset("imagefolder", data_dir=data, image_size=8, cache_dir=tmp_path / "c",
                     verbose=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_workers_variable(monkeypatch):
    monkeypatch.setenv(parallel.ENV_WORKERS, "3")
    assert parallel.default_workers() == 3
    monkeypatch.delenv(parallel.ENV_WORKERS)
    assert parallel.default_workers() >= 1
    for bad in ("0", "two"):
        monkeypatch.setenv(parallel.ENV_WORKERS, bad)
        with pytest.raises(UsageError, match=parallel.ENV_WORKERS):
            parallel.default_workers()


def test_open_rows_maps_only_the_rows(tmp_path):
    path = cache.new_scratch(tmp_path, "k", "images", (10, 2, 3), np.int64)
    rows = parallel.open_rows(path, 3, 5)
    rows[:] = 7
    assert rows.shape == (2, 2, 3)
    del rows
    a = np.load(path)
    assert a[3:5].min() == 7 and a[:3].max() == 0 and a[5:].max() == 0
    with pytest.raises(ValueError):
        parallel.open_rows(path, 4, 11)


def _rss_mb() -> float:
    status = open("/proc/self/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_release_gives_mapped_pages_back(tmp_path):
    np.save(tmp_path / "big.npy", np.full((1600, 100, 100, 3), 3, np.uint8))  # 48 MB
    a = np.load(tmp_path / "big.npy", mmap_mode="r")
    before = _rss_mb()
    total = int(a.sum(dtype=np.int64))  # touches every page
    touched = _rss_mb()
    assert touched - before > 40
    advised = cache.release(a, 0, 800) + cache.release(np.asarray(a)[800:])  # a view works too
    assert advised >= a.nbytes
    released = _rss_mb()
    assert touched - released > 40
    assert int(a.sum(dtype=np.int64)) == total  # still readable, same data
    # no-ops: in-memory arrays, copy-on-write maps, empty ranges
    assert cache.release(np.ones((4, 4))) == 0
    assert cache.release(np.load(tmp_path / "big.npy", mmap_mode="c")) == 0
    assert cache.release(a, 5, 5) == 0


def test_release_rounds_to_pages_and_keeps_writes(tmp_path):
    path = cache.new_scratch(tmp_path, "k", "x", (100, 1000), np.uint8)
    w = np.load(path, mmap_mode="r+")
    w[:] = 9
    assert 0 < cache.release(w, 10, 20) <= 10 * 1000 + 2 * 4096
    assert int(w[10:20].min()) == 9  # written (dirty) rows survive
    del w
    assert int(np.load(path).min()) == 9


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in kB")
def test_cold_build_memory_stays_flat_without_a_main_guard(tmp_path):
    """A 120 MB imagefolder decodes in the pool with a small peak, from an unguarded script."""
    data = tmp_path / "data"
    rng = np.random.default_rng(1)
    for i in range(1600):
        p = data / f"c{i % 2}" / f"{i:04d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(p)
    script = tmp_path / "unguarded.py"  # no ``if __name__ == "__main__"``: must not re-run
    script.write_text(
        "import resource, sys\n"
        "from benchmark.datasets.registry import load_dataset\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"ds = load_dataset('imagefolder', data_dir={str(data)!r}, image_size=160,\n"
        f"                  cache_dir={str(tmp_path / 'cache')!r}, verbose=False)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(len(ds), ds.images.nbytes // 2**20, (peak - base) // 1024)\n")
    env = {"PYTHONPATH": str(ROOT), parallel.ENV_WORKERS: "2", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    n, mb, grew = map(int, out.stdout.split())
    assert n == 1600 and mb >= 115
    assert grew < 40, f"the parent's peak RSS grew by {grew} MB for a {mb} MB array"


def test_decode_to_npy_with_the_imagenet_crop_equals_decode(tmp_path, monkeypatch):
    from benchmark.datasets.imagenet import resize_center_crop
    monkeypatch.setattr(userdata, "DECODE_CHUNK", 5)
    monkeypatch.setattr(userdata, "DECODE_POOL_MIN", 0)
    listing = userdata.list_imagefolder(_folders(tmp_path / "data", bad=("dog/02.png",)))
    ref, keep, skipped, modes = userdata.decode(listing.items, image_size=8,
                                                on_bad_image="skip", resize=resize_center_crop)
    path = cache.new_scratch(tmp_path, "k", "images", ref.shape, np.uint8)
    calls = []
    got = userdata.decode_to_npy(listing.items, path, image_size=8, on_bad_image="skip",
                                 resize=resize_center_crop, workers=2,
                                 progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(got[0], keep)
    assert got[1:] == (skipped, modes) and len(skipped) == 1
    np.testing.assert_array_equal(np.load(path), ref)
    assert sorted(calls) == calls and calls[-1] == (12, 12)
