"""The host while timing: CPU governor, temperatures, load, and whether others used the CPU.

Everything is read from ``/proc`` and ``/sys`` where readable and is None
where not (another OS, a container without them); nothing here fails.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Average cores used by *other* processes while timing above which a warning is given.
BUSY_CORES = 0.5
#: Shortest timing window (s) for which /proc/stat (10 ms ticks) is trusted.
MIN_WINDOW_S = 0.2


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None


def cpu_governors(sysfs: str | Path = "/sys") -> list[str] | None:
    """The distinct ``scaling_governor`` values of the CPUs (None when not readable)."""
    paths = sorted(Path(sysfs).glob("devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor"))
    found = sorted({g for g in (_read(p) for p in paths) if g})
    return found or None


def temperatures(sysfs: str | Path = "/sys") -> dict[str, float] | None:
    """``{zone type: degrees C}`` from ``/sys/class/thermal/thermal_zone*`` (None if none)."""
    out = {}
    for zone in sorted(Path(sysfs).glob("class/thermal/thermal_zone*")):
        raw = _read(zone / "temp")
        try:
            value = int(raw) / 1000.0
        except (TypeError, ValueError):
            continue
        out[_read(zone / "type") or zone.name] = round(value, 1)
    return out or None


def _proc_stat(procfs: str | Path) -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of all CPUs from ``/proc/stat``."""
    line = (_read(Path(procfs) / "stat") or "").splitlines()[:1]
    if not line or not line[0].startswith("cpu "):
        return None
    v = [int(x) for x in line[0].split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


@dataclass
class Snapshot:
    """The host at one moment."""

    wall: float
    own_cpu: float
    jiffies: tuple[int, int] | None
    load_average: tuple[float, float, float] | None
    governor: list[str] | None
    temperature_c: dict[str, float] | None
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    def record(self) -> dict:
        return {"load_average_1m": (round(self.load_average[0], 2)
                                    if self.load_average else None),
                "governor": self.governor, "temperature_c": self.temperature_c}


def snapshot(sysfs: str | Path = "/sys", procfs: str | Path = "/proc") -> Snapshot:
    """Take a :class:`Snapshot` (this process's CPU time, /proc/stat, load, governor, temps)."""
    t = os.times()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return Snapshot(wall=time.monotonic(), own_cpu=t.user + t.system,
                    jiffies=_proc_stat(procfs), load_average=load,
                    governor=cpu_governors(sysfs), temperature_c=temperatures(sysfs))


def others_cores(before: Snapshot, after: Snapshot) -> float | None:
    """Average cores other processes used between two snapshots (None when unknown)."""
    elapsed = after.wall - before.wall
    if before.jiffies is None or after.jiffies is None or elapsed < MIN_WINDOW_S:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = (after.jiffies[0] - before.jiffies[0]) / tick
    return max(0.0, (busy - (after.own_cpu - before.own_cpu)) / elapsed)


def busy_warning(before: Snapshot, after: Snapshot, *, threshold: float = BUSY_CORES) -> str | None:
    """One line when the host was busy while timing, else None.

    Busy: other processes used more than ``threshold`` cores on average
    (/proc/stat minus this process), or the 1-minute load average was at or
    above the number of cores.
    """
    other = others_cores(before, after)
    load = before.load_average[0] if before.load_average else None
    if other is not None and other > threshold:
        return (f"host busy while timing: other processes used {other:.1f} of {before.cores} "
                "cores on average; the latency may be inflated (time on an idle host)")
    if load is not None and load >= before.cores:
        return (f"host busy while timing: load average {load:.1f} >= {before.cores} cores; "
                "the latency may be inflated (time on an idle host)")
    return None
