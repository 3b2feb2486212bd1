"""Peak resident memory (VmHWM) and CPU time of a process, from /proc."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_mb(pid: int) -> float | None:
    """The process's peak RSS so far (VmHWM), MB (10^6 bytes); None if it is gone."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else kb * 1024 / 1e6


def rss_mb(pid: int) -> float | None:
    """The process's RSS now (VmRSS), MB."""
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb * 1024 / 1e6


class PeakTracker:
    """Remembers the highest VmHWM seen for each pid, so a process that exits still counts."""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}

    def sample(self, *pids: int) -> None:
        for pid in pids:
            value = peak_mb(pid)
            if value is not None:
                self.peaks[pid] = max(value, self.peaks.get(pid, 0.0))

    def max(self, pids=None) -> float | None:
        values = [v for p, v in self.peaks.items() if pids is None or p in pids]
        return max(values) if values else None


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After "pid (comm)": state is fields[0], so utime (14th) is [11], stime (15th) is [12].
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuSampler:
    """CPU-time samples of some processes over wall-clock time, to charge a time window."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.samples: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}

    def sample(self) -> None:
        now = time.time()
        for name, pid in self.pids.items():
            value = cpu_seconds(pid)
            if value is not None:
                self.samples[name].append((now, value))

    def between(self, name: str, start: float, end: float) -> float | None:
        """CPU seconds `name` used from wall time start to end (interpolated samples)."""
        points = self.samples[name]
        if len(points) < 2 or start < points[0][0] or end > points[-1][0]:
            return None
        return _at(points, end) - _at(points, start)


def _at(points: list[tuple[float, float]], t: float) -> float:
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return points[-1][1]
