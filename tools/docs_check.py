#!/usr/bin/env python3
"""Re-run the documented examples and fail when their output no longer matches.

Usage::

    python tools/docs_check.py [FILE.md ...] [-k SUBSTRING] [--list] [-v]
    make docs-check

Marking an example
------------------
A fenced code block directly preceded by the line ``<!-- docs-check -->`` (blank
lines between them are allowed) is a checked example. Inside it, a line starting
with ``$ `` is a command; the lines after it, up to the next command or the end
of the block, are its expected output (stdout and stderr together, in order).
A line that is exactly ``...`` stands for any number of lines (including none).
Blocks are searched in README.md, docs/*.md and results/*.md unless files are
given.

How a block runs
----------------
All commands of one block run one after another in one ``bash`` session, so a
variable set by one command (``OUT=$(mktemp -d)``) and ``$?`` (``echo $?``)
carry over to the next. The session runs in the repository root with:

- ``python`` on PATH = the interpreter running this script (the .venv's under
  ``make docs-check``);
- a fresh temporary directory per block as ``HOME``, ``TMPDIR`` and ``$OUT``
  (so ``mktemp -d`` lands inside it; it is deleted afterwards);
- ``PYTHONUNBUFFERED=1`` (stdout and stderr interleave in the order written),
  ``COLUMNS=80`` (argparse wraps ``--help`` the same everywhere),
  ``TF_CPP_MIN_LOG_LEVEL=3`` and no ``EDGETPU_BENCH_DEBUG``.

Normalization
-------------
Both the expected and the actual output are normalized by :func:`normalize`
before comparing, with these rules, in this order:

1. trailing whitespace on each line is removed; leading and trailing blank
   lines are dropped;
2. lines starting with ``INFO: Created TensorFlow Lite`` (the XNNPACK delegate
   line, depends on the runtime) are removed;
3. the block's temporary directory followed by one path component (what
   ``mktemp -d`` made, or the directory itself) becomes ``$OUT``;
4. the repository root (absolute path) becomes ``$ROOT``;
5. UTC run stamps ``YYYYMMDD-HHMMSS`` become ``<STAMP>``;
6. throughput ``1234.5 img/s`` and ``4193/s`` become ``<N> img/s`` / ``<N>/s``;
7. durations ``in 2.8 s``, ``(19 s)``, ``12.3 ms`` — a number followed by
   ``s`` or ``ms`` as a word — become ``<T> s`` / ``<T> ms``;
8. file sizes ``595 KiB`` (also B, KB, MiB, MB) become ``<N> KiB`` etc.

Other checks
------------
- every relative link ``[text](path#anchor)`` in the searched files must point
  to an existing file or directory, and its anchor (if any, in a .md file) to
  one of that file's headings (GitHub's anchor rules);
- every ``--option`` printed by ``python -m benchmark.<cmd> --help`` of each
  command in :data:`COMMANDS` must appear in docs/commands.md.

Exit code 0 when everything matches, 1 otherwise (with a diff per mismatch).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- docs-check -->"
COMMANDS = ("run", "report", "train", "convert", "paper", "modelcard", "latency", "compile")
TIMEOUT = 120


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


@dataclass
class Block:
    path: Path
    line: int
    steps: list[Step]

    @property
    def where(self) -> str:
        return f"{_rel(self.path)}:{self.line}"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- parsing

def parse_blocks(text: str, path: Path = Path("<text>")) -> list[Block]:
    """The checked examples in a Markdown ``text``.

    >>> doc = "<!-- docs-check -->\\n```\\n$ echo hi\\nhi\\n$ true\\n```\\n"
    >>> [(s.command, s.expected) for s in parse_blocks(doc)[0].steps]
    [('echo hi', ['hi']), ('true', [])]
    """
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARKER:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not lines[j].lstrip().startswith("```"):
            raise ValueError(f"{_rel(path)}:{i + 1}: {MARKER} is not followed by a code block")
        fence = lines[j].lstrip()[:3]
        start = j + 1
        k = start
        while k < len(lines) and not lines[k].lstrip().startswith(fence):
            k += 1
        if k >= len(lines):
            raise ValueError(f"{_rel(path)}:{j + 1}: unterminated code block")
        steps: list[Step] = []
        for raw in lines[start:k]:
            if raw.startswith("$ "):
                steps.append(Step(raw[2:].strip()))
            elif steps:
                steps[-1].expected.append(raw)
            elif raw.strip():
                raise ValueError(f"{_rel(path)}:{start + 1}: a checked block must start "
                                 "with a '$ command' line")
        blocks.append(Block(path, j + 1, steps))
        i = k + 1
    return blocks


# ----------------------------------------------------------------------------- normalizing

_STAMP = re.compile(r"\b\d{8}-\d{6}\b")
_IMGS = re.compile(r"\b\d+(?:\.\d+)? img/s\b")
_PER_S = re.compile(r"\b\d+(?:\.\d+)?/s\b")
_DURATION = re.compile(r"(?<![\w.])\d+(?:\.\d+)? (s|ms)\b")
_SIZE = re.compile(r"\b\d+(?:\.\d+)? (B|KB|KiB|MB|MiB)\b")


def normalize(text: str, tmp: str | None = None, root: str | None = None) -> list[str]:
    """The lines of ``text`` with the volatile parts replaced (rules in the module doc).

    >>> normalize("  wrote /x/tmp.ab12/r/report.html (595 KiB) in 2.8 s  \\n",
    ...           tmp="/x", root="/repo")
    ['  wrote $OUT/r/report.html (<N> KiB) in <T> s']
    >>> normalize("runs/20261129-102204: 6750 img/s, 4193/s, 0.238 ms", root="/r")
    ['runs/<STAMP>: <N> img/s, <N>/s, <T> ms']
    >>> normalize("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nok")
    ['ok']
    """
    out = []
    for line in text.splitlines():
        line = line.rstrip()
        if line.startswith("INFO: Created TensorFlow Lite"):
            continue
        if tmp:
            line = re.sub(re.escape(tmp.rstrip("/")) + r"(?:/[^/\s'\"():,]+)?", "$OUT", line)
        if root:
            line = re.sub(re.escape(root.rstrip("/")) + r"(?=[/\s'\"():,]|$)", "$ROOT", line)
        line = _STAMP.sub("<STAMP>", line)
        line = _IMGS.sub("<N> img/s", line)
        line = _PER_S.sub("<N>/s", line)
        line = _DURATION.sub(lambda m: f"<T> {m.group(1)}", line)
        line = _SIZE.sub(lambda m: f"<N> {m.group(1)}", line)
        out.append(line)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` matches ``expected``, where a line ``...`` matches any lines.

    >>> matches(["a", "...", "d"], ["a", "b", "c", "d"]), matches(["a", "..."], ["a"])
    (True, True)
    >>> matches(["a", "...", "d"], ["a", "b"])
    False
    """
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(expected):
            r = j == len(actual)
        elif expected[i].strip() == "...":
            r = go(i + 1, j) or (j < len(actual) and go(i, j + 1))
        else:
            r = j < len(actual) and expected[i] == actual[j] and go(i + 1, j + 1)
        memo[(i, j)] = r
        return r

    return go(0, 0)


# ----------------------------------------------------------------------------- running

_SEP = "@@docs-check-step-{}@@"


def run_block(block: Block, verbose: bool = False) -> list[str]:
    """Run ``block``; return a list of failure messages (empty when it matches)."""
    tmp = tempfile.mkdtemp(prefix="docs-check-")
    out_dir = Path(tmp) / "out"
    out_dir.mkdir()
    home = Path(tmp) / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGETPU_BENCH_DEBUG")}
    bindir = str(Path(sys.executable).parent)
    env.update(HOME=str(home), TMPDIR=tmp, OUT=str(out_dir), PYTHONUNBUFFERED="1",
               COLUMNS="80", TF_CPP_MIN_LOG_LEVEL="3",
               PATH=bindir + os.pathsep + env.get("PATH", ""))
    # `python` must be this interpreter even where only python3 exists; a wrapper
    # script, not a symlink (a symlinked venv python would not find its venv).
    shim = Path(tmp) / "bin"
    shim.mkdir()
    (shim / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (shim / "python").chmod(0o755)
    env["PATH"] = str(shim) + os.pathsep + env["PATH"]
    script = []
    for n, step in enumerate(block.steps):
        script.append(f"__rc=$?; printf '\\n{_SEP.format(n)}\\n'; (exit $__rc)")
        script.append(step.command + " 2>&1")
    script.append(f"printf '\\n{_SEP.format(len(block.steps))}\\n'")
    try:
        proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=TIMEOUT)
        output = proc.stdout
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        output += f"\n(timed out after {TIMEOUT} s)"
    failures = []
    try:
        parts = re.split(r"\n?@@docs-check-step-(\d+)@@\n", output)
        got: dict[int, str] = {}
        for idx in range(1, len(parts) - 1, 2):
            got[int(parts[idx])] = parts[idx + 1]
        for n, step in enumerate(block.steps):
            actual = normalize(got.get(n, ""), tmp=tmp, root=str(ROOT))
            expected = normalize("\n".join(step.expected), root=str(ROOT))
            if verbose:
                print(f"  $ {step.command}")
                for line in actual:
                    print(f"    {line}")
            if n not in got:
                failures.append(f"{block.where}: `{step.command}` did not run "
                                f"(output so far:\n{output[-2000:]})")
                break
            if not matches(expected, actual):
                diff = difflib.unified_diff(expected, actual, "documented", "actual",
                                            lineterm="")
                failures.append(f"{block.where}: output of `{step.command}` differs:\n"
                                + "\n".join(diff))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return failures


# ----------------------------------------------------------------------------- other checks

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading.

    >>> slug("`python -m benchmark.run` — evaluate")
    'python--m-benchmarkrun--evaluate'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of the headings in a Markdown ``text`` (outside code blocks)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def check_links(path: Path, text: str) -> list[str]:
    """Relative links in ``text`` whose file, or heading anchor in a .md, does not exist."""
    bad = []
    in_code = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for target in _LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            if "*" in file:
                continue
            dest = path.parent / file if file else path
            if not dest.exists():
                bad.append(f"{_rel(path)}:{n}: broken link {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
                bad.append(f"{_rel(path)}:{n}: no heading for anchor #{anchor} in {_rel(dest)}")
    return bad


_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]+)")


def check_options(commands_md: Path) -> list[str]:
    """Options of each command's ``--help`` that docs/commands.md does not mention."""
    doc = commands_md.read_text()
    documented = set(_OPTION.findall(doc))
    bad = []
    env = dict(os.environ, COLUMNS="80")
    for cmd in COMMANDS:
        proc = subprocess.run([sys.executable, "-m", f"benchmark.{cmd}", "--help"], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=TIMEOUT)
        if proc.returncode != 0:
            bad.append(f"python -m benchmark.{cmd} --help failed:\n{proc.stderr[-2000:]}")
            continue
        for opt in sorted(set(_OPTION.findall(proc.stdout)) - documented - {"--help"}):
            bad.append(f"{_rel(commands_md)}: option {opt} of benchmark.{cmd} "
                       "is not documented")
    return bad


# ----------------------------------------------------------------------------- main

def default_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "results").glob("*.md"))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Re-run the documented examples "
                                 "(<!-- docs-check --> blocks) and compare their output.")
    ap.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md, "
                    "docs/*.md, results/*.md)")
    ap.add_argument("-k", metavar="SUBSTRING", help="only blocks with a command containing it")
    ap.add_argument("--list", action="store_true", help="list the blocks, run nothing")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each command's output")
    args = ap.parse_args(argv)
    files = [f.resolve() for f in args.files] or default_files()
    t_start = time.perf_counter()
    failures: list[str] = []
    blocks: list[Block] = []
    for f in files:
        text = f.read_text()
        try:
            blocks += parse_blocks(text, f)
        except ValueError as e:
            failures.append(str(e))
        failures += check_links(f, text)
    if args.k:
        blocks = [b for b in blocks if any(args.k in s.command for s in b.steps)]
    if args.list:
        for b in blocks:
            print(f"{b.where}: " + " ; ".join(s.command for s in b.steps))
        return 0
    for b in blocks:
        t0 = time.perf_counter()
        fails = run_block(b, verbose=args.verbose)
        status = "ok" if not fails else "FAILED"
        print(f"{status:6} {b.where} ({len(b.steps)} commands, {time.perf_counter() - t0:.1f} s)")
        failures += fails
    if not args.files and not args.k:
        t0 = time.perf_counter()
        fails = check_options(ROOT / "docs" / "commands.md")
        print(f"{'ok' if not fails else 'FAILED':6} every --help option documented in "
              f"docs/commands.md ({time.perf_counter() - t0:.1f} s)")
        failures += fails
    for f in failures:
        print("\n" + f, file=sys.stderr)
    print(f"docs-check: {len(blocks)} blocks, {len(failures)} failures, "
          f"{time.perf_counter() - t_start:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
