"""Remove the temporaries that killed or crashed runs left behind.

``python -m benchmark.clean [PATH ...] [--cache-dir DIR] [--dry-run]``
(also ``edgetpu-bench clean``)

Looks in the cache (``--cache-dir``, else ``$EDGETPU_BENCH_CACHE``, else
``datasets/cache``: dataset entries, converted models, batch-N copies, the
prediction cache), in the system temporary directory (SavedModel exports,
batch-N probes) and in every PATH given (run or model folders), and removes
temporaries whose process is no longer running (see
:mod:`benchmark.tempfiles`). Prints one line per removal and a total; with
``--dry-run`` only lists them. Temporaries of running processes are never
touched. Every dataset load also sweeps the cache, so this is rarely needed.

Exit codes: 0 done (also when nothing was found); 2 bad arguments or a PATH
that is not a folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark import tempfiles
from benchmark.cli import main_wrapper, prog_name
from benchmark.errors import UsageError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog_name("python -m benchmark.clean"),
                                description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="run or model folders to look in as well")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="the cache to clean (default $EDGETPU_BENCH_CACHE or datasets/cache)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Entry point; returns the exit code."""
    from benchmark.paths import cache_root
    args = parse_args(argv)
    for path in args.paths:
        if not path.is_dir():
            raise UsageError(f"PATH {path}: not a folder")
    roots = [args.cache_dir or cache_root(), *args.paths]
    stale = [s for root in roots for s in tempfiles.find_stale(root)]
    stale += tempfiles.find_stale_system()
    done = stale if args.dry_run else tempfiles.remove(stale)
    verb = "would remove" if args.dry_run else "removed"
    for s in done:
        print(f"{verb} {s.describe()}")
    total = sum(s.bytes for s in done)
    print(f"{verb} {len(done)} stale temporar{'y' if len(done) == 1 else 'ies'} "
          f"({tempfiles.human(total)}) from {', '.join(str(r) for r in roots)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_wrapper("benchmark.clean", main))
