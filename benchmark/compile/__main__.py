"""Compile for the Edge TPU, or predict the result: ``python -m benchmark.compile``.

    python -m benchmark.compile MODEL.tflite [...] [--out-dir DIR] [-m N] [-n N] [-a] [-t S]
                                [--analyze-only] [--json]
    python -m benchmark.compile --parse-log FILE [--console FILE]
    python -m benchmark.compile --inspect FILE_edgetpu.tflite [...] [--json]

With ``edgetpu_compiler`` on PATH each model is compiled (``-s`` so the op
table is printed; an internal compiler error, known to be flaky, is retried
once), its console output is saved as ``<stem>_compile_console.log``, the
console and ``<stem>_edgetpu.log`` are parsed and merged, and the static
analyzer's prediction is shown beside it with disagreements flagged. Without
the compiler the static analyzer alone answers. Results are saved as
``<out-dir>/<stem>_compile.json``; the default ``--out-dir`` is a new
``runs/compile-<UTC timestamp>/`` under the current directory (never the
model's own folder). Models that share a file name (``a/x.tflite``,
``b/x.tflite``) get sub-folders named after their folders (``<out-dir>/a/``,
``<out-dir>/b/``) so that no record overwrites another. Exit code 1 when a
model fails (or is predicted to fail) to compile.

``--parse-log`` only parses saved compiler output and prints it as JSON.
``--inspect`` reads compiled models (:mod:`benchmark.compile.inspect`): the
Edge TPU segments, the ops left on the CPU, on-chip/off-chip parameter bytes,
the parameter-caching group and the pipeline segment; a table, or JSON with
``--json``; nothing is written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchmark.cli import main_wrapper, prog_name
from benchmark.compile.analyzer import analyze
from benchmark.compile.config import COMPILER_DEFAULT_TIMEOUT, CompileConfig
from benchmark.compile.config import parse_args as _parse_args
from benchmark.compile.logparse import advice, parse_compiler_files, parse_compiler_output
from benchmark.errors import BackendUnavailable, DataError, UsageError
from benchmark.results import atomic_write_bytes, write_json

COMPILER = "edgetpu_compiler"
#: Extra seconds the wrapper waits beyond ``--timeout-sec`` before killing the compiler.
KILL_GRACE_SEC = 60


def parse_args(argv=None) -> CompileConfig:
    """Parse and validate the command line (see the module docstring and :class:`CompileConfig`).

    Raises
    ------
    UsageError
        For combinations that make no sense (models together with
        ``--parse-log``/``--console``, non-positive numbers).
    """
    return _parse_args(argv, prog=prog_name("python -m benchmark.compile"),
                       description=__doc__.split("\n")[0])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()  # decoded by logparse (UTF-8 or UTF-16), warnings kept
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def compiler_command(args: CompileConfig, model: Path, out_dir: Path) -> list[str]:
    """The ``edgetpu_compiler`` command line for one model.

    Parameters
    ----------
    args : CompileConfig
        The options (:func:`parse_args`).
    model : Path
        The ``.tflite`` model.
    out_dir : Path
        The compiler's ``-o`` directory.

    Returns
    -------
    list of str
    """
    cmd = [COMPILER, "-s", "-o", str(out_dir)]
    if args.timeout_sec != COMPILER_DEFAULT_TIMEOUT:
        cmd += ["-t", str(args.timeout_sec)]
    if args.min_runtime_version is not None:
        cmd += ["-m", str(args.min_runtime_version)]
    if args.num_segments is not None:
        cmd += ["-n", str(args.num_segments)]
    if args.enable_multiple_subgraphs:
        cmd.append("-a")
    return cmd + [str(model)]


def _file_state(path: Path):
    """What identifies one version of a file (None when it does not exist)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _run_once(cmd: list[str], timeout_sec: int) -> tuple[str, int | None]:
    """Run the compiler once; returns (stdout + stderr, exit code or None on timeout)."""
    limit = timeout_sec + KILL_GRACE_SEC
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              timeout=limit)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        return (out or "") + (err or "") + f"\nCompilation failed: {COMPILER} did not " \
            f"finish within {limit} s and was killed.\n", None
    except OSError as e:
        raise BackendUnavailable(f"cannot run {cmd[0]}: {e.strerror or e}") from None
    return proc.stdout + proc.stderr, proc.returncode


def _attempts(cmd: list[str], timeout_sec: int, model: Path) -> tuple[list[str], int | None]:
    """Run the compiler, once more after an internal compiler error; (consoles, last exit code)."""
    consoles, returncode = [], None
    for attempt in (1, 2):
        console, returncode = _run_once(cmd, timeout_sec)
        consoles.append(console.rstrip("\n") + "\n")
        parsed = parse_compiler_output(console)
        if not (parsed["error"] and parsed["error"]["kind"] == "internal_error") or attempt == 2:
            break
        print(f"{model.name}: internal compiler error (known to be flaky), retrying once",
              file=sys.stderr)
    return consoles, returncode


def _settle_outcome(result: dict, returncode: int | None) -> None:
    """Make ``succeeded``/``error`` agree with the exit code; add advice to an error."""
    if returncode not in (0, None) and not result["error"]:
        result["error"] = {"kind": "other", "lines": [],
                           "message": f"{COMPILER} exited with code {returncode}"}
        result["succeeded"] = False
    elif returncode == 0 and result["succeeded"] is None and not result["error"]:
        result["succeeded"] = result["ops_on_tpu"] is not None
        if not result["succeeded"]:
            result["error"] = {"kind": "other", "lines": [],
                               "message": f"{COMPILER} printed no compile result"}
    if result["error"] and "advice" not in result["error"]:
        result["error"]["advice"] = advice(result["error"]["kind"])


def _segment_logs(out_dir: Path, model: Path, num_segments: int) -> list[dict]:
    """Op counts and tables of the ``-n`` segments' op logs."""
    logs = []
    for path in sorted(out_dir.glob(f"{model.stem}_segment_*_of_{num_segments}_edgetpu.log")):
        seg = parse_compiler_output(_read(path))
        logs.append({"op_log": str(path), "ops_on_tpu": seg["ops_on_tpu"],
                     "ops_on_cpu": seg["ops_on_cpu"], "operators": seg["operators"]})
    return logs


def run_compiler(args: CompileConfig, model: Path, out_dir: Path) -> dict:
    """Compile one model, retrying an internal compiler error once, and parse the result.

    Parameters
    ----------
    args : CompileConfig
        The options (:func:`parse_args`).
    model : Path
        The ``.tflite`` model.
    out_dir : Path
        Existing directory for the compiler's outputs.

    Returns
    -------
    dict
        :func:`~benchmark.compile.logparse.parse_compiler_files` of every
        attempt's console output (so a retried internal error shows as
        ``flaky_internal_error``) and the op log this compile wrote, plus
        ``command``, ``returncode`` (None after a timeout), ``attempts_run``,
        ``console_log`` and ``op_log`` (paths, or None) and, with
        ``--num-segments``, ``segment_logs``. An op log left from an earlier
        compile is ignored.
    """
    cmd = compiler_command(args, model, out_dir)
    log_path = out_dir / f"{model.stem}_edgetpu.log"
    before = _file_state(log_path)
    consoles, returncode = _attempts(cmd, args.timeout_sec, model)
    console_path = out_dir / f"{model.stem}_compile_console.log"
    all_consoles = "".join(consoles)
    atomic_write_bytes(console_path, all_consoles.encode())
    fresh_log = _file_state(log_path) not in (None, before)
    result = parse_compiler_files(all_consoles, _read(log_path) if fresh_log else None)
    _settle_outcome(result, returncode)
    if args.num_segments:
        result["segment_logs"] = _segment_logs(out_dir, model, args.num_segments)
    result.update(command=cmd, returncode=returncode, attempts_run=len(consoles),
                  console_log=str(console_path), op_log=str(log_path) if fresh_log else None)
    return result


def compare_with_analyzer(compiled: dict, predicted: dict) -> list[str]:
    """Where the static analyzer and the real compiler disagree.

    Parameters
    ----------
    compiled, predicted : dict
        The parsed compiler result and the analyzer's prediction.

    Returns
    -------
    list of str
        One line per differing op count or error kind.
    """
    out = []
    for key in ("ops_on_tpu", "ops_on_cpu"):
        if compiled.get(key) is not None and compiled[key] != predicted.get(key):
            out.append(f"{key}: compiler {compiled[key]}, analyzer {predicted.get(key)}")
    ce, pe = compiled.get("error"), predicted.get("error")
    if (ce or {}).get("kind") != (pe or {}).get("kind"):
        out.append(f"error: compiler {(ce or {}).get('kind')}, analyzer {(pe or {}).get('kind')}")
    return out


def print_table(name: str, r: dict) -> None:
    """Print one model's op counts, op table and error with advice."""
    from tabulate import tabulate
    print(f"{name}: {r.get('ops_on_tpu')} ops on the Edge TPU, {r.get('ops_on_cpu')} on the CPU"
          f" ({r.get('source', 'compiler')})")
    if r["operators"]:
        print(tabulate([[x["operator"], x["count"], x["status"]] for x in r["operators"]],
                       headers=["operator", "count", "status"]))
    if r.get("flaky_internal_error"):
        print("note: an internal compiler error occurred before the successful run (flaky)")
    if r.get("error"):
        print(f"error ({r['error']['kind']}): {r['error']['message']}")
        if r["error"].get("detail"):
            print(f"  {r['error']['detail']}")
        print(f"try: {r['error'].get('advice') or advice(r['error']['kind'])}")


def output_dirs(models, out_dir: Path) -> dict[Path, Path]:
    """Each model's output folder: ``out_dir``, or a sub-folder for models sharing a stem.

    The compiler names its outputs after the model's stem, and so do the
    records; models with the same stem from different folders get
    ``out_dir/<the last folders that tell them apart>``. The same file given
    twice appears once.

    Examples
    --------
    >>> d = output_dirs([Path("/m/full/x.tflite"), Path("/m/verification/x.tflite"),
    ...                  Path("/m/full/y.tflite"), Path("/m/full/x.tflite")], Path("out"))
    >>> [str(v) for v in d.values()]
    ['out/full', 'out/verification', 'out']
    """
    unique: dict[Path, Path] = {}
    for m in models:
        unique.setdefault(Path(m).resolve(), Path(m))
    by_stem: dict[str, list[Path]] = {}
    for resolved in unique:
        by_stem.setdefault(resolved.stem, []).append(resolved)
    dirs: dict[Path, Path] = {}
    for resolved in unique:
        group = by_stem[resolved.stem]
        dirs[unique[resolved]] = out_dir if len(group) == 1 else \
            out_dir / _distinguishing_folders(resolved, group)
    return dirs


def _distinguishing_folders(model: Path, group: list[Path]) -> Path:
    """The fewest trailing parent folders of ``model`` that no other model in ``group`` has."""
    parents = {m: m.parent.parts[1:] for m in group}   # without the root
    k = 1
    while len({p[-k:] for p in parents.values()}) < len(group):
        k += 1
    return Path(*parents[model][-k:])


def _predict(model: Path, have_compiler: bool, multiple_subgraphs: bool = False) -> dict:
    """The static analyzer's prediction; an unreadable model fails only without a compiler."""
    try:
        return analyze(model, multiple_subgraphs=multiple_subgraphs)
    except DataError as e:   # not a (readable) TFLite flatbuffer; the message names the file
        if not have_compiler:
            raise
        return {"source": "analyzer", "error": {"kind": "other", "message": str(e)},
                "operators": []}


def _compile_one(args: CompileConfig, model: Path, out_dir: Path,
                 have_compiler: bool) -> tuple[dict, int]:
    """Compile (or analyze) one model, print it and write ``<out_dir>/<stem>_compile.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict = {"model": str(model)}
    predicted = _predict(model, have_compiler, args.enable_multiple_subgraphs)
    record["analyzer"] = predicted
    if have_compiler:
        compiled = run_compiler(args, model, out_dir)
        compiled["analyzer_disagreements"] = compare_with_analyzer(compiled, predicted)
        record["compiler"] = compiled
        if not args.json:
            print_table(model.name, compiled)
            for d in compiled["analyzer_disagreements"]:
                print(f"  analyzer disagrees: {d}")
            for d in compiled["disagreements"]:
                print(f"  console and op log disagree: {d}")
        status = 1 if compiled.get("error") or not compiled.get("succeeded") else 0
    else:
        if not args.json:
            print_table(model.name, predicted)
            for w in predicted.get("warnings", []):
                print(f"warning: {w}")
            for u in predicted.get("uncertain", []):
                print(f"uncertain: {u}")
        status = 1 if predicted.get("error") else 0
    write_json(out_dir / f"{model.stem}_compile.json", record)
    if args.json:
        print(json.dumps(record, indent=2))
    return record, status


def _inspect(args: CompileConfig) -> int:
    """``--inspect``: print what each compiled file holds (exit 1 if one is not compiled)."""
    from benchmark.compile.inspect import caching_groups, format_compiled, inspect_compiled
    infos = [inspect_compiled(p) for p in args.inspect]
    groups = caching_groups(infos)
    if args.json:
        print(json.dumps({"models": [i.to_dict() for i in infos], "caching_groups": groups},
                         indent=2))
    else:
        for info in infos:
            print(format_compiled(info))
        for token, files in groups.items():
            print(f"parameter-caching group {token}: " + ", ".join(Path(f).name for f in files))
    return 0 if all(i.is_compiled for i in infos) else 1


def main(argv=None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    args = parse_args(argv)
    if args.inspect:
        return _inspect(args)
    if args.parse_only:
        console = _read(args.console) if args.console else None
        log = _read(args.parse_log) if args.parse_log else None
        print(json.dumps(parse_compiler_files(console, log), indent=2))
        return 0
    if not args.models:
        raise UsageError("give one or more .tflite models, or --parse-log FILE")
    for model in args.models:
        if not model.is_file():
            raise DataError(f"model file not found: {model}")
    have_compiler = not args.analyze_only and shutil.which(COMPILER) is not None
    if not have_compiler and not args.analyze_only:
        print(f"{COMPILER} not found on PATH (it ships in Coral's apt repository, x86-64 Linux "
              "only): showing the static analyzer's prediction", file=sys.stderr)
    out_dir = args.resolved_out_dir()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is a file, not a folder")
    from benchmark.preflight import check_output_dir
    check_output_dir(out_dir, option="--out-dir")
    dirs = output_dirs(args.models, out_dir)
    status = 0
    for model, model_dir in dirs.items():
        status = max(status, _compile_one(args, model, model_dir, have_compiler)[1])
    if args.out_dir is None:
        print(f"records written to {out_dir}/", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.compile", main))
