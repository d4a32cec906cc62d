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
