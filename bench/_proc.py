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


def rss_breakdown_mib(pid: int, *, top: int = 6) -> dict[str, float]:
    """rss_breakdown_mib says where `pid`'s resident memory is: RssAnon and RssFile (proc(5)), and the `top` largest
    mappings by Rss from /proc/PID/smaps, named by file (a library) or by kind ([heap]: glibc's main arena; [anon]:
    anonymous maps, which hold CPython's object arenas)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    by_mapping: dict[str, int] = {}
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if not fields[0].endswith(":"):  # a mapping's header: range perms offset dev inode [path]
            name = fields[5].rsplit("/", 1)[-1] if len(fields) > 5 else "[anon]"
        elif fields[0] == "Rss:":
            by_mapping[name] = by_mapping.get(name, 0) + int(fields[1])
    for name, kib in sorted(by_mapping.items(), key=lambda item: -item[1])[:top]:
        out[name] = round(kib / 1024, 1)
    return out


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
