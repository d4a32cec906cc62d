"""One entry point for every tool: ``edgetpu-bench <command> [args]``.

Installed as a console script by ``pip install .``; also ``python -m
benchmark.commands``. Each command is the ``main(argv)`` of one module, given
lazily in :data:`COMMANDS` (listing the commands imports none of them), and run
through :func:`benchmark.cli.main_wrapper` as ``edgetpu-bench <command>``. The
``python -m benchmark.<module>`` entry points keep working as before.

    edgetpu-bench                 list the commands (exit code 2)
    edgetpu-bench --help          list the commands
    edgetpu-bench --version
    edgetpu-bench <command> --help
"""

from __future__ import annotations

import sys

from benchmark.cli import main_wrapper, running_as
from benchmark.registry import Registry

PROG = "edgetpu-bench"

#: Command name -> its module's ``main(argv) -> int`` (lazy references).
COMMANDS: Registry = Registry("command", builtins={
    "run": "benchmark.run:main",
    "train": "benchmark.train:main",
    "convert": "benchmark.convert:main",
    "compile": "benchmark.compile.__main__:main",
    "report": "benchmark.report:main",
    "latency": "benchmark.latency:main",
    "paper": "benchmark.paper:main",
    "modelcard": "benchmark.modelcard:main",
    "study": "benchmark.study.cli:main",
    "clean": "benchmark.clean:main",
    "diagnose": "benchmark.diagnose.cli:main",
    "devices": "benchmark.devices:main",
})

#: One line per command for the listing (no module is imported to print it).
SUMMARIES = {
    "run": "evaluate the float and int8 variants of a model on a dataset",
    "train": "train a registered model on one split",
    "convert": "post-training quantization to float and int8 .tflite",
    "compile": "compile for the Edge TPU, or predict the result with the static analyzer",
    "report": "text, HTML and Markdown reports of saved runs",
    "latency": "latency of one model on one device",
    "paper": "the paper's figures as data",
    "modelcard": "write MODEL_CARD.md for shipped artifacts",
    "study": "run a matrix of models x data x variants x devices (local pool or Ray)",
    "clean": "remove temporaries that killed runs left in the caches",
    "diagnose": "explain an int8 drop: saturation, per-layer error, calibration, verdict",
    "devices": "list the Edge TPUs libedgetpu sees (type, path, USB link speed)",
}


def usage() -> str:
    """The command listing, built from :data:`COMMANDS`."""
    width = max(len(n) for n in COMMANDS.names())
    lines = [f"usage: {PROG} <command> [args]   ({PROG} <command> --help for its options)",
             "", "commands:"]
    lines += [f"  {n:<{width}}  {SUMMARIES.get(n, '')}".rstrip() for n in COMMANDS.names()]
    return "\n".join(lines)


def _exit_code(e: SystemExit) -> int:
    """The exit code a :class:`SystemExit` stands for (``sys.exit`` semantics)."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _dispatch(argv: list[str]) -> int:
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from benchmark import __version__
        print(f"{PROG} {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    command = COMMANDS.get(name)     # UsageError listing the commands when unknown
    prog = f"{PROG} {name}"
    with running_as(prog):
        try:
            return main_wrapper(prog, command, rest)
        except SystemExit as e:      # argparse --help / usage errors
            return _exit_code(e)


def main(argv: list[str] | None = None) -> int:
    """Run ``edgetpu-bench`` with ``argv`` (``sys.argv[1:]`` when None); returns the exit code.

    An unknown command is one line (``edgetpu-bench: error: unknown command ...;
    available: ...``) and exit code 2.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    return main_wrapper(PROG, _dispatch, args)


if __name__ == "__main__":
    sys.exit(main())
