"""Read ``.tflite`` flatbuffers: operators, tensors, quantization parameters.

This is the one place in the package that parses the TFLite flatbuffer. It uses
the schema module that ships with the interpreter packages (``ai_edge_litert``
or ``tensorflow.lite``), so it needs no TensorFlow when LiteRT is installed.
"""

from __future__ import annotations

import importlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.errors import BackendUnavailable, DataError

_SCHEMA_MODULES = (
    "ai_edge_litert.schema_py_generated",
    "tflite_runtime.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
)


def load_schema():
    """Return the first importable TFLite flatbuffer schema module.

    Raises
    ------
    BackendUnavailable
        When none of the interpreter packages that carry the schema is installed.
    """
    for name in _SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BackendUnavailable(
        "no TFLite flatbuffer schema found: install ai-edge-litert "
        "(pip install ai-edge-litert) or tensorflow")


def _model_bytes(model: str | Path | bytes) -> tuple[bytes, str | None]:
    """The bytes of a ``.tflite`` (path or bytes) and its file name (None for bytes).

    Raises
    ------
    DataError
        When the file cannot be read or is not a TFLite flatbuffer (naming the file).
    """
    name = None
    if isinstance(model, (str, Path)):
        name = str(model)
        try:
            buf = Path(model).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read {name}: {e.strerror or e}") from None
    else:
        buf = bytes(model)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise DataError(f"{name + ': ' if name else ''}not a TFLite flatbuffer "
                        "(missing 'TFL3' identifier)")
    return buf, name


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items()
            if not k.startswith("_") and isinstance(v, int)}


@dataclass
class TensorInfo:
    """One tensor of a subgraph."""

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    scale: np.ndarray = field(repr=False)
    zero_point: np.ndarray = field(repr=False)
    quantized_dimension: int = 0
    buffer_size: int = 0

    @property
    def is_constant(self) -> bool:
        return self.buffer_size > 0

    @property
    def is_dynamic(self) -> bool:
        return self.shape_signature is not None and any(
            d < 0 for d in self.shape_signature)


@dataclass
class OperatorInfo:
    """One operator of a subgraph, in execution order."""

    index: int
    name: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    custom_code: str | None = None
    fused_activation: str | None = None


@dataclass
class GraphInfo:
    """The main subgraph of a ``.tflite`` model."""

    operators: list[OperatorInfo]
    tensors: list[TensorInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    num_subgraphs: int
    description: str = ""

    @property
    def op_names(self) -> list[str]:
        return [op.name for op in self.operators]

    def input_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.outputs]

    def parameter_bytes(self) -> int:
        """Bytes of constant tensor data (weights, biases)."""
        return sum(t.buffer_size for t in self.tensors)


def _operator_codes(m, schema) -> list[tuple[str, int, str | None]]:
    """(builtin name, version, custom code) of every entry of the model's operator-code table."""
    op_names = _enum_names(schema.BuiltinOperator)
    codes = []
    for i in range(m.OperatorCodesLength()):
        c = m.OperatorCodes(i)
        code = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
        custom = c.CustomCode()
        codes.append((op_names.get(code, f"UNKNOWN_{code}"), c.Version(),
                      custom.decode() if custom else None))
    return codes


def _tensor_info(m, t, index: int, type_names: dict[int, str]) -> TensorInfo:
    """One flatbuffer tensor ``t`` of model ``m`` as a :class:`TensorInfo`."""
    q = t.Quantization()
    scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else np.zeros(0)
    zp = (q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength()
          else np.zeros(0, np.int64))
    sig = (tuple(int(d) for d in t.ShapeSignatureAsNumpy())
           if t.ShapeSignatureLength() else None)
    b = m.Buffers(t.Buffer()) if t.Buffer() < m.BuffersLength() else None
    size = 0
    if b is not None:
        size = b.DataLength() or int(b.Size())
    return TensorInfo(
        index=index, name=(t.Name() or b"").decode(errors="replace"),
        dtype=type_names.get(t.Type(), str(t.Type())),
        shape=tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else (),
        shape_signature=sig, scale=np.asarray(scale, np.float64),
        zero_point=np.asarray(zp, np.int64),
        quantized_dimension=q.QuantizedDimension() if q is not None else 0,
        buffer_size=size)


def _operator_info(schema, o, index: int, codes, act_names: dict[int, str]) -> OperatorInfo:
    """One flatbuffer operator ``o`` as an :class:`OperatorInfo`."""
    name, version, custom = codes[o.OpcodeIndex()]
    return OperatorInfo(
        index=index, name=name, version=version,
        inputs=tuple(int(x) for x in o.InputsAsNumpy()) if o.InputsLength() else (),
        outputs=tuple(int(x) for x in o.OutputsAsNumpy()) if o.OutputsLength() else (),
        custom_code=custom,
        fused_activation=_fused_activation(schema, o, act_names))


def _parse_graph(buf: bytes, schema) -> GraphInfo:
    m = schema.Model.GetRootAsModel(buf, 0)
    type_names = _enum_names(schema.TensorType)
    act_names = _enum_names(schema.ActivationFunctionType)
    codes = _operator_codes(m, schema)
    g = m.Subgraphs(0)
    tensors = [_tensor_info(m, g.Tensors(i), i, type_names) for i in range(g.TensorsLength())]
    ops = [_operator_info(schema, g.Operators(i), i, codes, act_names)
           for i in range(g.OperatorsLength())]
    desc = m.Description()
    return GraphInfo(
        operators=ops, tensors=tensors,
        inputs=tuple(int(x) for x in g.InputsAsNumpy()),
        outputs=tuple(int(x) for x in g.OutputsAsNumpy()),
        num_subgraphs=m.SubgraphsLength(),
        description=desc.decode(errors="replace") if desc else "")


def read_graph(model: str | Path | bytes) -> GraphInfo:
    """Parse a ``.tflite`` file (path or bytes) into a :class:`GraphInfo`.

    Raises
    ------
    DataError
        If the file cannot be read, or its bytes are not a TFLite flatbuffer or
        are truncated/corrupt (the message names the file).
    BackendUnavailable
        When no package carrying the flatbuffer schema is installed.
    """
    buf, name = _model_bytes(model)
    schema = load_schema()
    try:
        return _parse_graph(buf, schema)
    except (struct.error, IndexError) as e:  # offsets pointing outside the buffer
        raise DataError(f"{name + ': ' if name else ''}corrupt TFLite flatbuffer "
                        f"({type(e).__name__}: {e})") from None


_OPTIONS_WITH_ACTIVATION = (
    "Conv2DOptions", "DepthwiseConv2DOptions", "Pool2DOptions",
    "FullyConnectedOptions", "AddOptions", "MulOptions", "SubOptions",
    "ConcatenationOptions",
)


def _fused_activation(schema, op, act_names) -> str | None:
    """Name of the op's fused activation, or None when it has none."""
    opt_type = op.BuiltinOptionsType()
    if not opt_type:
        return None
    type_name = _enum_names(schema.BuiltinOptions).get(opt_type)
    if type_name not in _OPTIONS_WITH_ACTIVATION:
        return None
    table = op.BuiltinOptions()
    opts = getattr(schema, type_name)()
    opts.Init(table.Bytes, table.Pos)
    act = act_names.get(opts.FusedActivationFunction(), "NONE")
    return None if act == "NONE" else act


# ------------------------------------------------------------------ editing

def unpack_model(model: str | Path | bytes):
    """The flatbuffer's mutable object tree (``schema.ModelT``) and the schema module."""
    buf, _ = _model_bytes(model)
    schema = load_schema()
    return schema.ModelT.InitFromPackedBuf(buf, 0), schema


def pack_model(model_t) -> bytes:
    """Serialize a ``ModelT`` back to ``.tflite`` bytes."""
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_name(model_t, schema, op) -> str:
    """Builtin name of an operator in a ``ModelT``."""
    code = model_t.operatorCodes[op.opcodeIndex]
    return _enum_names(schema.BuiltinOperator).get(
        max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")
