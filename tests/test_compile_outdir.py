"""benchmark.compile output folders: never the model's own folder by default, no overwrites."""

import json
import shutil

import pytest

from benchmark.compile.__main__ import main, output_dirs
from conftest import ROOT, run_cli

SHIPPED = ROOT / "models" / "signnet" / "verification"
INT8, FLOAT = SHIPPED / "signnet_int8.tflite", SHIPPED / "signnet_float.tflite"


def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def _listing(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


def test_default_out_dir_is_under_runs_not_the_models_folder(tmp_path, monkeypatch, capsys):
    model = _copy(INT8, tmp_path / "models" / "signnet" / "full" / "signnet_int8.tflite")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = _listing(model.parent)
    assert main([str(model), "--analyze-only"]) == 0
    assert _listing(model.parent) == before           # nothing written beside the model
    records = list((work / "runs").glob("compile-*/signnet_int8_compile.json"))
    assert len(records) == 1
    assert json.loads(records[0].read_text())["analyzer"]["ops_on_tpu"] == 14
    assert f"records written to runs/{records[0].parent.name}/" in capsys.readouterr().err
    assert main([str(model), "--analyze-only"]) == 0   # a second run gets its own folder
    assert len(list((work / "runs").glob("compile-*/signnet_int8_compile.json"))) == 2


def test_help_documents_the_default_out_dir():
    r = run_cli("benchmark.compile", "--help")
    assert r.returncode == 0
    assert "runs/compile-<UTC timestamp>/" in " ".join(r.stdout.split())


def test_same_stem_models_get_their_own_folders(tmp_path):
    a = _copy(INT8, tmp_path / "a" / "x.tflite")
    b = _copy(FLOAT, tmp_path / "b" / "x.tflite")
    out = tmp_path / "out"
    assert main([str(a), str(b), "--out-dir", str(out), "--analyze-only"]) == 1  # float fails
    ra = json.loads((out / "a" / "x_compile.json").read_text())
    rb = json.loads((out / "b" / "x_compile.json").read_text())
    assert ra["model"] == str(a) and ra["analyzer"]["error"] is None
    assert rb["model"] == str(b) and rb["analyzer"]["error"]["kind"] == "not_quantized"
    assert not (out / "x_compile.json").exists()


def test_same_stem_in_same_named_folders_uses_more_folders(tmp_path):
    a = _copy(INT8, tmp_path / "p" / "a" / "x.tflite")
    b = _copy(INT8, tmp_path / "q" / "a" / "x.tflite")
    c = _copy(INT8, tmp_path / "p" / "a" / "y.tflite")
    out = tmp_path / "out"
    assert main([str(a), str(b), str(c), "-o", str(out), "--analyze-only", "--json"]) == 0
    assert (out / "p" / "a" / "x_compile.json").is_file()
    assert (out / "q" / "a" / "x_compile.json").is_file()
    assert (out / "y_compile.json").is_file()       # a unique stem stays at the top


def test_the_same_file_twice_is_compiled_once(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(INT8), str(INT8), "-o", str(out), "--analyze-only", "--json"]) == 0
    assert capsys.readouterr().out.count('"model":') == 1
    assert _listing(out) == [out.joinpath("signnet_int8_compile.json").relative_to(out)]


def test_output_dirs_by_hand(tmp_path):
    d = output_dirs([tmp_path / "x.tflite", tmp_path / "sub" / "x.tflite"], tmp_path / "o")
    assert list(d.values()) == [tmp_path / "o" / tmp_path.name, tmp_path / "o" / "sub"]


@pytest.mark.parametrize("args, message", [
    (["-n", "0"], "--num-segments must be at least 1, got 0"),
    (["-t", "-5"], "--timeout-sec must be at least 1, got -5"),
    (["--parse-log", "x.log"], "not both")])
def test_bad_options_are_usage_errors_exit_2(args, message):
    r = run_cli("benchmark.compile", INT8, *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_out_dir_that_is_a_file_is_a_usage_error(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    r = run_cli("benchmark.compile", INT8, "--analyze-only", "-o", f)
    assert r.returncode == 2 and f"--out-dir {f} is a file, not a folder" in r.stderr
