"""One progress line for a study: cells done / running / failed, images per second, ETA.

Drawn on stderr with ``\\r`` (at most every half second) when stderr is a
terminal and not ``--quiet``; otherwise silent, and the runner prints only
its summary.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, total: int, *, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.total = total
        self.done = self.failed = self.running = 0
        self.images = 0
        self.t0 = time.monotonic()
        self._last = 0.0

    def line(self) -> str:
        """The status line (also used in tests)."""
        elapsed = time.monotonic() - self.t0
        rate = self.images / elapsed if elapsed > 0 else 0.0
        finished = self.done + self.failed
        left = self.total - finished
        eta = _clock(elapsed / finished * left) if finished else "?"
        return (f"study: {self.done}/{self.total} done, {self.running} running, "
                f"{self.failed} failed, {rate:.0f} img/s, ETA {eta}")

    def update(self, *, done: int = 0, failed: int = 0, running: int | None = None,
               images: int = 0, force: bool = False) -> None:
        self.done += done
        self.failed += failed
        self.images += images
        if running is not None:
            self.running = running
        now = time.monotonic()
        if self.enabled and (force or now - self._last >= 0.5):
            self._last = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()
