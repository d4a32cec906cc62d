"""Output locations are checked before any work: a file, a read-only folder, a full disk."""

import os
import shutil
import subprocess
import sys
from collections import namedtuple

import pytest

from benchmark import preflight
from benchmark.errors import UsageError


def test_a_file_where_a_folder_should_be(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(UsageError, match=r"--out .*/f: is a file, not a folder"):
        preflight.check_output_dir(tmp_path / "f", option="--out")
    with pytest.raises(UsageError, match=r"--out .*/f/run: .*/f is a file, not a folder"):
        preflight.check_output_dir(tmp_path / "f" / "run", option="--out")
    assert (tmp_path / "f").read_text() == "mine"


def test_missing_folders_are_fine_when_the_parent_is_writable(tmp_path):
    preflight.check_output_dir(tmp_path / "a" / "b", option="--out")
    assert not (tmp_path / "a").exists()  # nothing created


def test_full_disk_is_refused_with_the_numbers(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    with pytest.raises(UsageError, match=r"needs about 16.1 MiB, only 1000 B free"):
        preflight.check_output_dir(tmp_path, option="--out", need_bytes=100_000)


def without_root_powers(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file permissions apply: as root, without CAP_DAC_OVERRIDE."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and util-linux's setpriv is missing: cannot drop "
                    "CAP_DAC_OVERRIDE to test permissions")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", *cmd]


def test_read_only_folder_with_permissions_enforced(tmp_path):
    """Root ignores permissions, so the check runs with root's override dropped."""
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    code = ("from benchmark import preflight\n"
            f"preflight.check_output_dir({str(ro / 'run')!r}, option='--out')\n")
    p = subprocess.run(without_root_powers([sys.executable, "-c", code]), capture_output=True,
                       text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert p.returncode != 0
    assert "cannot write in" in p.stderr and str(ro) in p.stderr
    p = subprocess.run(without_root_powers(["touch", str(ro / "x")]), capture_output=True)
    assert p.returncode != 0  # the folder really is read-only for that process


def test_output_file_checks_its_folder(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(UsageError, match="is a folder, not a file"):
        preflight.check_output_file(tmp_path / "d", option="--json")
    preflight.check_output_file(tmp_path / "x.json", option="--json")


def test_report_outputs_name_the_default_out_and_the_figures(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(UsageError, match=r"^--figures .*/f: is a file, not a folder$"):
        preflight.check_report_outputs(None, tmp_path / "f", [tmp_path / "run"])
    with pytest.raises(UsageError, match=r"^--out \(default RUN/report.html\) .*/f/report.html: "):
        preflight.check_report_outputs(None, None, [tmp_path / "f"])
    preflight.check_report_outputs(tmp_path / "r.html", tmp_path / "figs", [tmp_path / "a"])


def test_split_room_counts_the_fixed_files_and_the_arrays(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    need = preflight.RUN_FIXED_BYTES + preflight.estimate_run_bytes(
        n_images=1000, num_classes=10, n_variants=2)
    free = preflight.MARGIN_BYTES + need
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 0, free))
    preflight.check_split_room(tmp_path, n_images=1000, num_classes=10, n_variants=2)
    with pytest.raises(UsageError, match="needs about"):
        preflight.check_split_room(tmp_path, n_images=1001, num_classes=10, n_variants=2)


def test_out_among_the_inputs(tmp_path):
    from types import SimpleNamespace
    data, art = tmp_path / "data", tmp_path / "models" / "m" / "full"
    data.mkdir()
    art.mkdir(parents=True)
    sp = SimpleNamespace(split="full", data_dir=str(data), artifacts=art)
    cache = tmp_path / "cache"
    for out, words in [(data, "is the data folder of split full"),
                       (data / "a" / "run", "inside the data folder of split full"),
                       (art / "run", "inside the model folder of split full"),
                       (cache / "r", "inside the dataset cache")]:
        with pytest.raises(UsageError, match=words):
            preflight.check_out_outside_inputs(out, [sp], cache, registered=True)
    # a model given by path: its folder is the user's, not an input folder of the run
    preflight.check_out_outside_inputs(art / "run", [sp], cache, registered=False)
    preflight.check_out_outside_inputs(tmp_path / "runs" / "x", [sp], cache, registered=True)
    gtsrb = SimpleNamespace(split="full", data_dir=str(data), artifacts=art, dataset="gtsrb")
    preflight.check_out_outside_inputs(data / "run", [gtsrb], cache, registered=True)  # archives
    with pytest.raises(UsageError, match="is the data folder"):
        preflight.check_out_outside_inputs(data, [gtsrb], cache, registered=True)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n")
    preflight.check_out_outside_inputs(tmp_path / "r", [SimpleNamespace(
        split="full", data_dir=str(manifest), artifacts=art)], cache, registered=True)
