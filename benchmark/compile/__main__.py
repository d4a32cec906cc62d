"""Compile for the Edge TPU, or predict the result: ``python -m benchmark.compile``.

    python -m benchmark.compile MODEL.tflite [...] [--out-dir DIR] [-m N] [-n N] [-a] [-t S]
    python -m benchmark.compile --parse-log FILE [--console FILE]

With ``edgetpu_compiler`` on PATH each model is compiled (``-s`` so the op
table is printed; an internal compiler error, known to be flaky, is retried
once), its console output and ``*_edgetpu.log`` are parsed, and the static
analyzer's prediction is shown beside it with disagreements flagged. Without
the compiler the static analyzer alone answers. Results are saved as
``<out-dir>/<stem>_compile.json``. Exit code 1 when a model fails (or is
predicted to fail) to compile.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchmark.cli import main_wrapper
from benchmark.compile.analyzer import analyze
from benchmark.compile.logparse import advice, parse_compiler_files, parse_compiler_output
from benchmark.errors import DataError
from benchmark.results import atomic_write_bytes, write_json

COMPILER = "edgetpu_compiler"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmark.compile",
                                description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="*", type=Path, help="int8 .tflite models")
    p.add_argument("--parse-log", type=Path, metavar="FILE",
                   help="parse a compiler op log or console output and print it as JSON")
    p.add_argument("--console", type=Path, metavar="FILE",
                   help="with --parse-log: the console output of the same compile")
    p.add_argument("-o", "--out-dir", type=Path, default=None,
                   help="where compiled models, logs and JSON go (default: beside each model)")
    p.add_argument("-m", "--min-runtime-version", type=int, default=None)
    p.add_argument("-n", "--num-segments", type=int, default=None)
    p.add_argument("-a", "--enable-multiple-subgraphs", action="store_true")
    p.add_argument("-t", "--timeout-sec", type=int, default=180)
    p.add_argument("--analyze-only", action="store_true",
                   help="do not run the compiler even when it is installed")
    return p.parse_args(argv)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None


def compiler_command(args, model: Path, out_dir: Path) -> list[str]:
    cmd = [COMPILER, "-s", "-o", str(out_dir), "-t", str(args.timeout_sec)]
    if args.min_runtime_version is not None:
        cmd += ["-m", str(args.min_runtime_version)]
    if args.num_segments is not None:
        cmd += ["-n", str(args.num_segments)]
    if args.enable_multiple_subgraphs:
        cmd.append("-a")
    return cmd + [str(model)]


def run_compiler(args, model: Path, out_dir: Path) -> dict:
    """Run the compiler (retrying an internal error once) and parse what it wrote."""
    cmd = compiler_command(args, model, out_dir)
    attempts = []
    for attempt in (1, 2):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=args.timeout_sec + 60)
        except subprocess.TimeoutExpired:
            raise DataError(f"{COMPILER} did not finish within {args.timeout_sec + 60} s "
                            f"on {model}") from None
        console = proc.stdout + proc.stderr
        attempts.append(console)
        parsed = parse_compiler_output(console)
        if not (parsed["error"] and parsed["error"]["kind"] == "internal_error"):
            break
        print(f"{model.name}: internal compiler error (known to be flaky), retrying once",
              file=sys.stderr)
    atomic_write_bytes(out_dir / f"{model.stem}_compile_console.log",
                       "\n".join(attempts).encode())
    log_path = out_dir / f"{model.stem}_edgetpu.log"
    log_text = log_path.read_text(errors="replace") if log_path.is_file() else None
    result = parse_compiler_files(console, log_text)
    result.update(command=cmd, returncode=proc.returncode, attempts=len(attempts))
    return result


def compare_with_analyzer(compiled: dict, predicted: dict) -> list[str]:
    """Where the static analyzer and the real compiler disagree."""
    out = []
    for key in ("ops_on_tpu", "ops_on_cpu"):
        if key in compiled and compiled[key] != predicted[key]:
            out.append(f"{key}: compiler {compiled[key]}, analyzer {predicted[key]}")
    ce, pe = compiled.get("error"), predicted.get("error")
    if (ce or {}).get("kind") != (pe or {}).get("kind"):
        out.append(f"error: compiler {(ce or {}).get('kind')}, analyzer {(pe or {}).get('kind')}")
    return out


def print_table(name: str, r: dict) -> None:
    from tabulate import tabulate
    print(f"{name}: {r.get('ops_on_tpu')} ops on the Edge TPU, {r.get('ops_on_cpu')} on the CPU"
          f" ({r.get('source', 'compiler')})")
    if r["operators"]:
        print(tabulate([[x["operator"], x["count"], x["status"]] for x in r["operators"]],
                       headers=["operator", "count", "status"]))
    if r.get("error"):
        print(f"error ({r['error']['kind']}): {r['error']['message']}")
        print(f"try: {r['error'].get('advice') or advice(r['error']['kind'])}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.parse_log:
        console = _read(args.console) if args.console else None
        r = parse_compiler_files(console, _read(args.parse_log))
        print(json.dumps(r, indent=2))
        return 0
    if not args.models:
        raise DataError("give one or more .tflite models, or --parse-log FILE")
    have_compiler = shutil.which(COMPILER) is not None and not args.analyze_only
    if not have_compiler and not args.analyze_only:
        print(f"{COMPILER} not found on PATH (it ships in Coral's apt repository, x86-64 Linux "
              "only): showing the static analyzer's prediction", file=sys.stderr)
    status = 0
    for model in args.models:
        if not model.is_file():
            raise DataError(f"model file not found: {model}")
        out_dir = args.out_dir or model.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            predicted = analyze(model)
        except ValueError as e:
            raise DataError(f"{model}: {e}") from None
        record = {"model": str(model), "analyzer": predicted}
        if have_compiler:
            compiled = run_compiler(args, model, out_dir)
            compiled["analyzer_disagreements"] = compare_with_analyzer(compiled, predicted)
            record["compiler"] = compiled
            print_table(model.name, compiled)
            for d in compiled["analyzer_disagreements"]:
                print(f"  analyzer disagrees: {d}")
            if compiled.get("error"):
                status = 1
        else:
            print_table(model.name, predicted)
            for w in predicted.get("warnings", []):
                print(f"warning: {w}")
            if predicted.get("error"):
                status = 1
        write_json(out_dir / f"{model.stem}_compile.json", record)
    return status


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.compile", main))
