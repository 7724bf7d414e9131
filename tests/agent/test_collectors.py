"""Resource and system collectors over injected sources: quantities, reservation, pressure steps, os-release."""

from __future__ import annotations

from pathlib import Path

from agent.collectors.resources import PsutilSource, Usage, collect_resources
from agent.collectors.system import collect_info, os_image
from agent.settings import Reservation

GI, MI = 2**30, 2**20


class FakeMachine:
    def __init__(self, cpus: int, memory: Usage, disk: Usage) -> None:
        self.cpus, self.mem, self.dsk = cpus, memory, disk
        self.disk_paths: list[Path] = []

    def cpu_count(self) -> int:
        return self.cpus

    def memory(self) -> Usage:
        return self.mem

    def disk(self, path: Path) -> Usage:
        self.disk_paths.append(path)
        return self.dsk


def test_capacity_allocatable_and_available_are_quantities() -> None:
    machine = FakeMachine(4, Usage(8 * GI, 3 * GI + 512 * MI), Usage(120 * GI + 5, 60 * GI))
    r = collect_resources(machine, Path("/data"), Reservation(cpu_millis=500, memory_bytes=512 * MI, disk_bytes=2 * GI))
    assert r.capacity == {"cpu": "4000m", "memory": "8192Mi", "disk": "120Gi"}
    assert r.allocatable == {"cpu": "3500m", "memory": "7680Mi", "disk": "118Gi"}
    assert r.available == {"memory": "3584Mi", "disk": "60Gi"}
    assert machine.disk_paths == [Path("/data")]


def test_allocatable_never_goes_negative() -> None:
    machine = FakeMachine(1, Usage(100 * MI, 50 * MI), Usage(GI // 2, GI // 4))
    r = collect_resources(machine, Path("/"), Reservation(cpu_millis=2000, memory_bytes=GI, disk_bytes=GI))
    assert r.allocatable == {"cpu": "0m", "memory": "0Mi", "disk": "0Gi"}


def test_pressure_buckets_move_in_five_percent_steps() -> None:
    def buckets(mem_free: int, disk_free: int) -> tuple[int, int]:
        machine = FakeMachine(1, Usage(1000 * MI, mem_free * MI), Usage(1000 * GI, disk_free * GI))
        return collect_resources(machine, Path("/"), Reservation()).pressure_buckets

    assert buckets(101, 151) == (2, 3)
    assert buckets(99, 149) == (1, 2)  # crossed 10 % memory and 15 % disk: a new signature
    assert buckets(120, 160) == buckets(140, 190)  # wobble inside a step changes nothing


def test_psutil_source_reads_this_machine(tmp_path: Path) -> None:
    source = PsutilSource()
    assert source.cpu_count() >= 1
    memory = source.memory()
    assert 0 < memory.free <= memory.total
    disk = source.disk(tmp_path / "not" / "yet")  # a data dir that does not exist yet: its parent's filesystem
    assert 0 < disk.free <= disk.total


def test_os_image_reads_pretty_name_then_name(tmp_path: Path) -> None:
    pretty = tmp_path / "a"
    pretty.write_text('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    plain = tmp_path / "b"
    plain.write_text("NAME=Alpine\n")
    assert os_image((tmp_path / "missing", pretty)) == "Debian GNU/Linux 12 (bookworm)"
    assert os_image((plain,)) == "Alpine"
    assert os_image((tmp_path / "missing",)) == "Linux"


def test_collect_info_reports_kernel_os_and_agent_version(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('PRETTY_NAME="Edge OS 1"\n')
    info = collect_info(kernel="6.1.0-test", os_release=(release,))
    assert (info.kernel_version, info.os_image) == ("6.1.0-test", "Edge OS 1")
    assert info.agent_version and info.agent_version[0].isdigit()
