"""Run many CLI invocations in one process for tests/test_fuzz_cli.py (not a test module).

``python tests/fuzz_driver.py CASES.json RESULTS.jsonl``: every case is
``{"id", "command": "module:function", "prog", "argv", "env"}``; each is run
through :func:`benchmark.cli.main_wrapper` with stdout and stderr captured, and
one JSON line ``{"id", "code", "stderr"}`` is appended to RESULTS before the
next starts (a line ``{"started": id}`` first), so a crash of the whole
process (a segfault in a native library) still tells which case caused it.
"""

import contextlib
import importlib
import io
import json
import os
import sys


def _run_case(case: dict) -> dict:
    from benchmark.cli import main_wrapper
    module, _, attr = case["command"].partition(":")
    main = getattr(importlib.import_module(module), attr)
    old_env = {k: os.environ.get(k) for k in case.get("env", {})}
    os.environ.update(case.get("env", {}))
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main_wrapper(case["prog"], main, case["argv"])
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    finally:
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"id": case["id"], "code": code, "stderr": err.getvalue()[-2000:]}


def main(cases_path: str, results_path: str) -> int:
    with open(cases_path) as f:
        cases = json.load(f)
    with open(results_path, "a") as res:
        for case in cases:
            res.write(json.dumps({"started": case["id"]}) + "\n")
            res.flush()
            res.write(json.dumps(_run_case(case)) + "\n")
            res.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
