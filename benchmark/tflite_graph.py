"""Read ``.tflite`` flatbuffers: operators, tensors, quantization parameters.

This is the one place in the package that parses the TFLite flatbuffer. Reading
goes through :class:`FlatBuffer`, a small flatbuffer reader that bounds-checks
every offset, vtable and vector before it touches the bytes, so a truncated,
bit-flipped or garbage file is one :class:`~benchmark.errors.DataError`
("malformed model: ...") naming the file, never a ``struct.error`` or an
``IndexError``; :func:`read_graph` then checks what the TFLite interpreter
checks when it builds a model (schema version, opcode and tensor indices,
constant buffer sizes, quantization parameter shapes), so a file the
interpreter would refuse is refused here too. The enum names (op, tensor
type, options) come from the schema module that ships with the interpreter
packages (``ai_edge_litert`` or ``tensorflow.lite``), so no TensorFlow is
needed when LiteRT is installed; editing (:func:`unpack_model`) uses that
module's object API after the same checks.
"""

from __future__ import annotations

import importlib
import math
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

#: The schema version every model the TFLite interpreter accepts declares.
SCHEMA_VERSION = 3


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


# ------------------------------------------------------------------ checked reader

class Malformed(ValueError):
    """A flatbuffer offset, vtable or vector points outside the buffer (or is nonsense)."""


_SCALARS = {"b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8,
            "f": 4, "d": 8}
_NP = {"b": np.int8, "B": np.uint8, "h": np.int16, "H": np.uint16, "i": np.int32,
       "I": np.uint32, "q": np.int64, "Q": np.uint64, "f": np.float32, "d": np.float64}


class FlatBuffer:
    """Bounds-checked access to a flatbuffer's bytes (little-endian, as the format is).

    Every read checks that it lies inside the buffer and raises
    :class:`Malformed` otherwise; vector lengths are checked against the bytes
    left, so a corrupt length can neither read past the end nor loop for long.
    """

    def __init__(self, data: bytes | memoryview):
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.size = len(data)

    def scalar(self, fmt: str, pos: int):
        n = _SCALARS[fmt]
        if pos < 0 or pos + n > self.size:
            raise Malformed(f"{n}-byte read at offset {pos} outside the {self.size}-byte buffer")
        if pos % n:
            raise Malformed(f"misaligned {n}-byte value at offset {pos}")
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def table(self, pos: int) -> "FlatTable":
        """The table at absolute offset ``pos`` (its vtable checked)."""
        vt = pos - self.scalar("i", pos)
        vt_len, obj_len = self.scalar("H", vt), self.scalar("H", vt + 2)
        if vt_len < 4 or vt_len % 2 or vt + vt_len > self.size or pos + obj_len > self.size \
                or obj_len < 4:
            raise Malformed(f"bad vtable for the table at offset {pos}")
        return FlatTable(self, pos, vt, vt_len, obj_len)

    def indirect(self, pos: int) -> int:
        """The absolute offset a ``uoffset`` stored at ``pos`` points to."""
        return pos + self.scalar("I", pos)

    def vector(self, pos: int, elem_size: int) -> tuple[int, int]:
        """(start, length) of the vector whose uoffset is stored at ``pos``."""
        vec = self.indirect(pos)
        n = self.scalar("I", vec)
        start = vec + 4
        if n * elem_size > self.size - start:
            raise Malformed(f"vector of {n} x {elem_size} bytes at offset {vec} runs past the end")
        return start, n

    def root(self) -> "FlatTable":
        return self.table(self.indirect(0))


class FlatTable:
    """One table of a :class:`FlatBuffer`; fields are addressed by their schema slot number."""

    def __init__(self, fb: FlatBuffer, pos: int, vt: int, vt_len: int, obj_len: int):
        self.fb, self.pos, self._vt, self._vt_len, self._obj_len = fb, pos, vt, vt_len, obj_len

    def _field(self, slot: int) -> int:
        """Absolute offset of field ``slot``, or 0 when the field is absent."""
        entry = 4 + 2 * slot
        if entry + 2 > self._vt_len:
            return 0
        off = self.fb.scalar("H", self._vt + entry)
        if off and off >= self._obj_len:
            raise Malformed(f"field {slot} of the table at offset {self.pos} lies outside it")
        return self.pos + off if off else 0

    def has(self, slot: int) -> bool:
        return bool(self._field(slot))

    def scalar(self, slot: int, fmt: str, default=0):
        p = self._field(slot)
        return self.fb.scalar(fmt, p) if p else default

    def table(self, slot: int) -> "FlatTable | None":
        p = self._field(slot)
        return self.fb.table(self.fb.indirect(p)) if p else None

    def vector(self, slot: int, elem_size: int) -> tuple[int, int]:
        p = self._field(slot)
        return self.fb.vector(p, elem_size) if p else (0, 0)

    def array(self, slot: int, fmt: str) -> np.ndarray:
        """A vector of scalars as a numpy array (a copy; empty when absent)."""
        start, n = self.vector(slot, _SCALARS[fmt])
        if not n:
            return np.zeros(0, _NP[fmt])
        return np.frombuffer(self.fb.data, np.dtype(_NP[fmt]).newbyteorder("<"), n,
                             start).astype(_NP[fmt])

    def raw(self, slot: int) -> memoryview:
        """A ``[ubyte]`` vector (or a string's bytes) as a view of the buffer."""
        start, n = self.vector(slot, 1)
        return memoryview(self.fb.data)[start:start + n]

    def string(self, slot: int) -> str | None:
        """A string field (None when absent); it must end with the NUL byte the format adds."""
        if not self.has(slot):
            return None
        start, n = self.vector(slot, 1)
        if start + n >= self.fb.size or self.fb.data[start + n] != 0:
            raise Malformed(f"string at offset {start} is not NUL-terminated")
        return bytes(self.fb.data[start:start + n]).decode("utf-8", "replace")

    def tables(self, slot: int) -> list["FlatTable"]:
        start, n = self.vector(slot, 4)
        return [self.fb.table(self.fb.indirect(start + 4 * i)) for i in range(n)]


# ------------------------------------------------------------------ the graph

#: Bytes per element of the fixed-size tensor types (the interpreter checks constant
#: buffers against these); INT4 packs two values in a byte.
ITEM_SIZES = {"FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8, "BOOL": 1,
              "INT16": 2, "COMPLEX64": 8, "INT8": 1, "FLOAT64": 8, "COMPLEX128": 16,
              "UINT64": 8, "UINT32": 4, "UINT16": 2, "BFLOAT16": 2}


def _state(obj) -> dict:
    """``__dict__`` with memoryviews (views of the model's bytes) copied out, for pickling."""
    def plain(v):
        if isinstance(v, memoryview):
            return bytes(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {k: plain(v) for k, v in vars(obj).items()}


@dataclass
class TensorInfo:
    """One tensor of a subgraph (``data``: a view of a constant's bytes, or None)."""

    __getstate__ = _state

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    scale: np.ndarray = field(repr=False)
    zero_point: np.ndarray = field(repr=False)
    quantized_dimension: int = 0
    buffer_size: int = 0
    is_variable: bool = False
    data: memoryview | None = field(default=None, repr=False, compare=False)

    @property
    def is_constant(self) -> bool:
        return self.buffer_size > 0

    @property
    def is_dynamic(self) -> bool:
        return self.shape_signature is not None and any(
            d < 0 for d in self.shape_signature)

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    def values(self) -> np.ndarray | None:
        """The constant's values (shaped), or None for activations and unknown types."""
        if self.data is None or self.dtype not in ITEM_SIZES or self.dtype == "FLOAT16":
            return None
        dt = {"BFLOAT16": np.uint16, "COMPLEX64": np.complex64,
              "COMPLEX128": np.complex128}.get(self.dtype, None) or np.dtype(self.dtype.lower())
        return np.frombuffer(self.data, np.dtype(dt).newbyteorder("<")).reshape(self.shape)


@dataclass
class OperatorInfo:
    """One operator of a subgraph, in execution order.

    ``options`` holds the builtin options the analyzer reads (strides,
    dilation, fused activation, masks, ...; see :data:`OPTION_FIELDS`);
    ``custom_options`` the raw bytes of a custom op's options.
    """

    __getstate__ = _state

    index: int
    name: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    custom_code: str | None = None
    fused_activation: str | None = None
    options_type: str | None = None
    options: dict = field(default_factory=dict)
    custom_options: memoryview | None = field(default=None, repr=False, compare=False)


@dataclass
class GraphInfo:
    """The main subgraph of a ``.tflite`` model."""

    __getstate__ = _state

    operators: list[OperatorInfo]
    tensors: list[TensorInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    num_subgraphs: int
    description: str = ""
    metadata: dict[str, memoryview] = field(default_factory=dict, repr=False, compare=False)
    subgraph_name: str = ""

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


#: Builtin options read into :attr:`OperatorInfo.options`: option-table name ->
#: (field, schema slot, struct format, default). Slots follow the TFLite schema
#: (tests/test_compile_tflite_graph.py checks them against the schema module).
_PAD_STRIDES = (("padding", 0, "b", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0))
OPTION_FIELDS = {
    "Conv2DOptions": _PAD_STRIDES + (("fused_activation", 3, "b", 0),
                                     ("dilation_w", 4, "i", 1), ("dilation_h", 5, "i", 1)),
    "DepthwiseConv2DOptions": _PAD_STRIDES + (
        ("depth_multiplier", 3, "i", 0), ("fused_activation", 4, "b", 0),
        ("dilation_w", 5, "i", 1), ("dilation_h", 6, "i", 1)),
    "Pool2DOptions": _PAD_STRIDES + (("filter_w", 3, "i", 0), ("filter_h", 4, "i", 0),
                                     ("fused_activation", 5, "b", 0)),
    "TransposeConvOptions": _PAD_STRIDES + (("fused_activation", 3, "b", 0),),
    "FullyConnectedOptions": (("fused_activation", 0, "b", 0), ("weights_format", 1, "b", 0),
                              ("keep_num_dims", 2, "?", False)),
    "ConcatenationOptions": (("axis", 0, "i", 0), ("fused_activation", 1, "b", 0)),
    "AddOptions": (("fused_activation", 0, "b", 0),),
    "SubOptions": (("fused_activation", 0, "b", 0),),
    "MulOptions": (("fused_activation", 0, "b", 0),),
    "L2NormOptions": (("fused_activation", 0, "b", 0),),
    "ResizeBilinearOptions": (("align_corners", 2, "?", False),
                              ("half_pixel_centers", 3, "?", False)),
    "ResizeNearestNeighborOptions": (("align_corners", 0, "?", False),
                                     ("half_pixel_centers", 1, "?", False)),
    "StridedSliceOptions": (("begin_mask", 0, "i", 0), ("end_mask", 1, "i", 0),
                            ("ellipsis_mask", 2, "i", 0), ("new_axis_mask", 3, "i", 0),
                            ("shrink_axis_mask", 4, "i", 0), ("offset", 5, "?", False)),
    "SoftmaxOptions": (("beta", 0, "f", 0.0),),
    "ReducerOptions": (("keep_dims", 0, "?", False),),
    "SplitOptions": (("num_splits", 0, "i", 0),),
    "PackOptions": (("values_count", 0, "i", 0), ("axis", 1, "i", 0)),
    "UnidirectionalSequenceLSTMOptions": (("fused_activation", 0, "b", 0),
                                          ("time_major", 3, "?", False)),
    "LSTMOptions": (("fused_activation", 0, "b", 0), ("kernel_type", 3, "b", 0)),
}


class _Names:
    """The schema's enum names (op codes, tensor types, option tables, activations)."""

    def __init__(self, schema):
        self.ops = _enum_names(schema.BuiltinOperator)
        self.types = _enum_names(schema.TensorType)
        self.options = _enum_names(schema.BuiltinOptions)
        self.acts = _enum_names(schema.ActivationFunctionType)


def _operator_codes(root: FlatTable, names: _Names) -> list[tuple[str, int, str | None]]:
    """(builtin name, version, custom code) of every entry of the operator-code table."""
    codes = []
    for c in root.tables(1):
        code = max(c.scalar(3, "i", 0), c.scalar(0, "b", 0))
        if code not in names.ops:
            raise Malformed(f"operator code {code} is not a TFLite builtin (the interpreter "
                            "says 'Op builtin_code out of range')")
        codes.append((names.ops[code], c.scalar(2, "i", 1), c.string(1)))
    return codes


def _buffers(fb: FlatBuffer, root: FlatTable) -> list[memoryview | None]:
    """Each buffer's bytes (None when empty); data stored past the flatbuffer is supported."""
    out = []
    for b in root.tables(4):
        data = b.raw(0)
        offset, size = b.scalar(1, "Q", 0), b.scalar(2, "Q", 0)
        if not len(data) and offset > 1:
            if offset + size > fb.size:
                raise Malformed(f"buffer data at {offset}+{size} lies past the end of the file")
            data = memoryview(fb.data)[offset:offset + size]
        out.append(data if len(data) else None)
    return out


#: Zero points the kernels accept: the type's range, and 0 for the symmetric types.
_ZERO_POINT_RANGE = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (0, 0), "INT32": (0, 0)}


def _quantization(t: FlatTable, shape: tuple, dtype: str, label: str):
    """(scale, zero_point, quantized_dimension) of a tensor, checked like the interpreter."""
    q = t.table(4)
    if q is None:
        return np.zeros(0), np.zeros(0, np.int64), 0
    scale = q.array(2, "f").astype(np.float64)
    zp = q.array(3, "q").astype(np.int32).astype(np.int64)   # the interpreter keeps 32 bits
    qdim = q.scalar(6, "i", 0)
    if scale.size and zp.size and scale.size != zp.size:
        raise Malformed(f"{label}: {scale.size} scales but {zp.size} zero points")
    if scale.size > 1 and not (0 <= qdim < len(shape) and shape[qdim] == scale.size):
        raise Malformed(f"{label}: {scale.size} per-channel scales do not match dimension "
                        f"{qdim} of shape {list(shape)}")
    if scale.size and not np.all(np.isfinite(scale) & (scale >= 0)):
        raise Malformed(f"{label}: negative or non-finite quantization scale")
    low, high = _ZERO_POINT_RANGE.get(dtype, (-2**63, 2**63 - 1))
    if scale.size > 1:
        low = high = 0   # per-channel quantization is symmetric
    if zp.size and (zp.min() < low or zp.max() > high):
        bad = int(zp.min() if zp.min() < low else zp.max())
        raise Malformed(f"{label}: {dtype} zero point {bad} outside {low}..{high}")
    return scale, zp, qdim


def _tensor(t: FlatTable, index: int, names: _Names, buffers) -> TensorInfo:
    """One tensor table as a :class:`TensorInfo` (shape, buffer and quantization checked)."""
    label = f"tensor {index}"
    shape = tuple(int(d) for d in t.array(0, "i"))
    if any(d < 0 for d in shape):
        raise Malformed(f"{label}: negative dimension in shape {list(shape)}")
    dtype = names.types.get(t.scalar(1, "b", 0))
    if dtype is None:
        raise Malformed(f"{label}: unknown tensor type {t.scalar(1, 'b', 0)}")
    buf = t.scalar(2, "I", 0)
    if buf >= len(buffers):
        raise Malformed(f"{label}: buffer {buf} of {len(buffers)}")
    data = buffers[buf]
    if data is not None and dtype in ITEM_SIZES and not t.has(6):   # no sparsity
        need = math.prod(shape) * ITEM_SIZES[dtype]
        if need != len(data):
            raise Malformed(f"{label}: constant of shape {list(shape)} {dtype} needs {need} "
                            f"bytes, its buffer has {len(data)}")
    sig = tuple(int(d) for d in t.array(7, "i")) if t.has(7) else None
    scale, zp, qdim = _quantization(t, shape, dtype, label)
    return TensorInfo(index=index, name=t.string(3) or "", dtype=dtype, shape=shape,
                      shape_signature=sig, scale=scale, zero_point=zp, quantized_dimension=qdim,
                      buffer_size=len(data) if data is not None else 0,
                      is_variable=bool(t.scalar(5, "?", False)), data=data)


def _indices(values: np.ndarray, n: int, label: str, optional: bool) -> tuple[int, ...]:
    """Tensor indices, each in ``[0, n)`` (or -1 for an omitted optional input)."""
    out = tuple(int(x) for x in values)
    low = -1 if optional else 0
    bad = [i for i in out if not low <= i < n]
    if bad:
        raise Malformed(f"{label}: tensor index {bad[0]} outside 0..{n - 1}")
    return out


def _options(o: FlatTable, names: _Names) -> tuple[str | None, dict]:
    """The op's builtin-options table name and the fields of :data:`OPTION_FIELDS`."""
    otype = o.scalar(3, "B", 0)
    if not otype:
        return None, {}
    type_name = names.options.get(otype)
    if type_name is None:
        raise Malformed(f"unknown builtin options type {otype}")
    table = o.table(4)
    spec = OPTION_FIELDS.get(type_name, ())
    values = {f: (table.scalar(slot, fmt, default) if table is not None else default)
              for f, slot, fmt, default in spec}
    if "fused_activation" in values:
        act = values["fused_activation"]
        if act not in names.acts:
            raise Malformed(f"unknown fused activation {act}")
        values["fused_activation"] = names.acts[act]
    return type_name, values


#: The options table each op carries (the converter always writes this one; another
#: one means the opcode or the options type byte is corrupt).
_OPTIONS_OF = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "MAX_POOL_2D": "Pool2DOptions", "AVERAGE_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions", "FULLY_CONNECTED": "FullyConnectedOptions",
    "SOFTMAX": "SoftmaxOptions", "CONCATENATION": "ConcatenationOptions",
    "ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions",
    "RESHAPE": "ReshapeOptions", "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "STRIDED_SLICE": "StridedSliceOptions", "MEAN": "ReducerOptions", "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions",
    "SPLIT": "SplitOptions", "PACK": "PackOptions", "TRANSPOSE_CONV": "TransposeConvOptions",
    "SQUEEZE": "SqueezeOptions", "L2_NORMALIZATION": "L2NormOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
    "LSTM": "LSTMOptions", "PAD": "PadOptions", "GATHER": "GatherOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions", "TRANSPOSE": "TransposeOptions",
}


def _custom_options(fb: FlatBuffer, o: FlatTable) -> memoryview | None:
    """A custom op's option bytes (also when stored past the flatbuffer, for >2 GB models)."""
    if o.has(5):
        return o.raw(5)
    offset, size = o.scalar(9, "Q", 0), o.scalar(10, "Q", 0)
    if offset and size:
        if offset + size > fb.size:
            raise Malformed(f"custom options at {offset}+{size} lie past the end of the file")
        return memoryview(fb.data)[offset:offset + size]
    return None


def _operator(fb, o: FlatTable, index: int, codes, n_tensors: int, names) -> OperatorInfo:
    """One operator table as an :class:`OperatorInfo` (opcode and tensor indices checked)."""
    label = f"operator {index}"
    opcode = o.scalar(0, "I", 0)
    if opcode >= len(codes):
        raise Malformed(f"{label}: opcode index {opcode} of {len(codes)} operator codes")
    name, version, custom = codes[opcode]
    otype, values = _options(o, names)
    if otype is not None and _OPTIONS_OF.get(name, otype) != otype:
        raise Malformed(f"{label}: {name} carries {otype} (the opcode or the options are "
                        "corrupt)")
    act = values.get("fused_activation")
    return OperatorInfo(
        index=index, name=name, version=version,
        inputs=_indices(o.array(1, "i"), n_tensors, label, optional=True),
        outputs=_indices(o.array(2, "i"), n_tensors, label, optional=True),
        custom_code=custom, fused_activation=None if act in (None, "NONE") else act,
        options_type=otype, options=values,
        custom_options=_custom_options(fb, o) if name == "CUSTOM" else None)


def _check_signatures(root: FlatTable, n_subgraphs: int) -> None:
    """Walk the signature defs (names and tensor maps) so a corrupt one is caught too."""
    for sig in root.tables(7):
        sig.string(2)
        for slot in (0, 1):
            for tmap in sig.tables(slot):
                tmap.string(0)
                tmap.scalar(1, "I", 0)
        if sig.scalar(4, "I", 0) >= n_subgraphs:
            raise Malformed(f"signature {sig.string(2)!r} names subgraph {sig.scalar(4, 'I', 0)}")


def _metadata(root: FlatTable, buffers) -> dict[str, memoryview]:
    out = {}
    for md in root.tables(6):
        b = md.scalar(1, "I", 0)
        if b >= len(buffers):
            raise Malformed(f"metadata {md.string(0)!r}: buffer {b} of {len(buffers)}")
        out[md.string(0) or ""] = buffers[b] if buffers[b] is not None else memoryview(b"")
    return out


#: Ops whose int8 kernels requantize with input_scale * filter_scale / output_scale.
_CONV_LIKE = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})


def _check_requantization(g: "GraphInfo") -> None:
    """Each channel's requantization scale in [2**-32, 256), as the int8 kernels require.

    A corrupt scale (a flipped exponent bit) would otherwise read as a valid
    model that the interpreter then refuses in ``allocate_tensors``.
    """
    for op in g.operators:
        if op.name not in _CONV_LIKE or len(op.inputs) < 2 or not op.outputs:
            continue
        x, w, y = (g.tensors[i] if i >= 0 else None for i in
                   (op.inputs[2 if op.name == "TRANSPOSE_CONV" else 0],
                    op.inputs[1], op.outputs[0]))
        if x is None or w is None or y is None or not (x.scale.size and w.scale.size
                                                       and y.scale.size):
            continue
        with np.errstate(all="ignore"):
            req = x.scale[0] * w.scale / y.scale[0]
        if not np.all((req >= 2.0 ** -32) & (req < 256.0)):
            raise Malformed(f"operator {op.index} ({op.name}): requantization scale outside "
                            "[2**-32, 256) (corrupt quantization parameters)")


_WINDOW_FIELDS = ("stride_w", "stride_h", "filter_w", "filter_h", "dilation_w", "dilation_h",
                  "depth_multiplier")


def _check_windows(g: "GraphInfo") -> None:
    """Conv/pool strides, filters and dilations within 1..65535, and output channels that
    follow from the inputs (a corrupt stride or activation shape otherwise reads as valid)."""
    for op in g.operators:
        low = {"depth_multiplier": 0}
        bad = [f for f in _WINDOW_FIELDS
               if f in op.options and not low.get(f, 1) <= op.options[f] < 1 << 16]
        if bad:
            raise Malformed(f"operator {op.index} ({op.name}): {bad[0]} = {op.options[bad[0]]}")
        if op.name not in ("CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D") or not op.inputs \
                or not op.outputs or min(op.inputs[:2] + op.outputs[:1]) < 0:
            continue
        x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        want = g.tensors[op.inputs[1]].shape[:1] if op.name == "CONV_2D" else x.shape[-1:]
        if len(y.shape) == 4 and len(x.shape) == 4 and y.shape[-1:] != tuple(want):
            raise Malformed(f"operator {op.index} ({op.name}): output shape {list(y.shape)} "
                            f"does not follow from its inputs")


def _check_probabilities(g: "GraphInfo") -> None:
    """8-bit SOFTMAX/LOGISTIC outputs use scale 1/256 (zero point -128 int8, 0 uint8): the
    interpreter's kernels refuse anything else."""
    for op in g.operators:
        if op.name not in ("SOFTMAX", "LOGISTIC") or not op.outputs or op.outputs[0] < 0:
            continue
        y = g.tensors[op.outputs[0]]
        if y.dtype in ("INT8", "UINT8") and y.scale.size and (
                abs(y.scale[0] - 1 / 256) > 1e-3 / 256
                or int(y.zero_point[0] if y.zero_point.size else 0)
                != (-128 if y.dtype == "INT8" else 0)):
            raise Malformed(f"operator {op.index} ({op.name}): output quantization "
                            f"{y.scale[0]:g}/{int(y.zero_point[0]) if y.zero_point.size else 0}"
                            " is not 1/256 (corrupt quantization parameters)")


def _parse_graph(buf: bytes, names: _Names) -> GraphInfo:
    fb = FlatBuffer(buf)
    root = fb.root()
    version = root.scalar(0, "I", 0)
    if version != SCHEMA_VERSION:
        raise Malformed(f"schema version {version}, the interpreter reads {SCHEMA_VERSION}")
    codes = _operator_codes(root, names)
    subgraphs = root.tables(2)
    if not subgraphs:
        raise Malformed("no subgraph")
    g = subgraphs[0]
    if not (g.has(0) and g.has(3) and root.has(4)):
        raise Malformed("subgraph 0 has no operators, tensors or buffers")
    buffers = _buffers(fb, root)
    _check_signatures(root, len(subgraphs))
    tensors = [_tensor(t, i, names, buffers) for i, t in enumerate(g.tables(0))]
    n = len(tensors)
    ops = [_operator(fb, o, i, codes, n, names) for i, o in enumerate(g.tables(3))]
    graph = GraphInfo(
        operators=ops, tensors=tensors,
        inputs=_indices(g.array(1, "i"), n, "subgraph inputs", optional=False),
        outputs=_indices(g.array(2, "i"), n, "subgraph outputs", optional=False),
        num_subgraphs=len(subgraphs), description=root.string(3) or "",
        metadata=_metadata(root, buffers), subgraph_name=g.string(4) or "")
    _check_requantization(graph)
    _check_windows(graph)
    _check_probabilities(graph)
    return graph


def read_graph(model: str | Path | bytes) -> GraphInfo:
    """Parse a ``.tflite`` file (path or bytes) into a :class:`GraphInfo`.

    Raises
    ------
    DataError
        If the file cannot be read, or its bytes are not a TFLite flatbuffer or
        are truncated/corrupt: ``"<file>: malformed model: <what>"`` (one line).
    BackendUnavailable
        When no package carrying the schema's enum names is installed.
    """
    buf, name = _model_bytes(model)
    names = _Names(load_schema())
    try:
        return _parse_graph(buf, names)
    except Malformed as e:
        raise DataError(f"{name + ': ' if name else ''}malformed model: {e}") from None


# ------------------------------------------------------------------ editing

def unpack_model(model: str | Path | bytes):
    """The flatbuffer's mutable object tree (``schema.ModelT``) and the schema module.

    The bytes pass :func:`read_graph`'s checks first, so a malformed file is a
    :class:`~benchmark.errors.DataError` naming it.
    """
    buf, name = _model_bytes(model)
    schema = load_schema()
    try:
        _parse_graph(buf, _Names(schema))
        return schema.ModelT.InitFromPackedBuf(buf, 0), schema
    except (Malformed, struct.error, IndexError, ValueError, TypeError) as e:
        raise DataError(f"{name + ': ' if name else ''}malformed model: {e}") from None


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
