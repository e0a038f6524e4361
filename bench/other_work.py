"""How much CPU other work took while a scenario ran: the machine's busy time minus what the
benchmark's own processes used.

A 1-minute load average cannot tell: a load benchmark drives it to the number of cores by
itself. Ours is this process, every child it waited for (servers, wrk, naive apps, their
children) and PostgreSQL (its backends serve the benchmark's queries). What is left is work the
benchmark did not start, such as a test suite or a build sharing the machine.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Above this many cores of other work on average, a run's absolute figures are not trusted.
LOADED_CORES = 0.5


def _machine_busy_seconds() -> float:
    # cpu  user nice system idle iowait irq softirq steal ...
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS_PER_SECOND


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _postgres_seconds() -> dict[int, float]:
    seconds: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :]
        if name.startswith("postgres"):
            fields = rest.split()
            seconds[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND
    return seconds


@dataclass
class OtherWork:
    """Start before a scenario, read `cores()` after it."""

    started: float
    busy: float
    own: float
    postgres: dict[int, float]

    @classmethod
    def start(cls) -> OtherWork:
        return cls(time.monotonic(), _machine_busy_seconds(), _own_seconds(), _postgres_seconds())

    def cores(self) -> float:
        """Cores of other work, on average over the run (0 on an otherwise idle machine)."""
        elapsed = time.monotonic() - self.started
        postgres_now = _postgres_seconds()
        postgres = sum(now - self.postgres.get(pid, 0.0) for pid, now in postgres_now.items())
        other = (_machine_busy_seconds() - self.busy) - (_own_seconds() - self.own) - postgres
        return max(other, 0.0) / elapsed if elapsed > 0 else 0.0
