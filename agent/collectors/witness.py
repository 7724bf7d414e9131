"""Witness: when the control plane asks (the `Cara-Witness` heartbeat header), check that fellow agents answer.

A witness is this agent reaching a fellow agent's own HTTP endpoint (`GET /healthz` on its agent port) over the
tailnet: an answer proves the fellow's agent runs and its tailnet path works, not only its tailscaled. Each check
also runs one disco probe of the path, so the report says whether it crossed Direct or through DERP. The reports go
out as `status.network.witnessed` with the next beat, which the heartbeater sends at once after a check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Final

import httpx

from controlplane.api import NetworkMode, WitnessReport
from mesh import IPAddress, MeshError, Path, PathMode

log = logging.getLogger("cara.agent")

#: Most reports carried in one beat (the newest first).
MAX_REPORTS: Final = 16
#: A report is carried this long after the check; the control plane counts it only within its grace anyway.
REPORT_KEEP: Final = timedelta(minutes=2)

#: Resolve: a fellow Node's name → (tailnet IP, agent port), None when unknown.
Resolve = Callable[[str], tuple[IPAddress, int] | None]
#: Fetch: GET the URL within the timeout (seconds); returns the HTTP status; raises httpx.HTTPError on failure.
Fetch = Callable[[str, float], Awaitable[int]]
Probe = Callable[[IPAddress], Awaitable[Path]]

_MODES: Final = {PathMode.DIRECT: NetworkMode.DIRECT, PathMode.DERP: NetworkMode.DERP}


def http_fetch(client: httpx.AsyncClient) -> Fetch:
    """http_fetch is the real Fetch over one httpx client (no proxies from the environment: the tailnet is direct)."""

    async def fetch(url: str, seconds: float) -> int:
        response = await client.get(url, timeout=seconds)
        return response.status_code

    return fetch


def healthz_url(ip: IPAddress, port: int) -> str:
    """healthz_url is the fellow agent's health endpoint (design §3.6: `/healthz`, not `/api/healthz`)."""
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{host}:{port}/healthz"


class WitnessChecker:
    """WitnessChecker checks fellow agents on request and keeps what it found for the next beats."""

    def __init__(
        self,
        *,
        resolve: Resolve,
        fetch: Fetch,
        probe: Probe | None,
        now: Callable[[], datetime],
        timeout: float = 2.0,
    ) -> None:
        self._resolve, self._fetch, self._probe, self._now = resolve, fetch, probe, now
        self.timeout = timeout
        self._reports: dict[str, WitnessReport] = {}

    async def check(self, names: Sequence[str]) -> int:
        """check looks at each named fellow at once (concurrently, each within the timeout); returns how many
        answered. A fellow that does not answer keeps its older report, if any: that one still says when it was
        last reached."""
        results = await asyncio.gather(*(self._check_one(name) for name in names))
        reached = [report for report in results if report is not None]
        for report in reached:
            self._reports[report.name] = report
        return len(reached)

    async def _check_one(self, name: str) -> WitnessReport | None:
        address = self._resolve(name)
        if address is None:
            log.info("asked to witness %s, but its tailnet address is unknown", name)
            return None
        ip, port = address
        url = healthz_url(ip, port)
        probe = asyncio.ensure_future(self._path(ip))
        started = time.perf_counter()
        try:
            status = await self._fetch(url, self.timeout)
        except httpx.HTTPError as exc:
            log.info("witness: %s's agent did not answer at %s: %s", name, url, exc)
            probe.cancel()
            return None
        latency_ms = (time.perf_counter() - started) * 1000
        at = self._now()
        if status != 200:
            log.info("witness: %s's agent answered %d at %s", name, status, url)
            probe.cancel()
            return None
        mode = await probe
        log.info("witness: reached %s's agent over %s in %.1f ms", name, mode or "the tailnet", latency_ms)
        return WitnessReport(name=name, at=at, mode=mode, latency_ms=round(latency_ms, 3))

    async def _path(self, ip: IPAddress) -> NetworkMode | None:
        if self._probe is None:
            return None
        try:
            path = await asyncio.wait_for(self._probe(ip), self.timeout)
        except (MeshError, TimeoutError):
            return None
        return _MODES.get(path.mode) if path.mode is not None else None

    def reports(self) -> list[WitnessReport] | None:
        """reports is what the next beat carries: the reports younger than REPORT_KEEP, newest first, bounded."""
        now = self._now()
        for name in [n for n, r in self._reports.items() if r.at is None or now - r.at > REPORT_KEEP]:
            del self._reports[name]
        kept = sorted(self._reports.values(), key=lambda r: (r.at or now, r.name), reverse=True)[:MAX_REPORTS]
        return kept or None
