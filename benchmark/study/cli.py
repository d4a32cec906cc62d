"""Command line of a study: ``edgetpu-bench study STUDY.toml [--executor local|ray] ...``."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys

from benchmark.cli import prog_name


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog_name("python -m benchmark.study"),
        description="Run a study: every cell of a models x datasets x splits x observers x "
                    "devices x variants matrix, skipping the finished ones (docs/studies.md).")
    p.add_argument("study", help="the study file (TOML)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: Ray tasks "
                        "(a local Ray, or the cluster at --address)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="cells at a time (default: the cores; with ray: the cluster's CPUs)")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="the Ray cluster's head (ray start --head); default: start a local Ray")
    p.add_argument("--out", help="study directory (default: the file's `out`, else "
                                 "runs/study-<name>)")
    p.add_argument("--only", metavar="KEY,KEY", help="run only these cells (keys from the "
                                                     "summary or study.json)")
    p.add_argument("--list", action="store_true",
                   help="print every cell with its key and status; run nothing")
    p.add_argument("--no-report", dest="report", action="store_false",
                   help="do not write the comparison report")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _list(states) -> str:
    lines = [f"{'key':16s}  {'status':7s}  cell"]
    lines += [f"{s.key or '-':16s}  {s.status:7s}  {s.cell.label()}"
              + (f"  ({s.error})" if s.error else "") for s in states]
    return "\n".join(lines)


def main(argv=None) -> int:
    from benchmark.study.runner import plan_cells, run_study, summary
    from benchmark.study.spec import load_study
    a = parse_args(argv)
    study = load_study(a.study, out=a.out)
    only = set(a.only.split(",")) if a.only else None
    if a.list:
        print(_list(plan_cells(study, only)))
        return 0
    from benchmark.preflight import check_output_dir
    check_output_dir(study.out, option="--out" if a.out else f"{a.study}: out")
    log = None if a.quiet else (lambda m: print(m, file=sys.stderr))
    signal.signal(signal.SIGTERM, _interrupt)   # like Ctrl-C: the workers stop too
    result = run_study(study, executor=a.executor, workers=a.workers, address=a.address,
                       quiet=a.quiet, only=only, report=a.report, log=log)
    hint = " ".join(["edgetpu-bench study", shlex.quote(a.study)]
                    + ([f"--out {shlex.quote(a.out)}"] if a.out else [])
                    + ([f"--executor {a.executor}"] if a.executor != "local" else []))
    print(summary(result, hint))
    return 1 if result.failed else 0
