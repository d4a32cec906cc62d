"""Which builtin op versions ``edgetpu_compiler`` 16.0 can parse.

The compiler reads a model with an embedded TFLite op resolver. An op or op
version that resolver does not register ends the compile before anything is
mapped, with (compiler 16.0.384591198, google-coral/edgetpu#631, #845, #879,
google-coral/libedgetpu#71)::

    ERROR: Didn't find op for builtin opcode 'EXP' version '2'. An older version of this
    builtin might be supported. Are you using an old TFLite binary with a newer model?

    ERROR: Registration failed.

    Invalid model: model.tflite
    Model could not be parsed

and an op code newer than the resolver's schema with ``ERROR: Op builtin_code
out of range: 151. Are you using old TFLite binary with newer model?``
(edgetpu#862).

:data:`RUNTIME_VERSIONS` is TFLite's own table of the first runtime that runs
each op version (``tensorflow/lite/tools/versioning/runtime_version.cc``).
Compiler 16.0 (CL 384591198, built mid-2021) embeds a TFLite of about 2.6:
every reported failure is a version first run by 2.7 or later (QUANTIZE v3:
2.7, CONV_2D v6: 2.9, TRANSPOSE_CONV v4 and EXP v2: later), and FILL v3 (2.5),
which compiler 15 could not parse (edgetpu#434), passes 16. So a version is
accepted when its runtime is at most :data:`COMPILER_RUNTIME`; the "2.6.0"
versions are accepted but **uncertain** (the exact snapshot is not
published), and reported so.
"""

from __future__ import annotations

COMPILER = "16.0.384591198"
#: The TFLite runtime the compiler's op resolver corresponds to (see the module docstring).
COMPILER_RUNTIME = "2.6.0"
#: Highest builtin op code of that runtime's schema (BROADCAST_ARGS, new in 2.6).
MAX_BUILTIN_CODE = 145

_V = {  # op -> runtime of version 1, 2, ... (runtime_version.cc)
    "ABS": "1.13.0 2.4.0 2.5.0 2.6.0", "ADD": "1.5.0 1.14.0 2.4.0 2.6.0", "ADD_N": "1.14.0",
    "ARG_MAX": "1.9.0 1.14.0 2.9.0", "ARG_MIN": "1.9.0 1.14.0 2.9.0",
    "ASSIGN_VARIABLE": "2.6.0", "AVERAGE_POOL_2D": "1.5.0 1.14.0 2.3.0",
    "BATCH_MATMUL": "2.3.0 2.3.0 2.4.0 2.5.0", "BATCH_TO_SPACE_ND": "1.6.0 1.14.0 2.3.0",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "1.14.0 1.14.0 1.14.0",
    "BIDIRECTIONAL_SEQUENCE_RNN": "1.14.0 1.14.0 2.3.0", "BROADCAST_ARGS": "2.6.0",
    "BROADCAST_TO": "- 2.5.0 2.5.0", "CALL_ONCE": "2.5.0", "CAST": "1.5.0 2.7.0 2.8.0 2.9.0",
    "CEIL": "1.14.0", "COMPLEX_ABS": "2.5.0", "CONCATENATION": "1.5.0 1.14.0 2.3.0",
    "CONV_2D": "1.5.0 1.14.0 1.14.0 2.3.0 2.4.0 2.9.0", "CONV_3D": "2.5.0",
    "CONV_3D_TRANSPOSE": "2.6.0", "COS": "1.14.0", "CUMSUM": "2.4.0", "DENSIFY": "2.2.0",
    "DEPTH_TO_SPACE": "2.1.0 2.5.0",
    "DEPTHWISE_CONV_2D": "1.5.0 1.12.0 1.14.0 2.2.0 2.3.0 2.3.0",
    "DEQUANTIZE": "1.13.1 1.14.0 1.15.0 2.2.0 2.7.0", "DIV": "1.6.0 2.3.0", "ELU": "1.14.0",
    "EMBEDDING_LOOKUP": "1.13.0 1.14.0 1.14.0", "EMBEDDING_LOOKUP_SPARSE": "1.5.0",
    "EQUAL": "1.14.0 1.14.0 2.3.0", "EXP": "1.7.0", "EXPAND_DIMS": "1.10.0",
    "FAKE_QUANT": "1.5.0 1.10.0", "FILL": "1.13.0 2.3.0 2.5.0", "FLOOR": "1.9.0",
    "FLOOR_DIV": "1.14.0 1.14.0", "FLOOR_MOD": "1.13.0",
    "FULLY_CONNECTED": "1.5.0 1.10.0 1.14.0 1.14.0 2.0.0 2.1.0 2.3.0 2.3.0 2.3.0",
    "GATHER": "1.6.0 1.14.0 1.15.0 2.4.0 2.5.0", "GATHER_ND": "1.14.0 2.3.0 2.5.0",
    "GREATER": "1.14.0 1.14.0", "GREATER_EQUAL": "1.14.0 1.14.0", "HARD_SWISH": "1.15.0",
    "HASHTABLE": "2.5.0", "HASHTABLE_FIND": "2.5.0", "HASHTABLE_IMPORT": "2.5.0",
    "HASHTABLE_LOOKUP": "1.5.0", "HASHTABLE_SIZE": "2.5.0", "IF": "1.15.0", "IMAG": "2.5.0",
    "L2_NORMALIZATION": "1.5.0 1.14.0", "L2_POOL_2D": "1.5.0",
    "LEAKY_RELU": "1.13.1 2.3.0", "LESS": "1.14.0 1.14.0", "LESS_EQUAL": "1.14.0 1.14.0",
    "LOCAL_RESPONSE_NORMALIZATION": "1.5.0", "LOG": "1.14.0", "LOG_SOFTMAX": "1.14.0 1.14.0",
    "LOGICAL_AND": "1.11.0", "LOGICAL_NOT": "1.11.0", "LOGICAL_OR": "1.11.0",
    "LOGISTIC": "1.14.0 1.14.0 2.3.0", "LSH_PROJECTION": "1.5.0",
    "LSTM": "1.7.0 1.10.0 1.14.0 2.3.0", "MATRIX_DIAG": "1.14.0", "MATRIX_SET_DIAG": "1.14.0",
    "MAX_POOL_2D": "1.5.0 1.14.0 2.3.0", "MAXIMUM": "1.14.0 1.14.0 2.3.0 2.3.0",
    "MEAN": "1.6.0 1.14.0 2.4.0", "MINIMUM": "1.14.0 1.14.0 2.3.0 2.3.0",
    "MIRROR_PAD": "1.13.1 2.3.0", "MUL": "1.5.0 1.14.0 1.15.0 2.3.0 2.6.0", "NEG": "1.9.0",
    "NON_MAX_SUPPRESSION_V4": "2.1.0", "NON_MAX_SUPPRESSION_V5": "2.1.0",
    "NOT_EQUAL": "1.14.0 1.14.0 2.3.0", "ONE_HOT": "1.11.0", "PACK": "1.11.0 1.14.0 2.3.0",
    "PAD": "1.5.0 1.14.0 2.4.0 2.6.0", "PADV2": "1.9.0 1.14.0 2.4.0 2.6.0", "POW": "1.10.0",
    "PRELU": "1.8.0", "QUANTIZE": "1.14.0 1.15.0 2.7.0", "RANGE": "1.13.0", "RANK": "1.14.0",
    "READ_VARIABLE": "2.6.0", "REAL": "2.5.0", "REDUCE_ALL": "2.6.0", "REDUCE_ANY": "1.11.0",
    "REDUCE_MAX": "1.11.0 1.14.0 2.5.0", "REDUCE_MIN": "1.11.0 1.14.0 2.5.0",
    "REDUCE_PROD": "1.11.0 2.6.0", "RELU": "1.5.0 2.1.0 2.5.0", "RELU6": "1.5.0 1.14.0 2.5.0",
    "RELU_N1_TO_1": "1.5.0", "RESHAPE": "1.5.0",
    "RESIZE_BILINEAR": "1.7.0 1.14.0 2.2.0 2.5.0",
    "RESIZE_NEAREST_NEIGHBOR": "1.13.1 1.14.0 2.3.0 2.4.0", "REVERSE_SEQUENCE": "1.14.0",
    "REVERSE_V2": "1.14.0 2.2.0 2.5.0", "RFFT2D": "2.5.0", "RNN": "1.5.0 1.14.0 2.3.0",
    "ROUND": "1.14.0", "RSQRT": "1.10.0 2.5.0", "SCATTER_ND": "2.1.0",
    "SEGMENT_SUM": "2.2.0", "SELECT": "1.14.0 1.14.0", "SELECT_V2": "2.2.0",
    "SHAPE": "1.10.0", "SIN": "1.9.0", "SKIP_GRAM": "1.5.0",
    "SLICE": "1.14.0 1.14.0 1.14.0 2.4.0 2.5.0", "SOFTMAX": "1.5.0 1.14.0 2.3.0",
    "SPACE_TO_BATCH_ND": "1.6.0 1.14.0 2.3.0", "SPACE_TO_DEPTH": "1.5.0 1.14.0",
    "SPARSE_TO_DENSE": "1.9.0 1.14.0 1.15.0", "SPLIT": "1.5.0 1.14.0 1.14.0 2.3.0",
    "SPLIT_V": "1.13.1 2.3.0", "SQRT": "1.10.0", "SQUARE": "1.12.0",
    "SQUARED_DIFFERENCE": "1.13.1 2.5.0", "SQUEEZE": "1.6.0 2.5.0",
    "STRIDED_SLICE": "1.6.0 1.14.0 2.1.0 2.2.0 2.5.0 2.6.0",
    "SUB": "1.6.0 1.14.0 2.3.0 2.4.0 2.4.0",
    "SUM": "1.10.0 1.15.0", "SVDF": "1.5.0 1.14.0 2.2.0 2.3.0", "TANH": "1.14.0 1.14.0 2.3.0",
    "TILE": "1.10.1 2.2.0 2.8.0", "TOPK_V2": "1.7.0 1.14.0",
    "TRANSPOSE": "1.6.0 1.14.0 1.15.0 2.3.0 2.4.0",
    "TRANSPOSE_CONV": "1.9.0 2.2.0 2.3.0",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "1.13.1 1.14.0 2.3.0",
    "UNIDIRECTIONAL_SEQUENCE_RNN": "1.14.0 1.14.0 2.3.0", "UNIQUE": "1.14.0",
    "UNPACK": "1.11.0 1.14.0 2.2.0 2.3.0", "VAR_HANDLE": "2.6.0", "WHERE": "1.14.0 2.8.0",
    "WHILE": "1.15.0", "ZEROS_LIKE": "1.12.0",
}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def runtime_of(op: str, version: int) -> str | None:
    """The first TFLite runtime that runs ``op`` at ``version`` (None if unknown: newer)."""
    runtimes = _V.get(op, "").split()
    if not 1 <= version <= len(runtimes) or runtimes[version - 1] == "-":
        return None
    return runtimes[version - 1]


def max_version(op: str) -> int:
    """Highest version of ``op`` the compiler parses (0: the op is not registered at all)."""
    best = 0
    for v, rt in enumerate(_V.get(op, "").split(), start=1):
        if rt != "-" and _key(rt) <= _key(COMPILER_RUNTIME):
            best = v
    return best


def parse_verdict(op: str, version: int, code: int) -> tuple[str, str | None]:
    """("ok" | "uncertain" | "fail", the compiler's error line or None) for one op version.

    ``code`` is the builtin op code; CUSTOM ops are not looked up by the
    compiler's resolver (they stay on the CPU) and are always "ok".
    """
    if op == "CUSTOM":
        return "ok", None
    if code > MAX_BUILTIN_CODE:
        return "fail", (f"ERROR: Op builtin_code out of range: {code}. Are you using old "
                        "TFLite binary with newer model?")
    if version > max_version(op):
        return "fail", (f"ERROR: Didn't find op for builtin opcode '{op}' version "
                        f"'{version}'. An older version of this builtin might be supported. "
                        "Are you using an old TFLite binary with a newer model?")
    if runtime_of(op, version) == COMPILER_RUNTIME:
        return "uncertain", None
    return "ok", None
