"""Read what ``edgetpu_compiler`` put into an ``*_edgetpu.tflite``: :func:`inspect_compiled`.

The compiler replaces every op it maps with ``edgetpu-custom-op`` nodes (one
per Edge TPU subgraph, "segment" here) and leaves the ops it does not map as
ordinary TFLite ops, which run on the CPU. Each custom op's options are a
flexbuffer map (libedgetpu ``tflite/custom_op_data.cc``: ``"1"`` version,
``"4"`` the serialized package, ``"5"`` execution preference, ``"6"`` chip
per executable, ``"7"`` further executables); the package is a ``DWN1``
flatbuffer (libedgetpu ``executable/executable.fbs``: ``Package`` ->
``MultiExecutable`` -> ``Executable``). From it this module reads the
minimum runtime version, the compiler's CL, and per executable its type,
parameter bytes and parameter-caching token:

* the ``PARAMETER_CACHING`` executable's parameters are the ones loaded into
  the on-chip SRAM once ("On-chip memory used for caching model parameters");
* the ``EXECUTION_ONLY`` (or ``STAND_ALONE``) executable's parameters are
  streamed from host memory on every inference ("Off-chip memory used for
  streaming uncached model parameters");
* models compiled together (``edgetpu_compiler a.tflite b.tflite``, Coral's
  ``*_cocompiled_with_*`` files) and the segments of one ``-n N`` compile
  carry the same caching token: they can share the SRAM.

The package does not list the original ops inside a custom op; when the
uncompiled twin (``X.tflite`` beside ``X_edgetpu.tflite``) is found, the op
count on the TPU is its op count minus the ops left on the CPU.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.errors import DataError
from benchmark.tflite_graph import FlatBuffer, Malformed, read_graph

CUSTOM_OP = "edgetpu-custom-op"
#: Executable.type values (executable.fbs ``ExecutableType``).
EXECUTABLE_TYPES = {0: "STAND_ALONE", 1: "PARAMETER_CACHING", 2: "EXECUTION_ONLY"}
_SEGMENT = re.compile(r"_segment_(\d+)_of_(\d+)")
_COCOMPILED = re.compile(r"_cocompiled_with_(.+?)(?:_edgetpu)?$")


@dataclass
class ExecutableInfo:
    """One DarwiNN executable of a package."""

    type: str
    name: str
    parameter_bytes: int
    caching_token: str
    chip: str
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)


@dataclass
class PackageInfo:
    """The ``DWN1`` package of one ``edgetpu-custom-op`` node."""

    op_index: int
    min_runtime_version: int
    compiler_version: str
    executables: list[ExecutableInfo]

    @property
    def on_chip_bytes(self) -> int:
        return sum(e.parameter_bytes for e in self.executables if e.type == "PARAMETER_CACHING")

    @property
    def off_chip_bytes(self) -> int:
        return sum(e.parameter_bytes for e in self.executables if e.type != "PARAMETER_CACHING")


@dataclass
class CompiledInfo:
    """What a compiled model reveals; see :func:`inspect_compiled`.

    ``custom_ops`` is the number of ``edgetpu-custom-op`` nodes (= TPU
    ``segments``), ``cpu_ops`` the op types left to the CPU with their counts,
    ``ops_on_tpu`` the original op count inside the custom ops (None when no
    uncompiled twin was found: the package does not record it).
    """

    path: str
    custom_ops: int
    cpu_ops: dict[str, int]
    cpu_op_list: list[str]
    packages: list[PackageInfo]
    ops_on_tpu: int | None = None
    ops_on_tpu_source: str = "unknown: the package does not list the original ops"
    pipeline_segment: tuple[int, int] | None = None
    cocompiled_with: str | None = None

    @property
    def segments(self) -> int:
        return self.custom_ops

    @property
    def is_compiled(self) -> bool:
        return self.custom_ops > 0

    @property
    def on_chip_parameter_bytes(self) -> int:
        return sum(p.on_chip_bytes for p in self.packages)

    @property
    def off_chip_parameter_bytes(self) -> int:
        return sum(p.off_chip_bytes for p in self.packages)

    @property
    def caching_tokens(self) -> list[str]:
        return sorted({e.caching_token for p in self.packages for e in p.executables})

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(segments=self.segments, is_compiled=self.is_compiled,
                 on_chip_parameter_bytes=self.on_chip_parameter_bytes,
                 off_chip_parameter_bytes=self.off_chip_parameter_bytes,
                 caching_tokens=self.caching_tokens,
                 ops_on_cpu=len(self.cpu_op_list))
        d["pipeline_segment"] = (None if self.pipeline_segment is None else
                                 {"index": self.pipeline_segment[0],
                                  "of": self.pipeline_segment[1]})
        return d


# ------------------------------------------------------------------ flexbuffers

_FBT_INT, _FBT_UINT, _FBT_STRING, _FBT_MAP, _FBT_VECTOR, _FBT_BLOB = 1, 2, 5, 9, 10, 25


def _uint(buf: bytes, pos: int, width: int) -> int:
    if width not in (1, 2, 4, 8) or pos < 0 or pos + width > len(buf):
        raise Malformed(f"flexbuffer read of {width} bytes at {pos} outside {len(buf)} bytes")
    return int.from_bytes(buf[pos:pos + width], "little")


def _back(buf: bytes, pos: int, width: int) -> int:
    """The position an offset stored at ``pos`` points to (flexbuffer offsets point back)."""
    target = pos - _uint(buf, pos, width)
    if target < 0:
        raise Malformed(f"flexbuffer offset at {pos} points before the start")
    return target


def _flex_value(buf: bytes, pos: int, width: int, packed: int):
    """An int, bytes (string/blob) or list (vector) stored at ``pos``."""
    kind, child = packed >> 2, 1 << (packed & 3)
    if kind in (_FBT_INT, _FBT_UINT):
        v = _uint(buf, pos, width)
        return v - (1 << (8 * width)) if kind == _FBT_INT and v >> (8 * width - 1) else v
    if kind in (_FBT_STRING, _FBT_BLOB):
        start = _back(buf, pos, width)
        n = _uint(buf, start - child, child)
        if start + n > len(buf):
            raise Malformed("flexbuffer string runs past the end")
        return buf[start:start + n]
    if kind == _FBT_VECTOR:
        start = _back(buf, pos, width)
        n = _uint(buf, start - child, child)
        if start + n * child + n > len(buf):
            raise Malformed("flexbuffer vector runs past the end")
        return [_flex_value(buf, start + i * child, child, buf[start + n * child + i])
                for i in range(n)]
    return None


def flex_map(buf: bytes) -> dict[str, object]:
    """The root map of a flexbuffer (keys -> int, bytes or list), bounds-checked."""
    if len(buf) < 3:
        raise Malformed("custom options too short for a flexbuffer")
    root_width, packed = buf[-1], buf[-2]
    if packed >> 2 != _FBT_MAP:
        raise Malformed("custom options are not a flexbuffer map")
    m = _back(buf, len(buf) - 2 - root_width, root_width)
    child = 1 << (packed & 3)
    n = _uint(buf, m - child, child)
    keys = _back(buf, m - 3 * child, child)
    key_width = _uint(buf, m - 2 * child, child)
    if m + n * child + n > len(buf) or keys - key_width < 0:
        raise Malformed("flexbuffer map runs past the end")
    out = {}
    for i in range(n):
        kpos = _back(buf, keys + i * key_width, key_width)
        end = buf.find(b"\0", kpos)
        if end < 0:
            raise Malformed("flexbuffer key is not NUL-terminated")
        out[buf[kpos:end].decode("ascii", "replace")] = _flex_value(
            buf, m + i * child, child, buf[m + n * child + i])
    return out


# ------------------------------------------------------------------ the DWN1 package

def _layers(exe, slot: int) -> list[dict]:
    return [{"name": layer.string(0) or "", "y": layer.scalar(2, "i", 0),
             "x": layer.scalar(3, "i", 0), "z": layer.scalar(4, "i", 0),
             "size_bytes": layer.scalar(1, "i", 0)} for layer in exe.tables(slot)]


def _executable(data: bytes) -> ExecutableInfo:
    """One serialized ``Executable`` (executable.fbs slots: name 1, parameters 6,
    input_layers 8, output_layers 9, chip 10, type 13, parameter_caching_token 14)."""
    exe = FlatBuffer(data).root()
    kind = exe.scalar(13, "h", 0)
    return ExecutableInfo(
        type=EXECUTABLE_TYPES.get(kind, f"UNKNOWN_{kind}"), name=exe.string(1) or "",
        parameter_bytes=exe.vector(6, 1)[1],
        caching_token=f"{exe.scalar(14, 'Q', 0):016x}", chip=exe.string(10) or "",
        inputs=_layers(exe, 8), outputs=_layers(exe, 9))


def _package(data: bytes, op_index: int) -> PackageInfo:
    """A ``DWN1`` package (``Package``: min_runtime_version 0, serialized_multi_executable 1,
    compiler_version 4) and its executables."""
    if data[4:8] != b"DWN1":
        raise Malformed(f"custom op {op_index}: its executable is not a DWN1 package")
    pkg = FlatBuffer(data).root()
    multi = FlatBuffer(bytes(pkg.raw(1))).root()
    start, n = multi.vector(0, 4)
    exes = []
    for i in range(n):
        s = multi.fb.indirect(start + 4 * i)
        length = multi.fb.scalar("I", s)
        if s + 4 + length > multi.fb.size:
            raise Malformed(f"custom op {op_index}: executable {i} runs past the end")
        exes.append(_executable(bytes(multi.fb.data[s + 4:s + 4 + length])))
    return PackageInfo(op_index=op_index, min_runtime_version=pkg.scalar(0, "i", 0),
                       compiler_version=pkg.string(4) or "", executables=exes)


def _packages_of(op) -> list[PackageInfo]:
    """The packages of one custom op: key "4" plus the further executables of key "7"."""
    if op.custom_options is None:
        raise Malformed(f"custom op {op.index} has no options (no compiled executable)")
    opts = flex_map(bytes(op.custom_options))
    blobs = [opts.get("4")] + list(opts.get("7") or [])
    if not isinstance(blobs[0], bytes):
        raise Malformed(f"custom op {op.index}: no serialized executable under key '4'")
    return [_package(b, op.index) for b in blobs if isinstance(b, bytes)]


def _twin_op_count(path: Path, cpu_ops: int) -> tuple[int | None, str]:
    """Ops on the TPU from the uncompiled twin ``X.tflite`` of ``X_edgetpu.tflite``."""
    stem = path.stem
    if not stem.endswith("_edgetpu"):
        return None, CompiledInfo.ops_on_tpu_source
    twin = path.with_name(stem[:-len("_edgetpu")] + path.suffix)
    if not twin.is_file():
        return None, CompiledInfo.ops_on_tpu_source
    total = len(read_graph(twin).operators)
    return total - cpu_ops, f"{twin.name}: {total} ops - {cpu_ops} left on the CPU"


def inspect_compiled(path: str | Path) -> CompiledInfo:
    """What an ``*_edgetpu.tflite`` holds: TPU segments, CPU ops, packages, parameter sizes.

    Parameters
    ----------
    path : str or Path
        A ``.tflite`` file, compiled or not (an uncompiled model has
        ``custom_ops == 0`` and every op in ``cpu_ops``).

    Returns
    -------
    CompiledInfo

    Raises
    ------
    DataError
        When the file cannot be read or is not a valid model, or a custom op's
        package is corrupt (one line naming the file).
    """
    path = Path(path)
    g = read_graph(path)
    tpu = [op for op in g.operators if op.custom_code == CUSTOM_OP]
    cpu = [op.name if op.name != "CUSTOM" else f"CUSTOM:{op.custom_code}"
           for op in g.operators if op.custom_code != CUSTOM_OP]
    try:
        packages = [p for op in tpu for p in _packages_of(op)]
    except (Malformed, struct.error) as e:
        raise DataError(f"{path}: malformed model: {e}") from None
    ops_on_tpu, source = _twin_op_count(path, len(cpu)) if tpu else (0, "no edgetpu-custom-op")
    seg = _SEGMENT.search(path.stem)
    co = _COCOMPILED.search(path.stem)
    return CompiledInfo(
        path=str(path), custom_ops=len(tpu), cpu_ops=dict(Counter(cpu)), cpu_op_list=cpu,
        packages=packages, ops_on_tpu=ops_on_tpu, ops_on_tpu_source=source,
        pipeline_segment=(int(seg.group(1)), int(seg.group(2))) if seg else None,
        cocompiled_with=co.group(1) if co else None)


# ------------------------------------------------------------------ printing

def _kib(n: int) -> str:
    return f"{n} B ({n / 1024:.2f} KiB)" if n < 1024 * 1024 else \
        f"{n} B ({n / 1024 / 1024:.2f} MiB)"


def format_compiled(info: CompiledInfo) -> str:
    """A human-readable summary with a table of the ops left on the CPU."""
    from tabulate import tabulate
    name = Path(info.path).name
    if not info.is_compiled:
        return (f"{name}: not compiled for the Edge TPU (no {CUSTOM_OP}): all "
                f"{len(info.cpu_op_list)} ops run on the CPU")
    tpu = info.ops_on_tpu if info.ops_on_tpu is not None else "unknown"
    lines = [f"{name}: {info.segments} Edge TPU segment(s) ({CUSTOM_OP}), {tpu} ops on the "
             f"Edge TPU ({info.ops_on_tpu_source}), {len(info.cpu_op_list)} on the CPU",
             f"  on-chip (cached) parameters: {_kib(info.on_chip_parameter_bytes)}; "
             f"off-chip (streamed every inference): {_kib(info.off_chip_parameter_bytes)}",
             f"  parameter-caching token: {', '.join(info.caching_tokens)}"
             + (f"; co-compiled with {info.cocompiled_with}" if info.cocompiled_with else ""),
             f"  minimum runtime version: "
             f"{', '.join(sorted({str(p.min_runtime_version) for p in info.packages}))}"]
    if info.pipeline_segment:
        k, n = info.pipeline_segment
        lines.append(f"  pipeline segment {k} of {n} (edgetpu_compiler -n {n})")
    if info.cpu_ops:
        lines.append(tabulate(sorted(info.cpu_ops.items()), headers=["CPU op", "count"]))
    return "\n".join(lines)


def caching_groups(infos: list[CompiledInfo]) -> dict[str, list[str]]:
    """Files sharing a parameter-caching token (co-compiled, or segments of one compile)."""
    groups: dict[str, list[str]] = {}
    for info in infos:
        for token in info.caching_tokens:
            groups.setdefault(token, []).append(info.path)
    return {t: files for t, files in groups.items() if len(files) > 1}
