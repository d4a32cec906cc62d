"""Progress bars for long work (decoding, inference, activation-range searches), tqdm-drawn.

Shown only on a terminal (stderr is a TTY) and never with ``--quiet`` or
``EDGETPU_BENCH_PROGRESS=0``; otherwise every function here is a no-op, so
logs and CI output stay free of carriage returns. ``EDGETPU_BENCH_PROGRESS=1``
forces bars on (e.g. under ``script`` or a terminal multiplexer that hides the
TTY).
"""

from __future__ import annotations

import os
import sys
from typing import Callable

#: Set by the commands' ``--quiet`` (one process runs one command).
_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Turn every bar of this process off (``--quiet``) or back on."""
    global _QUIET
    _QUIET = bool(quiet)


def enabled(stream=None) -> bool:
    """Whether bars are drawn: a terminal, not quiet, not switched off by the environment."""
    forced = os.environ.get("EDGETPU_BENCH_PROGRESS")
    if forced is not None:
        return forced not in ("0", "", "no", "false")
    if _QUIET:
        return False
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class Bar:
    """A ``progress(done, total)`` callable that draws one tqdm bar; :meth:`close` ends it."""

    def __init__(self, desc: str, unit: str = "img"):
        self.desc, self.unit, self._bar = desc, unit, None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=self.desc, unit=self.unit, leave=False,
                             dynamic_ncols=True, file=sys.stderr)
        self._bar.n = done
        self._bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def bar(desc: str, unit: str = "img") -> Callable[[int, int], None] | None:
    """A progress callback for ``desc``, or None when bars are off (see :func:`enabled`)."""
    return Bar(desc, unit) if enabled() else None


def chain(*callbacks) -> Callable[[int, int], None] | None:
    """One callback calling each of ``callbacks`` that is not None (None if all are)."""
    live = [c for c in callbacks if c is not None]
    if not live:
        return None

    def call(done: int, total: int) -> None:
        for c in live:
            c(done, total)
    return call
