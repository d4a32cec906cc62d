"""benchmark.compile --inspect / inspect_compiled on the real compiled models of
../shared/edgetpu/pairs."""

import json

import pytest

from benchmark.compile.inspect import caching_groups, flex_map, inspect_compiled
from benchmark.errors import DataError
from conftest import ROOT, SHARED, run_cli

PAIRS = SHARED / "edgetpu" / "pairs"
ONLY = PAIRS / "compiled_only"
needs_pairs = pytest.mark.skipif(not PAIRS.is_dir(), reason="../shared/edgetpu/pairs not present")
INT8 = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"

#: file -> (custom ops, CPU ops by type, ops on the TPU from the twin or None, segment).
#: The CPU ops are read off the compiled files by hand (pairs/README.md gives the same splits).
EXPECTED = {
    "mobilenet_v1_0.25_128_quant_edgetpu.tflite": (1, {}, 31, None),
    "split_concat_edgetpu.tflite": (1, {}, 3, None),
    "keras_lstm_mnist_ptq_edgetpu.tflite": (1, {}, 6, None),
    "mnist4_log23_edgetpu.tflite": (1, {"QUANTIZE": 1, "DEQUANTIZE": 1}, 8, None),
    "ssd_v2_log04_edgetpu.tflite": (1, {"CUSTOM:TFLite_Detection_PostProcess": 1}, 114, None),
    "posenet_mobilenet_v1_075_353_481_16_quant_decoder_edgetpu.tflite":
        (1, {"CUSTOM:PosenetDecoderOp": 1}, 37, None),
    "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite":
        (1, {"RESIZE_BILINEAR": 3, "QUANTIZE": 1, "CONCATENATION": 1, "CONV_2D": 2,
             "ARG_MAX": 1}, 64, None),
    "compiled_only/mobilenet_v1_0.25_128_quant_cocompiled_with_mobilenet_v1_0.5_160_quant"
    "_edgetpu.tflite": (1, {}, None, None),
    "compiled_only/mobilenet_v1_0.5_160_quant_cocompiled_with_mobilenet_v1_0.25_128_quant"
    "_edgetpu.tflite": (1, {}, None, None),
    "compiled_only/ssd_mobilenet_v1_coco_quant_postprocess_segment_0_of_2_edgetpu.tflite":
        (1, {}, None, (0, 2)),
    "compiled_only/ssd_mobilenet_v1_coco_quant_postprocess_segment_1_of_2_edgetpu.tflite":
        (1, {"DEQUANTIZE": 2, "CUSTOM:TFLite_Detection_PostProcess": 1}, None, (1, 2)),
}


@needs_pairs
def test_every_shared_compiled_file_is_listed():
    found = {str(p.relative_to(PAIRS)) for p in PAIRS.rglob("*_edgetpu.tflite")}
    assert found == set(EXPECTED)


@needs_pairs
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_inspect_every_shared_compiled_file(name):
    custom, cpu, tpu, seg = EXPECTED[name]
    info = inspect_compiled(PAIRS / name)
    assert (info.custom_ops, info.segments, info.cpu_ops, info.ops_on_tpu,
            info.pipeline_segment) == (custom, custom, cpu, tpu, seg)
    assert info.is_compiled and len(info.packages) == 1
    pkg = info.packages[0]
    assert {e.type for e in pkg.executables} == {"PARAMETER_CACHING", "EXECUTION_ONLY"}
    assert pkg.min_runtime_version in (12, 13)
    # the cached parameters are the bulk of the weights: more than half of the file
    assert 0 < info.on_chip_parameter_bytes <= (PAIRS / name).stat().st_size
    run = [e for e in pkg.executables if e.type == "EXECUTION_ONLY"][0]
    assert run.inputs and run.outputs and all(x["size_bytes"] > 0 for x in run.inputs)


@needs_pairs
def test_known_parameter_sizes_and_caching_groups():
    lstm = inspect_compiled(PAIRS / "keras_lstm_mnist_ptq_edgetpu.tflite")
    assert (lstm.on_chip_parameter_bytes, lstm.off_chip_parameter_bytes) == (43968, 576)
    files = [inspect_compiled(p) for p in sorted(ONLY.glob("*_edgetpu.tflite"))]
    alone = inspect_compiled(PAIRS / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    groups = caching_groups(files + [alone])
    # the two co-compiled MobileNets share one token, the two SSD segments another;
    # the same MobileNet compiled alone has a token of its own
    assert sorted(len(v) for v in groups.values()) == [2, 2]
    assert all(alone.path not in v for v in groups.values())
    co = [f for f in files if f.cocompiled_with]
    assert {f.cocompiled_with for f in co} == {"mobilenet_v1_0.5_160_quant",
                                               "mobilenet_v1_0.25_128_quant"}
    assert co[0].caching_tokens == co[1].caching_tokens
    # same model, same parameters, cached either way
    assert co[[f.cocompiled_with for f in co].index("mobilenet_v1_0.5_160_quant")] \
        .on_chip_parameter_bytes == alone.on_chip_parameter_bytes


def test_uncompiled_model_has_no_custom_op():
    info = inspect_compiled(INT8)
    assert not info.is_compiled and info.segments == 0 and info.packages == []
    assert sum(info.cpu_ops.values()) == 14 and info.ops_on_tpu == 0


def test_renamed_cpu_model_is_reported_as_not_compiled(tmp_path):
    fake = tmp_path / "signnet_int8_edgetpu.tflite"
    fake.write_bytes(INT8.read_bytes())
    r = run_cli("benchmark.compile", "--inspect", fake)
    assert r.returncode == 1, r.stderr
    assert "not compiled for the Edge TPU (no edgetpu-custom-op)" in r.stdout


@needs_pairs
def test_corrupt_package_is_one_data_error(tmp_path):
    src = (PAIRS / "split_concat_edgetpu.tflite").read_bytes()
    at = src.index(b"DWN1")
    bad = bytearray(src)
    bad[at - 4:at] = b"\xff\xff\xff\x7f"   # the package's root offset now points far away
    path = tmp_path / "x_edgetpu.tflite"
    path.write_bytes(bytes(bad))
    with pytest.raises(DataError, match=f"^{path}: malformed model: "):
        inspect_compiled(path)
    r = run_cli("benchmark.compile", "--inspect", path)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "malformed model" in r.stderr


def test_flex_map_rejects_garbage():
    from benchmark.tflite_graph import Malformed
    for junk in (b"", b"\x01\x02", b"\xff" * 16 + b"\x24\x01", bytes(range(40))):
        with pytest.raises(Malformed):
            flex_map(junk)


@needs_pairs
def test_cli_json_and_table():
    files = [PAIRS / "mnist4_log23_edgetpu.tflite", ONLY / next(
        n for n in EXPECTED if "segment_1" in n).split("/")[1]]
    r = run_cli("benchmark.compile", "--inspect", *files, "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    m = rec["models"][0]
    assert (m["segments"], m["ops_on_tpu"], m["ops_on_cpu"], m["cpu_ops"]) == \
        (1, 8, 2, {"QUANTIZE": 1, "DEQUANTIZE": 1})
    assert rec["models"][1]["pipeline_segment"] == {"index": 1, "of": 2}
    t = run_cli("benchmark.compile", "--inspect", files[0])
    assert "1 Edge TPU segment(s) (edgetpu-custom-op), 8 ops on the Edge TPU" in t.stdout
    assert "on-chip (cached) parameters: 1656128 B" in t.stdout


@needs_pairs
def test_fuzzed_compiled_files_are_a_data_error_or_a_valid_reading(tmp_path):
    """Seeded bit flips and truncations of a real compiled model (most land in the DWN1
    package): inspect_compiled either reads it or raises one DataError line naming it."""
    import random
    src = (PAIRS / "split_concat_edgetpu.tflite").read_bytes()
    rng = random.Random(13)
    path = tmp_path / "f_edgetpu.tflite"
    outcomes = {"read": 0, "refused": 0}
    for i in range(80):
        b = bytearray(src)
        if i % 3 == 0:
            b = b[:rng.randrange(8, len(b))]
        else:
            for _ in range(rng.randint(1, 6)):
                p = rng.randrange(len(b))
                b[p] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(b))
        try:
            info = inspect_compiled(path)
        except DataError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
            outcomes["refused"] += 1
            continue
        outcomes["read"] += 1
        assert info.segments in (0, 1) and all(p.executables for p in info.packages)
    assert outcomes["refused"] >= 20 and outcomes["read"] >= 10, outcomes


@needs_pairs
def test_uncompiled_pair_models_read_as_not_compiled():
    from benchmark.tflite_graph import read_graph
    for src in sorted(PAIRS.glob("*.tflite")):
        if src.stem.endswith("_edgetpu"):
            continue
        info = inspect_compiled(src)
        assert not info.is_compiled and info.segments == 0, src.name
        assert len(info.cpu_op_list) == len(read_graph(src).operators)
