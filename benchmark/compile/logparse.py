"""Parse ``edgetpu_compiler`` output: the console text and the ``*_edgetpu.log`` op table.

Formats (see ``../shared/edgetpu/FACTS.md``, section 1): the op log is a
header plus a fixed-width ``Operator / Count / Status`` table with no totals;
the console prints sizes, memory figures, subgraph and op counts (the
``Number of operations that will run on ...`` lines only when not everything
maps), optionally the same table (``-s``), possibly truncated to the unmapped
rows, and one-line failures.

One console text can hold several compiles: a paste of two runs (the flaky
internal error of edgetpu#173), the attempts of ``-d/--search_delegate``
(``Try to compile segment with N ops`` ... ``Compilation failed!``) or the
segments of ``-n``. The text is cut into one block per attempt; the result
describes the last complete one (the last that printed op counts), its
``error`` and ``succeeded`` describe how the text ends, and ``attempts``
summarises every block.

Pure functions: text in, JSON-ready dict out; nothing here reads files.
"""

from __future__ import annotations

import re
from collections import Counter

MAPPED = "Mapped to Edge TPU"

#: Status strings seen verbatim in compiler logs (FACTS.md section 1).
KNOWN_STATUSES = (
    MAPPED,
    "More than one subgraph is not supported",
    "Operation is otherwise supported, but not mapped due to some unspecified limitation",
    "Operation is working on an unsupported data type",
    "Operation not supported",
    "Operation version not supported",
    "Only Strided-Slice with unitary strides supported",
    "Tensor has unsupported rank (up to 3 innermost dimensions mapped)",
)

#: Failure kinds, from the most to the least specific.
ERROR_KINDS = ("op_version", "not_quantized", "dynamic_shapes", "large_activations",
               "internal_error", "unparseable_model", "other")

ADVICE = {
    "not_quantized": "convert with full-integer post-training quantization: "
                     "optimizations=[DEFAULT], a representative dataset, "
                     "supported_ops=[TFLITE_BUILTINS_INT8], int8/uint8 input and output "
                     "(python -m benchmark.convert)",
    "op_version": "the converter emitted op versions newer than the compiler parses (16.0 is "
                  "the last release): convert with converter.experimental_new_converter = "
                  "False, or re-convert with an older TensorFlow 2.x (about 2.5-2.8); the "
                  "static analyzer lists the offending ops",
    "dynamic_shapes": "export with a fixed batch of 1 and static shapes everywhere (no "
                      "None dimensions; no SHAPE/STRIDED_SLICE/PACK built around Flatten), "
                      "then re-convert",
    "large_activations": "reduce the input resolution, or split the model: "
                         "-i/--intermediate_tensors before the large layers, -n segments, "
                         "or -d/--search_delegate",
    "internal_error": "known to be flaky: retry once; if it persists, compile without "
                      "-a, with another -m/--min_runtime_version, or cut the model with -i "
                      "before the failing part",
    "unparseable_model": "the compiler could not read the model: check that it loads in the "
                         "TFLite interpreter and that every op and op version is supported",
    "other": "read the compiler message; the static analyzer "
             "(benchmark.compile.analyzer) shows which op is likely to fail",
}

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_SIZE = r"([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB)\b"
_SIZES = {
    "input_size_bytes": r"Input size:",
    "output_size_bytes": r"Output size:",
    "on_chip_available_bytes": r"On-chip memory available for caching model parameters:",
    "on_chip_used_bytes": r"On-chip memory used for caching model parameters:",
    "on_chip_remaining_bytes": r"On-chip memory remaining for caching model parameters:",
    "off_chip_used_bytes": r"Off-chip memory used for streaming uncached model parameters:",
}
_SIZES = {k: re.compile("^" + v + r"\s*" + _SIZE) for k, v in _SIZES.items()}
_INTS = {
    "subgraphs": r"Number of Edge TPU subgraphs:\s*(\d+)",
    "total_ops": r"Total number of operations:\s*(\d+)",
    "printed_tpu": r"Number of operations that will run on Edge TPU:\s*(\d+)",
    "printed_cpu": r"Number of operations that will run on CPU:\s*(\d+)",
    "compile_ms": r"Model compiled successfully in (\d+)\s*ms",
}
_INTS = {k: re.compile("^" + v) for k, v in _INTS.items()}
_PATHS = {
    "input_model": re.compile(r"^Input(?: model)?:\s*(.+)$"),
    "output_model": re.compile(r"^Output(?: model)?:\s*(.+)$"),
}
_VERSION = re.compile(r"^Edge TPU Compiler version\s+(\S+)")
_HEADER = re.compile(r"^Operator\s+Count\s+Status$")
_ROW = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s+(\d+)\s+(\S.*)$")
_TRUNCATED = re.compile(r"^\.\.\.\s*All other operators were mapped")
_NOT_ALL = "Model successfully compiled but not all operations"

# A compiler command line as pasted: "$ edgetpu_compiler ...", "user@host:~$ ...", "!edge...".
_COMMAND = re.compile(r"^(?:.*?[$#>]\s*|!\s*)?(?:sudo\s+)?\S*edgetpu_compiler(?:\s|$)")
# Lines that start a compile attempt; a block is cut before one that follows content.
_STARTS = ("Edge TPU Compiler version", "Searching for valid delegate", "Try to compile segment",
           "Intermediate tensors:", "Started a compilation timeout timer")
_SUCCESS = re.compile(r"^(Compilation succeeded|Model compiled successfully|Output model:)")
_FATAL = re.compile(r"^Compilation failed|Internal compiler error|^Invalid model|"
                    r"^Model not quantized|^Model could not be parsed|"
                    r"terminating with uncaught exception|Segmentation fault|core dumped")
_ERROR_LINE = re.compile(_FATAL.pattern + r"|^ERROR\b|^F\d{4} |Check failed")
_CLASSIFY = (
    ("op_version", re.compile(r"Didn't find op for builtin opcode|"
                              r"Op builtin_code out of range")),
    ("not_quantized", re.compile(r"Model not quantized")),
    ("dynamic_shapes", re.compile(r"dynamic-sized tensors")),
    ("large_activations", re.compile(r"large activation tensors")),
    ("internal_error", re.compile(r"Internal compiler error")),
    ("unparseable_model", re.compile(r"Model could not be parsed|^Invalid model")),
)
# Lines a 72-column wrap never continues onto (the next compiler line starts with them).
_KEY_ORDER = ("compiler_version", "kind", "input_model", "output_model", "succeeded", "error",
              "ops_on_tpu", "ops_on_cpu", "total_ops", "subgraphs", "compile_ms",
              "input_size_bytes", "output_size_bytes", "on_chip_available_bytes",
              "on_chip_used_bytes", "on_chip_remaining_bytes", "off_chip_used_bytes",
              "truncated_table", "operators", "counts_trusted", "warnings", "runs", "attempts",
              "internal_error_seen", "flaky_internal_error")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# The start of a table row whose count or status is missing (a cut line).
_PARTIAL_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)(?:\s+(\d+))?\s*$")
_KNOWN_STARTS = _STARTS + (
    "Input", "Output", "On-chip", "Off-chip", "Number of", "Total number", "Operation log",
    "Operator", "Model ", "See the operation", "Compilation", "ERROR", "Internal compiler",
    "Invalid model", "...", "$")


def advice(error_kind: str | None) -> str:
    """What to try for a compiler failure kind.

    Parameters
    ----------
    error_kind : str or None
        One of :data:`ERROR_KINDS`, or None.

    Returns
    -------
    str
        One sentence of advice; empty when ``error_kind`` is None. An unknown
        kind gets the advice for ``"other"``.
    """
    if not error_kind:
        return ""
    return ADVICE.get(error_kind, ADVICE["other"])


def to_bytes(value: str, unit: str) -> int:
    """Convert a compiler size (``"1.70", "MiB"``) to whole bytes.

    Parameters
    ----------
    value : str
        The number as printed (two decimals).
    unit : str
        ``B``, ``KiB``, ``MiB`` or ``GiB`` (binary multiples).

    Returns
    -------
    int
        Bytes, rounded to the nearest integer.

    Examples
    --------
    >>> to_bytes("1.70", "MiB"), to_bytes("0.00", "B"), to_bytes("1.75", "KiB")
    (1782579, 0, 1792)
    """
    return int(round(float(value) * _UNITS[unit]))


def _is_full_row(line: str) -> bool:
    m = _ROW.match(line)
    return bool(m) and m.group(3).strip() in KNOWN_STATUSES


def _unwrap(text: str) -> list[str]:
    """Split into lines, joining lines that a paste wrapped at ~72 columns.

    A line continues the previous one when the previous physical line is 50-80
    characters long, does not end a sentence (``.`` or ``!``), is not a
    complete table row, and the line itself does not start like a compiler line
    (log 43 wraps the "not all operations" paragraph this way).
    """
    out: list[str] = []
    last_len = 0  # length of the previous *physical* line
    for raw in text.splitlines():
        line = raw.rstrip()
        prev = out[-1] if out else ""
        if (line and prev and 50 <= last_len <= 80 and not prev.endswith((".", "!"))
                and not line[0].isspace() and not line.startswith(_KNOWN_STARTS)
                and not _ROW.match(line) and not _is_full_row(prev)
                and not _COMMAND.match(line) and not _COMMAND.match(prev)):
            out[-1] = prev + " " + line
        else:
            out.append(line)
        last_len = len(line)
    return out


def _is_marker(line: str) -> bool:
    return line.startswith(_STARTS) or bool(_COMMAND.match(line))


def _split_blocks(lines: list[str]) -> list[list[str]]:
    """Cut lines into compile attempts: a start marker after content opens a new block."""
    blocks: list[list[str]] = [[]]
    content = False
    for line in lines:
        s = line.strip()
        if _is_marker(s):
            if content:
                blocks.append([])
                content = False
        elif s:
            content = True
        blocks[-1].append(s)
    return blocks


def _classify(error_lines: list[str]) -> dict:
    for kind, pat in _CLASSIFY:
        hit = next((ln for ln in error_lines if pat.search(ln)), None)
        if hit is not None:
            return {"kind": kind, "message": hit, "lines": error_lines}
    # "other": prefer a "Compilation failed: <reason>" or ERROR line to the bare verdict.
    informative = [ln for ln in error_lines if not re.match(r"^Compilation failed!?$", ln)]
    return {"kind": "other", "message": (informative or error_lines)[0], "lines": error_lines}


def _empty_result() -> dict:
    return {"compiler_version": None, "kind": "console", "input_model": None,
            "output_model": None, "operators": [], "truncated_table": False,
            "ops_on_tpu": None, "ops_on_cpu": None, "total_ops": None,
            "error": None, "succeeded": None, "warnings": [], "counts_trusted": True}


def _match_figures(s: str, r: dict, printed: dict, seen: dict) -> None:
    """Record the sizes, counts and model paths one console/op-log line prints."""
    for key, pat in _SIZES.items():
        m = pat.match(s)
        if m:
            r[key] = to_bytes(m.group(1), m.group(2))
            seen["console"] = True
    for key, pat in _INTS.items():
        m = pat.match(s)
        if m:
            (printed if key.startswith("printed_") else r)[key] = int(m.group(1))
            seen["console"] = True
    for key, pat in _PATHS.items():
        m = pat.match(s)
        if m:
            r[key] = m.group(1).strip()
            seen["console" if " model:" in s else "oplog"] = True


def _parse_block(lines: list[str]) -> tuple[dict, bool]:
    """Parse one attempt; returns (result, whether the block held any compiler output)."""
    r = _empty_result()
    printed: dict = {}
    seen = {"console": False, "oplog": False, "table": False, "success": False, "fatal": False}
    error_lines: list[str] = []
    in_table = False
    for s in lines:
        if not s:
            continue
        m = _VERSION.match(s)
        if m:
            r["compiler_version"] = m.group(1)
            continue
        if _HEADER.match(s):
            in_table = seen["table"] = True
            continue
        if in_table:
            if _table_line(s, r):
                continue
            in_table = False
        _match_figures(s, r, printed, seen)
        if _SUCCESS.match(s) or s.startswith((_NOT_ALL, "Operation log:", "See the operation")):
            seen["console"] = True
            seen["success"] = seen["success"] or bool(_SUCCESS.match(s))
        if _FATAL.search(s):
            seen["fatal"] = True
        if _ERROR_LINE.search(s):
            error_lines.append(s)
            seen["console"] = True
    meaningful = (r["compiler_version"] is not None or any(seen.values()) or bool(printed))
    if (seen["oplog"] or seen["table"]) and not seen["console"]:
        r["kind"] = "op-log"
    if seen["fatal"] or (error_lines and not seen["success"]):
        r["error"] = _classify(error_lines)
        r["succeeded"] = False
    elif seen["success"]:
        r["succeeded"] = True
        r["warnings"] = list(error_lines) + r["warnings"]
    _derive_counts(r, printed, not_all_mapped=any(s.startswith(_NOT_ALL) for s in lines))
    return r, meaningful


def _table_line(s: str, r: dict) -> bool:
    """Take one line inside the operator table; False when the table has ended.

    A row whose status is the beginning of a known status, or a row with no
    status at all, was cut (a log copied before the compiler finished writing
    it, or an editor's paste): it is left out of the counts, which are marked
    untrusted, instead of being counted as a CPU op.
    """
    row = _ROW.match(s)
    if row:
        status = row.group(3).strip()
        if status not in KNOWN_STATUSES and any(k.startswith(status) for k in KNOWN_STATUSES):
            _distrust(r, f"operator table row cut mid-status: {s!r} (not counted)")
            return True
        if status not in KNOWN_STATUSES:
            r["warnings"].append(f"unknown operator status {status!r} (counted as not mapped)")
        r["operators"].append({"operator": row.group(1), "count": int(row.group(2)),
                               "status": status})
        return True
    if _TRUNCATED.match(s):
        r["truncated_table"] = True
        return True
    if _PARTIAL_ROW.match(s):
        _distrust(r, f"operator table row without a status: {s!r} (not counted)")
        return True
    return False


def _distrust(r: dict, warning: str) -> None:
    r["warnings"].append(warning)
    r["counts_trusted"] = False


def _derive_counts(r: dict, printed: dict, not_all_mapped: bool) -> None:
    """Fill ``ops_on_tpu``/``ops_on_cpu``/``total_ops`` (printed counts win over sums)."""
    rows = r["operators"]
    mapped = sum(x["count"] for x in rows if x["status"] == MAPPED)
    unmapped = sum(x["count"] for x in rows if x["status"] != MAPPED)
    total = r["total_ops"]
    if "printed_tpu" in printed or "printed_cpu" in printed:
        tpu, cpu = printed.get("printed_tpu"), printed.get("printed_cpu")
        if tpu is None and cpu is not None and total is not None:
            tpu = total - cpu
        if cpu is None and tpu is not None and total is not None:
            cpu = total - tpu
        r["ops_on_tpu"], r["ops_on_cpu"] = tpu, cpu
        if rows and tpu is not None and cpu is not None:
            if r["truncated_table"] and unmapped != cpu:
                r["warnings"].append(f"the table's unmapped rows sum to {unmapped}, "
                                     f"the console says {cpu} ops run on the CPU")
            elif not r["truncated_table"] and (mapped, unmapped) != (tpu, cpu):
                r["warnings"].append(f"the table sums to {mapped} mapped / {unmapped} "
                                     f"unmapped, the console says {tpu} / {cpu}")
    elif rows and not r["truncated_table"]:
        r["ops_on_tpu"], r["ops_on_cpu"] = mapped, unmapped
    elif rows and total is not None:
        # truncated table, no printed counts: only the unmapped rows are listed
        r["ops_on_tpu"], r["ops_on_cpu"] = total - unmapped, unmapped
    elif (total is not None and r["succeeded"] and not not_all_mapped
          and r.get("subgraphs") != 0):
        # everything mapped: the console prints no count lines (logs 25, 27)
        r["ops_on_tpu"], r["ops_on_cpu"] = total, 0
    if total is None and r["ops_on_tpu"] is not None and r["ops_on_cpu"] is not None:
        r["total_ops"] = r["ops_on_tpu"] + r["ops_on_cpu"]


def _summary(r: dict) -> dict:
    return {"input_model": r["input_model"], "succeeded": r["succeeded"],
            "error": r["error"]["kind"] if r["error"] else None,
            "ops_on_tpu": r["ops_on_tpu"], "ops_on_cpu": r["ops_on_cpu"]}


def parse_compiler_output(text: str | bytes) -> dict:
    """Parse one ``edgetpu_compiler`` console output or ``*_edgetpu.log`` op log.

    Parameters
    ----------
    text : str or bytes
        The whole text (bytes are decoded by :func:`decode_log`: UTF-8 or
        UTF-16). Pasted shell prompts, text before the compiler's header,
        72-column wrapping, several runs in one paste, ANSI colour codes and
        NUL characters are tolerated; what was removed or could not be
        trusted is listed in ``warnings``.

    Returns
    -------
    dict
        JSON-ready, with keys:

        ``compiler_version`` (str or None); ``kind`` (``"op-log"`` or
        ``"console"``); ``input_model``/``output_model`` (as printed, or
        None); ``operators``: ``{"operator", "count", "status"}`` rows in file
        order; ``truncated_table``: the console listed only the unmapped rows
        (``... All other operators were mapped successfully``);
        ``ops_on_tpu``, ``ops_on_cpu``, ``total_ops`` (int or None when
        unknown: the printed counts when present, else the table's sums --
        ``Mapped to Edge TPU`` vs every other status -- else, for a console
        that compiled everything and printed no count lines, ``Total number
        of operations`` and 0); ``subgraphs``, ``compile_ms``,
        ``input_size_bytes``, ``output_size_bytes``, ``on_chip_used_bytes``,
        ``on_chip_remaining_bytes``, ``on_chip_available_bytes`` (v2.0) and
        ``off_chip_used_bytes`` only when printed; ``error``: None or
        ``{"kind", "message", "lines", "advice"}`` where ``kind`` is one of
        :data:`ERROR_KINDS`, ``message`` the error line that decided the kind
        and ``lines`` every error line in order; ``succeeded`` (bool, or None
        when unknown, e.g. for an op log); ``warnings`` (error lines of a
        compile that still succeeded, table/count mismatches); ``runs``
        (compiler invocations in the text); ``attempts`` (one summary per
        compile attempt); ``internal_error_seen`` and
        ``flaky_internal_error`` (an internal error and a success in the same
        text); ``counts_trusted`` (False when a table row was cut mid-status or
        the text ends inside the table: the counts may be low).

        With several attempts the counts, table and figures come from the
        last attempt that printed op counts, while ``error`` and
        ``succeeded`` describe the last attempt: log 43 (a success, then
        ``Internal compiler error``) gives 6 / 18 with an ``internal_error``.
        Text with no compiler output at all gets an ``"other"`` error.
    """
    text, cleaned = _decode_and_clean(text)
    parsed = [_parse_block(b) for b in _split_blocks(_unwrap(text))]
    blocks = [r for r, meaningful in parsed if meaningful]
    if not blocks:
        return _ordered(_no_output_result())
    result = _combine_blocks(blocks)
    result["warnings"] = cleaned + result["warnings"]
    if _ends_inside_table(text):
        _distrust(result, "the text ends inside the operator table without a final newline: "
                          "the table may be cut")
    return _ordered(result)


def _decode_and_clean(text: str | bytes) -> tuple[str, list[str]]:
    decoded: list[str] = []
    if isinstance(text, (bytes, bytearray)):
        text, decoded = decode_log(bytes(text))
    text, cleaned = clean_text(text)
    return text, decoded + cleaned


def _ends_inside_table(text: str) -> bool:
    """True when the last line is a table row and the text has no final newline."""
    if not text or text.endswith("\n"):
        return False
    last = text.splitlines()[-1].strip()
    return bool(_ROW.match(last) or _PARTIAL_ROW.match(last))


def clean_text(text: str) -> tuple[str, list[str]]:
    r"""Remove what terminals and editors add to a log: ANSI colours, NULs, CRs.

    Parameters
    ----------
    text : str
        A decoded log.

    Returns
    -------
    text : str
        The text without ANSI escape sequences, NUL characters and carriage
        returns of CRLF line ends.
    warnings : list of str
        One line per kind of thing removed (ANSI codes are normal in a
        captured terminal and give no warning; NULs do).

    Examples
    --------
    >>> clean_text("\x1b[32mCompilation succeeded!\x1b[0m\r\n")
    ('Compilation succeeded!\n', [])
    >>> clean_text("Input: a.tflite\x00\x00\n")[1]
    ['removed 2 NUL characters']
    """
    warnings = []
    nuls = text.count("\x00")
    if nuls:
        warnings.append(f"removed {nuls} NUL characters")
    text = _ANSI.sub("", text.replace("\x00", "")).replace("\r\n", "\n").replace("\r", "\n")
    return text, warnings


def decode_log(data: bytes) -> tuple[str, list[str]]:
    r"""Decode a log file's bytes: UTF-8, or UTF-16 as a PowerShell redirect writes it.

    Parameters
    ----------
    data : bytes
        The file's content.

    Returns
    -------
    text : str
    warnings : list of str
        Says when the file was UTF-16 or when undecodable bytes were replaced.

    Examples
    --------
    >>> decode_log("Input: a.tflite\n".encode("utf-16"))
    ('Input: a.tflite\n', ['the file is UTF-16 (a Windows PowerShell redirect?); decoded'])
    >>> decode_log(b"ok \xff\n")[1]
    ['1 bytes that are not UTF-8 were replaced']
    """
    encoding = _utf16_encoding(data)
    if encoding:
        text = data.decode(encoding, errors="replace")
        note = "the file is UTF-16 (a Windows PowerShell redirect?); decoded"
        return text.lstrip("\ufeff"), [note]
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    text = text.lstrip("\ufeff")
    return text, ([f"{bad} bytes that are not UTF-8 were replaced"] if bad else [])


def _utf16_encoding(data: bytes) -> str | None:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    sample = data[:200]
    if len(sample) >= 4 and sample[1::2].count(0) > 0.8 * (len(sample) // 2):
        return "utf-16-le"
    if len(sample) >= 4 and sample[0::2].count(0) > 0.8 * (len(sample) // 2):
        return "utf-16-be"
    return None


def _no_output_result() -> dict:
    """The result for a text with no compiler output at all."""
    r = _empty_result()
    r.update(error={"kind": "other", "message": "no edgetpu_compiler output found",
                    "lines": [], "advice": advice("other")},
             succeeded=False, runs=0, attempts=[], internal_error_seen=False,
             flaky_internal_error=False)
    return r


def _combine_blocks(blocks: list[dict]) -> dict:
    """One result from the parsed attempts (see :func:`parse_compiler_output`)."""
    last = blocks[-1]
    complete = [r for r in blocks if r["ops_on_tpu"] is not None]
    result = dict(complete[-1] if complete else last)
    result["error"], result["succeeded"] = last["error"], last["succeeded"]
    if result["compiler_version"] is None:
        result["compiler_version"] = next(
            (r["compiler_version"] for r in reversed(blocks) if r["compiler_version"]), None)
    if any(r["kind"] == "console" for r in blocks):
        result["kind"] = "console"
    result["runs"] = max(1, sum(r["compiler_version"] is not None for r in blocks))
    result["attempts"] = [_summary(r) for r in blocks]
    internal = any(r["error"] and r["error"]["kind"] == "internal_error" for r in blocks)
    result["internal_error_seen"] = internal
    result["flaky_internal_error"] = internal and any(r["succeeded"] for r in blocks)
    if result["error"]:
        result["error"] = dict(result["error"], advice=advice(result["error"]["kind"]))
    return result


def _ordered(r: dict) -> dict:
    """The same dict with keys in a fixed, readable order (unknown keys last)."""
    return {**{k: r[k] for k in _KEY_ORDER if k in r},
            **{k: v for k, v in r.items() if k not in _KEY_ORDER}}


def _rows(rows: list[dict], unmapped_only: bool = False) -> Counter:
    return Counter((x["operator"], x["count"], x["status"]) for x in rows
                   if not (unmapped_only and x["status"] == MAPPED))


def _basename(path: str | None) -> str | None:
    return re.split(r"[\\/]", path)[-1] if path else None


def parse_compiler_files(console_text: str | bytes | None = None,
                         log_text: str | bytes | None = None) -> dict:
    """Merge the console output and the op log of one compile.

    Parameters
    ----------
    console_text : str, optional
        What ``edgetpu_compiler`` printed.
    log_text : str, optional
        The ``*_edgetpu.log`` it wrote.

    Returns
    -------
    dict
        :func:`parse_compiler_output`'s keys, plus ``sources`` (which texts
        were given), ``table_source`` (``"console"``, ``"op-log"`` or None)
        and ``disagreements`` (list of str). The table comes from the log when
        the console printed none or a truncated one (``truncated_table`` is
        then False: the rows are complete); counts, figures, ``error`` and
        ``succeeded`` come from the console, counts from the log only when the
        console has none and did not fail. A disagreement is listed when the
        two differ in op counts, unmapped rows, compiler version or model
        name, or when an op log accompanies a failed compile (it is probably
        left over from an earlier one).

    Raises
    ------
    ValueError
        When neither text is given.
    """
    if console_text is None and log_text is None:
        raise ValueError("give console_text, log_text or both")
    con = parse_compiler_output(console_text) if console_text is not None else None
    log = parse_compiler_output(log_text) if log_text is not None else None
    only = con or log
    if con is None or log is None:
        return dict(only, sources=[only["kind"]],
                    table_source=(only["kind"] if only["operators"] else None),
                    disagreements=[])
    merged = dict(con, sources=[con["kind"], log["kind"]])
    merged["table_source"] = "console" if con["operators"] else None
    disagreements: list[str] = []
    if log["kind"] != "op-log":
        disagreements.append("the op log text does not look like an op log")
    _merge_table(merged, con, log, disagreements)
    if con["succeeded"] is False and not con["flaky_internal_error"]:
        disagreements.append("the console reports a failed compile but an op log was given "
                             "(probably from an earlier compile)")
    _merge_counts(merged, con, log, disagreements)
    _merge_identity(merged, con, log, disagreements)
    merged["counts_trusted"] = con["counts_trusted"] and log["counts_trusted"]
    merged["warnings"] = con["warnings"] + [f"op log: {w}" for w in log["warnings"]]
    merged["disagreements"] = disagreements
    return merged


def _merge_table(merged: dict, con: dict, log: dict, disagreements: list[str]) -> None:
    """Take the op log's table when the console printed none or a truncated one."""
    if (not con["operators"] or con["truncated_table"]) and log["operators"]:
        if con["truncated_table"] and (_rows(con["operators"], unmapped_only=True)
                                       != _rows(log["operators"], unmapped_only=True)):
            disagreements.append("the console's unmapped rows differ from the op log's")
        merged["operators"] = log["operators"]
        merged["truncated_table"] = False
        merged["table_source"] = "op-log"
    elif (con["operators"] and log["operators"]
          and _rows(con["operators"]) != _rows(log["operators"])):
        disagreements.append("the console's operator table differs from the op log's")


def _merge_counts(merged: dict, con: dict, log: dict, disagreements: list[str]) -> None:
    """Compare the op counts; take the log's when the console has none and did not fail."""
    for key in ("ops_on_tpu", "ops_on_cpu"):
        if con[key] is not None and log[key] is not None and con[key] != log[key]:
            disagreements.append(f"{key}: console {con[key]} vs op log {log[key]}")
    if con["ops_on_tpu"] is None and con["succeeded"] is not False:
        merged["ops_on_tpu"], merged["ops_on_cpu"] = log["ops_on_tpu"], log["ops_on_cpu"]
        if merged["total_ops"] is None and log["total_ops"] is not None:
            merged["total_ops"] = log["total_ops"]
        elif merged["total_ops"] is not None and log["total_ops"] is not None \
                and merged["total_ops"] != log["total_ops"]:
            disagreements.append(f"total_ops: console {merged['total_ops']} vs op log "
                                 f"{log['total_ops']}")


def _merge_identity(merged: dict, con: dict, log: dict, disagreements: list[str]) -> None:
    """Compare the compiler version and the model name of the two texts."""
    cv, lv = con["compiler_version"], log["compiler_version"]
    if cv and lv and cv != lv:
        disagreements.append(f"compiler_version: console {cv} vs op log {lv}")
    merged["compiler_version"] = cv or lv
    ci, li = _basename(con["input_model"]), _basename(log["input_model"])
    if ci and li and ci != li:
        disagreements.append(f"input model: console {ci} vs op log {li}")
