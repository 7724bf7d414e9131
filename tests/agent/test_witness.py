"""The witness check: a fellow agent's /healthz over the tailnet, with the path's mode from one disco probe."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import IPv4Address, ip_address

import httpx
import pytest

from agent.collectors.witness import MAX_REPORTS, WitnessChecker, healthz_url
from controlplane.api import NetworkMode
from mesh import IPAddress, MeshError, Path, Via
from tests.conftest import FakeClock

ADDRESSES = {"edge1": (IPv4Address("100.64.0.1"), 9090), "edge3": (IPv4Address("100.64.0.3"), 9191)}


def checker(clock: FakeClock, answers: dict[str, int | Exception], path: Path | None) -> WitnessChecker:
    async def fetch(url: str, seconds: float) -> int:
        answer = answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def probe(ip: IPAddress) -> Path:
        if path is None:
            raise MeshError("no pong")
        return path

    return WitnessChecker(resolve=ADDRESSES.get, fetch=fetch, probe=probe, now=clock.now, timeout=1.0)


def test_the_url_is_the_agents_healthz() -> None:
    assert healthz_url(IPv4Address("100.64.0.3"), 9191) == "http://100.64.0.3:9191/healthz"
    assert healthz_url(ip_address("fd7a:115c:a1e0::3"), 9090) == "http://[fd7a:115c:a1e0::3]:9090/healthz"


async def test_an_answering_agent_is_witnessed_with_its_paths_mode(clock: FakeClock) -> None:
    direct = Path(via=Via.DIRECT, endpoint="10.0.0.3:41641", latency_ms=0.8)
    witness = checker(clock, {"http://100.64.0.3:9191/healthz": 200}, direct)
    assert await witness.check(["edge3"]) == 1
    reports = witness.reports()
    assert reports is not None and len(reports) == 1
    report = reports[0]
    assert (report.name, report.at, report.mode) == ("edge3", clock.now(), NetworkMode.DIRECT)
    assert report.latency_ms is not None and report.latency_ms >= 0


@pytest.mark.parametrize(
    "answer",
    [503, httpx.ConnectTimeout("timed out"), httpx.ConnectError("refused")],
    ids=["unhealthy", "timeout", "refused"],
)
async def test_a_silent_or_unhealthy_agent_is_not_witnessed(clock: FakeClock, answer: int | Exception) -> None:
    direct = Path(via=Via.DIRECT, endpoint="10.0.0.3:41641", latency_ms=0.8)
    witness = checker(clock, {"http://100.64.0.3:9191/healthz": answer}, direct)
    assert await witness.check(["edge3", "ghost"]) == 0, "ghost: address unknown"
    assert witness.reports() is None


async def test_the_mode_is_unknown_when_the_probe_fails_and_reports_expire(clock: FakeClock) -> None:
    witness = checker(clock, {"http://100.64.0.1:9090/healthz": 200}, None)
    assert await witness.check(["edge1"]) == 1
    reports = witness.reports()
    assert reports is not None and reports[0].mode is None
    clock.step(timedelta(minutes=3).total_seconds())
    assert witness.reports() is None


async def test_reports_are_bounded_newest_first(clock: FakeClock) -> None:
    addresses = {f"n{i}": (IPv4Address(f"100.64.1.{i}"), 9090) for i in range(MAX_REPORTS + 4)}

    async def fetch(url: str, seconds: float) -> int:
        return 200

    witness = WitnessChecker(resolve=addresses.get, fetch=fetch, probe=None, now=clock.now)
    for name in addresses:
        await witness.check([name])
        clock.step(1)
    reports = witness.reports()
    assert reports is not None and len(reports) == MAX_REPORTS
    assert reports[0].name == f"n{MAX_REPORTS + 3}"
