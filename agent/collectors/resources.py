"""Resources: capacity, allocatable and available cpu, memory and disk, read through an injected psutil facade."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from controlplane.api import ResourceList, format_cpu, format_gibibytes, format_mebibytes

from ..settings import Reservation


@dataclass(frozen=True, slots=True)
class Usage:
    """Usage is a (total, free) pair of bytes."""

    total: int
    free: int


class ResourceSource(Protocol):
    """ResourceSource is what the collector needs of the machine (psutil in production, a fake in tests)."""

    def cpu_count(self) -> int: ...

    def memory(self) -> Usage: ...

    def disk(self, path: Path) -> Usage: ...


class PsutilSource:
    """PsutilSource reads the machine through psutil; the disk is the filesystem holding `path`."""

    def cpu_count(self) -> int:
        # The CPUs this process may run on (cgroup/affinity), else the logical count.
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return psutil.cpu_count() or 1

    def memory(self) -> Usage:
        vm = psutil.virtual_memory()
        return Usage(total=vm.total, free=vm.available)

    def disk(self, path: Path) -> Usage:
        # The data directory may not exist yet; measure the nearest existing parent (same filesystem in practice).
        while not path.exists() and path != path.parent:
            path = path.parent
        du = psutil.disk_usage(str(path))
        return Usage(total=du.total, free=du.free)


@dataclass(frozen=True, slots=True)
class Resources:
    """Resources is the resource part of a Node's status."""

    capacity: ResourceList
    allocatable: ResourceList
    # available: free memory and disk now (MemoryPressure, DiskPressure are judged by the server from these).
    available: ResourceList
    # pressure_buckets: available/capacity in 5 % steps; a change is worth a full status (thresholds are 10/15 %).
    pressure_buckets: tuple[int, int]


def _bucket(free: int, total: int) -> int:
    return int(free * 20 // total) if total > 0 else 0


def collect_resources(source: ResourceSource, data_dir: Path, reserved: Reservation) -> Resources:
    """collect_resources reads cpu, memory and the data directory's disk and renders them as quantities."""
    cpu = source.cpu_count() * 1000
    memory = source.memory()
    disk = source.disk(data_dir)
    return Resources(
        capacity={
            "cpu": format_cpu(cpu),
            "memory": format_mebibytes(memory.total),
            "disk": format_gibibytes(disk.total),
        },
        allocatable={
            "cpu": format_cpu(max(0, cpu - reserved.cpu_millis)),
            "memory": format_mebibytes(max(0, memory.total - reserved.memory_bytes)),
            "disk": format_gibibytes(max(0, disk.total - reserved.disk_bytes)),
        },
        available={"memory": format_mebibytes(memory.free), "disk": format_gibibytes(disk.free)},
        pressure_buckets=(_bucket(memory.free, memory.total), _bucket(disk.free, disk.total)),
    )
