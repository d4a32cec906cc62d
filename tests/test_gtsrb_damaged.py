"""Damaged GTSRB archives and label files: one line naming the file, never a traceback."""

import zipfile

import pytest

from benchmark.datasets.registry import load_dataset
from benchmark.errors import DataError
from conftest import run_cli
from test_gtsrb import make_fixture

TRAIN = "GTSRB_Final_Training_Images.zip"
MEMBER = "GTSRB/Final_Training/Images/00001/00000_00001.ppm"
CSV = "GTSRB/Final_Training/Images/00002/GT-00002.csv"


def _load(data, tmp_path, **kw):
    return load_dataset("gtsrb", data_dir=data, image_size=8, cache_dir=tmp_path / "c",
                        verbose=False, **kw)


def _flip_member_byte(archive, member):
    """Corrupt one byte of a stored member's data (its CRC no longer matches)."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(member)
    raw = bytearray(archive.read_bytes())
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    data_start = info.header_offset + 30 + name_len + extra_len
    raw[data_start + info.compress_size // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))


def test_truncated_archive_is_one_line_even_when_skipping(tmp_path):
    data = make_fixture(tmp_path)
    z = data / TRAIN
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    for mode in ("fail", "skip"):
        with pytest.raises(DataError, match=f"cannot read {z}.*damaged download") as e:
            _load(data, tmp_path, on_bad_image=mode)
        assert "\n" not in str(e.value)


def test_crc_broken_image_fails_naming_it_or_is_skipped(tmp_path):
    data = make_fixture(tmp_path)
    _flip_member_byte(data / TRAIN, MEMBER)
    with pytest.raises(DataError, match=f"cannot read GTSRB image {MEMBER}.*is damaged"):
        _load(data, tmp_path)
    ds = _load(data, tmp_path, on_bad_image="skip")
    assert ds.meta["skipped"] == [MEMBER] and len(ds) == 23


def test_crc_broken_label_file_names_it(tmp_path):
    data = make_fixture(tmp_path)
    _flip_member_byte(data / TRAIN, CSV)
    with pytest.raises(DataError, match=f"cannot read GTSRB label file {CSV}"):
        _load(data, tmp_path)


def test_non_integer_label_names_file_and_line(tmp_path):
    data = make_fixture(tmp_path, zipped=False)
    p = data / CSV
    lines = p.read_text().splitlines(keepends=True)
    lines[3] = lines[3].rsplit(";", 1)[0] + ";x\n"
    p.write_text("".join(lines))
    with pytest.raises(DataError, match=f"{CSV} line 4: not a GTSRB label row .*'x'"):
        _load(data, tmp_path)


def test_cli_on_a_truncated_archive(tmp_path):
    data = make_fixture(tmp_path)
    z = data / TRAIN
    z.write_bytes(z.read_bytes()[:100])
    p = run_cli("benchmark.run", "--model", "signnet-gtsrb", "--dataset", "gtsrb",
                "--data-dir", data, "--split", "verification", "--out", tmp_path / "run",
                "--on-bad-image", "skip", env={"EDGETPU_BENCH_CACHE": str(tmp_path / "c")})
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    err = [ln for ln in p.stderr.splitlines() if "error" in ln]
    assert len(err) == 1 and TRAIN in err[0]
