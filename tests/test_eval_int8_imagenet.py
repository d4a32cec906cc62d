"""tools/eval_int8_imagenet.py: an int8-only ImageNet .tflite with a background class, by index."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, SHARED

TOOL = ROOT / "tools" / "eval_int8_imagenet.py"
CORAL = SHARED / "edgetpu" / "pairs" / "mobilenet_v1_0.25_128_quant.tflite"
SAMPLE = SHARED / "data" / "imagenet-sample"
SIGNNET = ROOT / "models" / "signnet" / "verification"


def tool(*args, cwd=ROOT):
    import subprocess
    import sys
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.mark.skipif(not (CORAL.is_file() and SAMPLE.is_dir()),
                    reason="../shared/edgetpu/pairs or ../shared/data/imagenet-sample not present")
def test_coral_mobilenet_on_imagenet_sample(tmp_path):
    out = tmp_path / "run"
    r = tool("--model", CORAL, "--data-dir", SAMPLE, "--background", "0", "--out", out,
             "--cache-dir", tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    rec = json.loads((out / "results.json").read_text())
    m = rec["variants"]["int8"]
    assert (rec["n_eval"], rec["image_size"], rec["class_offset"]) == (400, 128, 1)
    # TensorFlow publishes 39.5-39.9 % top-1; the central 95 % of Binomial(400, 0.395) is
    # 139..177 correct. A class map off by one scores ~0.
    assert 139 <= m["n_correct"] <= 180
    assert m["accuracy_interval"]["low"] < m["accuracy"] < m["accuracy_interval"]["high"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "split,variant,metric,value"
    assert f"verification,int8,n_correct,{m['n_correct']}" in rows
    # without the offset the same model is refused, not mis-scored
    r = tool("--model", CORAL, "--data-dir", SAMPLE, "--background", "none", "--out",
             tmp_path / "x", "--cache-dir", tmp_path / "cache")
    assert r.returncode == 3
    assert r.stderr.strip().endswith("has 1001 outputs; --background none needs 1000")
    assert not (tmp_path / "x").exists()


def test_float_model_and_wrong_class_count_are_one_line(tmp_path):
    r = tool("--model", SIGNNET / "signnet_float.tflite", "--data-dir", tmp_path,
             "--background", "0", "--out", tmp_path / "a")
    assert r.returncode == 3
    assert "input is float32" in r.stderr and "int8-only" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = tool("--model", SIGNNET / "signnet_int8.tflite", "--data-dir", tmp_path,
             "--background", "none", "--out", tmp_path / "b")
    assert r.returncode == 3
    assert "has 30 outputs; --background none needs 1000" in r.stderr
    r = tool("--model", tmp_path / "nope.tflite", "--data-dir", tmp_path, "--background", "0",
             "--out", tmp_path / "c")
    assert (r.returncode, r.stderr.strip()) == (3, "eval_int8_imagenet.py: error: model file "
                                                   f"not found: {tmp_path / 'nope.tflite'}")


def test_help_imports_no_interpreter_or_tensorflow():
    code = ("import runpy, sys\nsys.argv = ['eval_int8_imagenet.py', '--help']\ntry:\n"
            f"    runpy.run_path({str(TOOL)!r}, run_name='__main__')\nexcept SystemExit:\n"
            "    pass\nprint('heavy:', sorted(m for m in ('tensorflow', 'keras', 'torch', "
            "'ai_edge_litert') if m in sys.modules))")
    r = tool_python(code)
    assert r.returncode == 0, r.stderr
    assert "--background" in r.stdout and "heavy: []" in r.stdout


def tool_python(code):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
