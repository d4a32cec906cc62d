"""Parse ``edgetpu_compiler`` output: the console text and the ``*_edgetpu.log`` op table.

Formats (see ``../shared/edgetpu/FACTS.md``, section 1): the op log is a
header plus a fixed-width ``Operator / Count / Status`` table with no totals;
the console prints sizes, memory figures, subgraph and op counts (the
``Number of operations that will run on ...`` lines only when not everything
maps), optionally the same table (``-s``), possibly truncated to the unmapped
rows, and one-line failures. Pure functions: text in, JSON-ready dict out.
"""

from __future__ import annotations

import re

MAPPED = "Mapped to Edge TPU"

_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
_SIZE = r"([0-9.]+)\s*(B|KiB|MiB|GiB)"
_FIELDS = {
    "input_size_bytes": r"^Input size:\s*" + _SIZE,
    "output_size_bytes": r"^Output size:\s*" + _SIZE,
    "on_chip_available_bytes": r"^On-chip memory available for caching model parameters:\s*"
                               + _SIZE,
    "on_chip_used_bytes": r"^On-chip memory used for caching model parameters:\s*" + _SIZE,
    "on_chip_remaining_bytes": r"^On-chip memory remaining for caching model parameters:\s*"
                               + _SIZE,
    "off_chip_used_bytes": r"^Off-chip memory used for streaming uncached model parameters:\s*"
                           + _SIZE,
}
_INTS = {
    "subgraphs": r"^Number of Edge TPU subgraphs:\s*(\d+)",
    "total_ops": r"^Total number of operations:\s*(\d+)",
    "ops_on_tpu": r"^Number of operations that will run on Edge TPU:\s*(\d+)",
    "ops_on_cpu": r"^Number of operations that will run on CPU:\s*(\d+)",
    "compile_ms": r"^Model compiled successfully in (\d+) ms",
}
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")
_ERRORS = (
    ("op_version", re.compile(r"Didn't find op for builtin opcode")),
    ("not_quantized", re.compile(r"Model not quantized")),
    ("dynamic_shapes", re.compile(r"dynamic-sized tensors")),
    ("large_activations", re.compile(r"large activation tensors")),
    ("internal_error", re.compile(r"Internal compiler error")),
    ("unparseable_model", re.compile(r"Model could not be parsed|Invalid model")),
    ("other", re.compile(r"Compilation failed|terminating with uncaught exception|^ERROR:")),
)

ADVICE = {
    "not_quantized": "convert with full-integer post-training quantization: "
                     "optimizations=[DEFAULT], a representative dataset, "
                     "supported_ops=[TFLITE_BUILTINS_INT8], int8/uint8 input and output "
                     "(python -m benchmark.convert)",
    "op_version": "the converter emitted op versions newer than compiler 16.0 parses: convert "
                  "with converter.experimental_new_converter = False or an older TensorFlow, "
                  "or check the analyzer's op-version table",
    "dynamic_shapes": "export the model with a fixed batch of 1 and static shapes (no "
                      "SHAPE/STRIDED_SLICE/PACK around Flatten)",
    "large_activations": "reduce the input size or split the model "
                         "(-i/--intermediate_tensors, -n segments)",
    "internal_error": "known to be flaky: retry once; then try without -a, another -m, or "
                      "cut the model with -i before the failing part",
    "unparseable_model": "the compiler could not read the model: check it loads in the TFLite "
                         "interpreter and that every op version is supported",
    "other": "read the compiler message; run the static analyzer "
             "(benchmark.compile.analyzer) to see which op fails",
}


def advice(error_kind: str | None) -> str:
    """What to try for a failure kind (empty string when there is no error)."""
    return ADVICE.get(error_kind, "") if error_kind else ""


def to_bytes(value: str, unit: str) -> int:
    """``"1.70", "MiB"`` -> 1782579 (rounded to whole bytes).

    Examples
    --------
    >>> to_bytes("1.70", "MiB"), to_bytes("0.00", "B"), to_bytes("1.75", "KiB")
    (1782579, 0, 1792)
    """
    return int(round(float(value) * _UNITS[unit]))


def _unwrap(text: str) -> list[str]:
    """Lines with paragraphs wrapped at ~72 columns joined back (log 43's paste)."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if (out and line and not line.startswith(("$", " ")) and out[-1]
                and out[-1].startswith("Model successfully compiled but")
                and not out[-1].endswith("model-reqs.")):
            out[-1] = out[-1] + " " + line.strip()
        else:
            out.append(line)
    return out


def _split_runs(lines: list[str]) -> list[list[str]]:
    """One block per ``Edge TPU Compiler version`` header (pastes can hold several runs)."""
    runs: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("Edge TPU Compiler version") and any(
                x.startswith("Edge TPU Compiler version") for x in runs[-1]):
            runs.append([])
        runs[-1].append(line)
    return runs


def _parse_block(lines: list[str]) -> dict:
    text = "\n".join(lines)
    r: dict = {"compiler_version": None, "operators": [], "error": None,
               "truncated_table": False}
    m = re.search(r"Edge TPU Compiler version (\S+)", text)
    if m:
        r["compiler_version"] = m.group(1)
    in_table = False
    for line in lines:
        s = line.strip()
        if s.startswith("Operator") and "Count" in s and "Status" in s:
            in_table = True
            continue
        if in_table:
            row = _ROW.match(s)
            if row:
                r["operators"].append({"operator": row.group(1), "count": int(row.group(2)),
                                       "status": row.group(3)})
            elif s.startswith("... All other operators were mapped"):
                r["truncated_table"] = True
            elif s and not s.startswith("Compilation"):
                in_table = False
        for key, pat in _FIELDS.items():
            m = re.match(pat, s)
            if m:
                r[key] = to_bytes(m.group(1), m.group(2))
        for key, pat in _INTS.items():
            m = re.match(pat, s)
            if m:
                r[key] = int(m.group(1))
    # _ERRORS is ordered by specificity: "Invalid model" follows "Model not quantized" or
    # an op-version message, and "Compilation failed!" follows most causes.
    for kind, pat in _ERRORS:
        hit = next((ln.strip() for ln in lines if pat.search(ln.strip())), None)
        if hit is not None:
            r["error"] = {"kind": kind, "message": hit}
            break
    r["kind"] = "op-log" if re.search(r"^Input: ", text, re.M) and r["operators"] \
        and "Input model:" not in text else "console"
    if ("Compilation succeeded" in text or "Model compiled successfully" in text
            or "Output model:" in text):
        r["succeeded"] = r["error"] is None
    elif r["error"] is not None:
        r["succeeded"] = False
    else:
        r["succeeded"] = None
    _derive_counts(r)
    return r


def _derive_counts(r: dict) -> None:
    rows = r["operators"]
    mapped = sum(x["count"] for x in rows if x["status"] == MAPPED)
    unmapped = sum(x["count"] for x in rows if x["status"] != MAPPED)
    if "ops_on_tpu" in r and "ops_on_cpu" in r:
        pass  # printed totals win
    elif r.get("total_ops") is not None and r.get("succeeded") and not rows:
        # everything mapped: the console prints no count lines (logs 25, 27)
        r["ops_on_tpu"], r["ops_on_cpu"] = r["total_ops"], 0
    elif rows and not r["truncated_table"]:
        r["ops_on_tpu"], r["ops_on_cpu"] = mapped, unmapped
    elif rows and r.get("total_ops") is not None:
        r["ops_on_tpu"], r["ops_on_cpu"] = r["total_ops"] - unmapped, unmapped
    if "total_ops" not in r and "ops_on_tpu" in r:
        r["total_ops"] = r["ops_on_tpu"] + r["ops_on_cpu"]


def parse_compiler_output(text: str) -> dict:
    """Parse one console output or op log into a JSON-ready dict.

    Returns
    -------
    dict
        ``compiler_version``, ``kind`` (``op-log``/``console``), ``operators``
        (``{operator, count, status}`` rows in file order), ``ops_on_tpu``,
        ``ops_on_cpu``, ``total_ops``, ``subgraphs``, memory figures in bytes
        when printed, ``compile_ms``, ``error`` (None or ``{kind, message}``),
        ``succeeded`` (None when unknown), ``truncated_table``, ``runs`` (number
        of compiler runs in the text) and ``flaky_internal_error`` when one run
        succeeded and another hit an internal error (the later run's error is
        kept, the counts come from the run that printed them).
    """
    runs = [_parse_block(b) for b in _split_runs(_unwrap(text)) if any(x.strip() for x in b)]
    if not runs:
        return {"compiler_version": None, "kind": "console", "operators": [], "error":
                {"kind": "other", "message": "empty compiler output"}, "succeeded": False,
                "truncated_table": False, "runs": 0}
    last = runs[-1]
    with_counts = [r for r in runs if "ops_on_tpu" in r]
    result = dict(with_counts[-1] if with_counts else last)
    result["error"], result["succeeded"] = last["error"], last["succeeded"]
    result["runs"] = len(runs)
    if len(runs) > 1:
        result["flaky_internal_error"] = (
            any(r["error"] and r["error"]["kind"] == "internal_error" for r in runs)
            and any(r["succeeded"] for r in runs))
    if result["error"]:
        result["error"]["advice"] = advice(result["error"]["kind"])
    return result


def parse_compiler_files(console_text: str | None = None, log_text: str | None = None) -> dict:
    """Merge a compile's console output and its op log.

    The op table comes from the log when the console has none or a truncated
    one; totals and memory figures come from the console. ``disagreements``
    lists count mismatches between the two.
    """
    if console_text is None and log_text is None:
        raise ValueError("give console_text, log_text or both")
    con = parse_compiler_output(console_text) if console_text is not None else None
    log = parse_compiler_output(log_text) if log_text is not None else None
    if con is None:
        return dict(log, disagreements=[])
    if log is None:
        return dict(con, disagreements=[])
    merged = dict(con)
    if not con["operators"] or con["truncated_table"]:
        merged["operators"] = log["operators"]
        merged["truncated_table"] = False
    merged["compiler_version"] = con["compiler_version"] or log["compiler_version"]
    disagreements = []
    for key in ("ops_on_tpu", "ops_on_cpu"):
        if key in con and key in log and con[key] != log[key]:
            disagreements.append(f"{key}: console {con[key]} vs op log {log[key]}")
        elif key not in merged and key in log:
            merged[key] = log[key]
    if "total_ops" not in merged and "ops_on_tpu" in merged:
        merged["total_ops"] = merged["ops_on_tpu"] + merged["ops_on_cpu"]
    merged["disagreements"] = disagreements
    return merged
