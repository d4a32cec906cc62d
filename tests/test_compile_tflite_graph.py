"""benchmark.tflite_graph: unreadable or non-TFLite input is a DataError naming the file."""

import pytest

from benchmark.errors import BackendUnavailable, DataError
from benchmark.tflite_graph import load_schema, read_graph, unpack_model
from conftest import ROOT

INT8 = ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite"


@pytest.mark.parametrize("reader", [read_graph, unpack_model])
def test_not_a_tflite_file_names_the_file(tmp_path, reader):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"PK\x03\x04 this is a zip, not a flatbuffer")
    with pytest.raises(DataError, match=f"^{bad}: not a TFLite flatbuffer"):
        reader(bad)
    with pytest.raises(DataError, match="^not a TFLite flatbuffer"):
        reader(b"tiny")


def test_missing_or_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=f"cannot read {tmp_path / 'gone.tflite'}: No such file"):
        read_graph(tmp_path / "gone.tflite")
    with pytest.raises(DataError, match=f"cannot read {tmp_path}: Is a directory"):
        read_graph(tmp_path)


def test_truncated_flatbuffer_is_a_data_error(tmp_path):
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(INT8.read_bytes()[:64])
    with pytest.raises(DataError, match=f"^{cut}: malformed model: "):
        read_graph(cut)


def test_no_schema_module_is_backend_unavailable(monkeypatch):
    from benchmark import tflite_graph
    monkeypatch.setattr(tflite_graph, "_SCHEMA_MODULES", ("no_such_module_xyz",))
    with pytest.raises(BackendUnavailable, match="no TFLite flatbuffer schema found"):
        load_schema()


def test_shipped_model_still_reads():
    g = read_graph(INT8)
    assert g.op_names[0] == "QUANTIZE" and g.num_subgraphs == 1
    assert read_graph(INT8.read_bytes()).op_names == g.op_names


def test_graph_pickles_with_its_constants():
    """Worker processes get GraphInfo by pickle: the views of the file's bytes become bytes."""
    import pickle
    g = read_graph(INT8)
    h = pickle.loads(pickle.dumps(g))
    assert h.op_names == g.op_names and [t.shape for t in h.tensors] == [t.shape for t in g.tensors]
    w = next(t for t in g.tensors if t.is_constant)
    assert (h.tensors[w.index].values() == w.values()).all()


def _variants(src: bytes, n: int, seed: int):
    """``n`` seeded corruptions of ``src``: truncations, bit flips, overwritten runs, garbage."""
    import random
    rng = random.Random(seed)
    for i in range(n):
        b = bytearray(src)
        kind = i % 4
        if kind == 0:
            b = b[:rng.randrange(8, len(b))]
        elif kind == 1:
            for _ in range(rng.randint(1, 8)):
                p = rng.randrange(len(b))
                b[p] ^= 1 << rng.randrange(8)
        elif kind == 2:   # a run of random bytes in the first (structural) kilobytes
            p = rng.randrange(min(len(b), 4096))
            b[p:p + 16] = bytes(rng.randrange(256) for _ in range(16))
        else:             # garbage behind a valid header
            b = b[:8] + bytes(rng.randrange(256) for _ in range(rng.randrange(8, 2048)))
        yield kind, bytes(b)


def _interpreter_accepts(model: bytes) -> bool:
    from ai_edge_litert.interpreter import Interpreter
    try:
        Interpreter(model_content=model).allocate_tensors()
    except (RuntimeError, ValueError):
        return False
    return True


def test_fuzzed_models_are_one_data_error_or_a_model_the_interpreter_runs(tmp_path):
    """Seeded fuzz (#16.1): 160 truncated/bit-flipped/garbage variants of the shipped int8
    model. Each is either refused with one DataError line naming the file, or read - and
    then the LiteRT interpreter accepts it too (never an analysis of a file it rejects)."""
    import time

    from benchmark.compile.analyzer import analyze
    pytest.importorskip("ai_edge_litert.interpreter")
    start, kinds = time.monotonic(), {"refused": 0, "read": 0}
    path = tmp_path / "fuzz.tflite"
    for i, (kind, data) in enumerate(_variants(INT8.read_bytes(), 160, seed=16)):
        path.write_bytes(data)
        try:
            r = analyze(path)
        except DataError as e:
            msg = str(e)
            assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
            kinds["refused"] += 1
            continue
        kinds["read"] += 1
        assert _interpreter_accepts(data), f"variant {i} (kind {kind}) analyzed: {r['ops_on_tpu']}"
    assert kinds["refused"] >= 60 and kinds["read"] >= 20, kinds
    assert time.monotonic() - start < 20


def test_fuzzed_model_on_the_command_line_is_one_line_exit_3(tmp_path):
    from conftest import run_cli
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(INT8.read_bytes()[:3000])
    r = run_cli("benchmark.compile", "--analyze-only", "-o", tmp_path / "out", bad)
    assert r.returncode == 3 and "Traceback" not in r.stderr
    assert r.stderr.strip() .endswith("") and r.stderr.strip().count("\n") == 0
    assert f"{bad}: malformed model: " in r.stderr
    assert "ops on the Edge TPU" not in r.stdout


def test_option_slots_match_the_schema_module():
    """The reader's hand-written schema slots give what the generated schema module reads."""
    from benchmark.tflite_graph import OPTION_FIELDS, load_schema
    schema = load_schema()
    buf = INT8.read_bytes()
    m = schema.Model.GetRootAsModel(buf, 0)
    sg = m.Subgraphs(0)
    g = read_graph(INT8)
    for k, op in enumerate(g.operators):
        o = sg.Operators(k)
        assert tuple(o.InputsAsNumpy()) == op.inputs
        if op.options_type in OPTION_FIELDS:
            cls = getattr(schema, op.options_type)()
            t = o.BuiltinOptions()
            cls.Init(t.Bytes, t.Pos)
            for fname, _, _, _ in OPTION_FIELDS[op.options_type]:
                attr = {"fused_activation": "FusedActivationFunction", "dilation_w":
                        "DilationWFactor", "dilation_h": "DilationHFactor", "filter_w":
                        "FilterWidth", "filter_h": "FilterHeight"}.get(
                    fname, "".join(p.capitalize() for p in fname.split("_")))
                want = getattr(cls, attr)()
                got = op.options[fname]
                if fname == "fused_activation":
                    got = getattr(schema.ActivationFunctionType, got)
                assert got == want, (op.name, fname)
    for t, i in zip(g.tensors, range(sg.TensorsLength())):
        st = sg.Tensors(i)
        assert t.shape == tuple(st.ShapeAsNumpy()) and t.name == st.Name().decode()
