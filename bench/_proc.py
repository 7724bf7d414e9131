"""CPU and memory of benchmark processes, read from /proc: utime + stime, and the RSS."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """cpu_seconds is the user + system CPU `pid` has used; with reaped_children, plus that of the children it
    has waited for (how a PostgreSQL postmaster still counts backends that have exited)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def rss_mib(pid: int) -> float:
    """rss_mib is VmRSS of `pid` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"pid {pid}: no VmRSS in /proc/{pid}/status")


def children(pid: int) -> list[int]:
    """children are the pids whose parent is `pid` (the postmaster's backends and helpers)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def pin(pid: int, cpu: int) -> None:
    """pin moves `pid` to one CPU (when the machine has more than one); children it forks later inherit it."""
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})
