"""Typed options of ``python -m benchmark.compile``: :class:`CompileConfig` and its parser."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from benchmark.errors import UsageError

#: The compiler's own default for ``-t/--timeout_sec``; passed only when changed, since
#: compilers before 16.0 do not know the flag.
COMPILER_DEFAULT_TIMEOUT = 180

#: Where records go without ``--out-dir``: ``runs/compile-<UTC timestamp>`` under the
#: current directory (never beside the model, which may be a shipped, versioned file).
DEFAULT_OUT_PARENT = Path("runs")


@dataclass(frozen=True)
class CompileConfig:
    """Every option of ``benchmark.compile``, typed.

    ``out_dir`` None means "the default", resolved by :meth:`resolved_out_dir`
    when something is written. Build one from the command line with
    :func:`parse_args`, or directly (then call :meth:`validate`).
    """

    models: tuple[Path, ...] = ()
    parse_log: Path | None = None
    console: Path | None = None
    out_dir: Path | None = None
    min_runtime_version: int | None = None
    num_segments: int | None = None
    enable_multiple_subgraphs: bool = False
    timeout_sec: int = COMPILER_DEFAULT_TIMEOUT
    analyze_only: bool = False
    json: bool = False
    inspect: tuple[Path, ...] = ()

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> "CompileConfig":
        """The config of parsed arguments (unknown attributes are ignored)."""
        values = {f.name: getattr(ns, f.name) for f in fields(cls) if hasattr(ns, f.name)}
        values["models"] = tuple(Path(m) for m in values.get("models") or ())
        values["inspect"] = tuple(Path(m) for m in values.get("inspect") or ())
        for name in ("parse_log", "console", "out_dir"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        return cls(**values)

    @property
    def parse_only(self) -> bool:
        """Only parse saved compiler output (``--parse-log``/``--console``)."""
        return self.parse_log is not None or self.console is not None

    def validate(self) -> "CompileConfig":
        """Check the options; returns ``self``.

        Raises
        ------
        UsageError
            Naming the option: models together with ``--parse-log``/``--console``,
            a number below 1, a value of the wrong type.
        """
        if self.models and self.parse_only:
            raise UsageError("give models to compile, or --parse-log/--console to parse, "
                             "not both")
        if self.inspect and (self.models or self.parse_only):
            raise UsageError("--inspect reads compiled models on its own: give no models to "
                             "compile and no --parse-log/--console with it")
        for name in ("num_segments", "timeout_sec", "min_runtime_version"):
            value = getattr(self, name)
            option = "--" + name.replace("_", "-")
            if value is None and name != "timeout_sec":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"{option} must be a whole number, got {value!r}")
            if value < 1:
                raise UsageError(f"{option} must be at least 1, got {value}")
        for name in ("enable_multiple_subgraphs", "analyze_only", "json"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"--{name.replace('_', '-')} is a flag (true or false), "
                                 f"got {getattr(self, name)!r}")
        return self

    def resolved_out_dir(self, now: datetime | None = None) -> Path:
        """``out_dir``, or a new ``runs/compile-<UTC timestamp>[-N]`` (not created)."""
        if self.out_dir is not None:
            return self.out_dir
        stamp = "compile-" + (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
        out, n = DEFAULT_OUT_PARENT / stamp, 1
        while out.exists():
            n += 1
            out = DEFAULT_OUT_PARENT / f"{stamp}-{n}"
        return out


def build_parser(prog: str = "python -m benchmark.compile",
                 description: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser (the options of :class:`CompileConfig`)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("models", nargs="*", type=Path, metavar="MODEL",
                   help="int8 .tflite models to compile")
    p.add_argument("--parse-log", type=Path, metavar="FILE",
                   help="parse a saved compiler op log (or console output) and print JSON")
    p.add_argument("--console", type=Path, metavar="FILE",
                   help="the console output of the same compile, merged with --parse-log")
    p.add_argument("-o", "--out-dir", type=Path, default=None,
                   help="where compiled models, logs and JSON go (default: a new "
                        "runs/compile-<UTC timestamp>/ under the current directory; models "
                        "that share a file name go to sub-folders named after their folders)")
    p.add_argument("-m", "--min-runtime-version", type=int, default=None,
                   help="lowest Edge TPU runtime the model must run on (compiler -m)")
    p.add_argument("-n", "--num-segments", type=int, default=None,
                   help="split into N segments for pipelining (compiler -n)")
    p.add_argument("-a", "--enable-multiple-subgraphs", action="store_true",
                   help="experimental: map supported ops after a CPU op too (compiler -a)")
    p.add_argument("-t", "--timeout-sec", type=int, default=COMPILER_DEFAULT_TIMEOUT,
                   help="compile timeout in seconds (default %(default)s)")
    p.add_argument("--analyze-only", action="store_true",
                   help="do not run the compiler even when it is installed")
    p.add_argument("--json", action="store_true",
                   help="print each model's record as JSON instead of tables")
    p.add_argument("--inspect", nargs="+", type=Path, metavar="FILE", default=(),
                   help="read compiled *_edgetpu.tflite files: Edge TPU segments, ops left on "
                        "the CPU, parameter caching (on-chip/off-chip bytes, co-compiled "
                        "group), pipeline segment; nothing is compiled or written")
    return p


def parse_args(argv=None, *, prog: str = "python -m benchmark.compile",
               description: str | None = None) -> CompileConfig:
    """Parse and validate the command line into a :class:`CompileConfig`.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Raises
    ------
    UsageError
        See :meth:`CompileConfig.validate`.
    """
    ns = build_parser(prog, description).parse_args(argv)
    return CompileConfig.from_namespace(ns).validate()
