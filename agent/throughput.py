"""Throughput: time-boxed, multi-stream download and upload against the control plane, ramp-up discarded.

Each of N parallel streams records (time, bytes) as data moves. The rate is the bytes moved inside the steady
window [start + ramp, end] divided by its length, so TCP slow start and the shaper's initial burst do not count.
For uploads the sender's socket buffer is full at both ends of that window, so bytes handed to the socket in the
window equal bytes delivered in it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any, Final, Protocol

import httpx

from controlplane.api import NodeThroughput, format_throughput

#: Size of one upload chunk; large enough that per-chunk overhead is negligible, small enough to time finely.
CHUNK_BYTES: Final = 64 * 1024
_CHUNK: Final = bytes(CHUNK_BYTES)
#: Seconds at the start of each direction that are not counted (TCP slow start, tbf burst).
DEFAULT_RAMP: Final = 0.75


class ThroughputError(Exception):
    """ThroughputError is raised when a measurement cannot be made; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """Measurement is one finished test: bits per second each way and the bytes it cost."""

    download_bps: float
    upload_bps: float
    bytes_used: int
    finished_at: datetime

    def to_status(self) -> NodeThroughput:
        """to_status renders the measurement as status.network.throughput ("94.1Mbps")."""
        return NodeThroughput(
            download=format_throughput(self.download_bps),
            upload=format_throughput(self.upload_bps),
            last_test_time=self.finished_at,
            bytes_used=self.bytes_used,
        )


class Meter(Protocol):
    """Meter is a throughput backend."""

    async def measure(self) -> Measurement: ...


def steady_rate(events: Sequence[tuple[float, int]], start: float, ramp: float, end: float) -> float:
    """steady_rate is bits per second of the (time, bytes) events that fall in [start + ramp, end]."""
    window_start = start + ramp
    if end <= window_start:
        raise ThroughputError(f"the steady window is empty (ramp {ramp:g}s, duration {end - start:.3f}s)")
    moved = sum(n for t, n in events if window_start <= t <= end)
    return moved * 8 / (end - window_start)


class ServerMeter:
    """ServerMeter measures against the control plane's /api/v1/throughput endpoints (design §6).

    `duration` is seconds per direction including `ramp`; `clock` is monotonic seconds (injected for tests);
    `verify=False` skips loading CA certificates, right for http:// over the tailnet (WireGuard encrypts it).
    """

    def __init__(
        self,
        *,
        base_url: str,
        streams: int = 4,
        duration: float = 3.0,
        ramp: float = DEFAULT_RAMP,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool = True,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime],
    ) -> None:
        if duration <= ramp:
            raise ValueError(f"duration ({duration:g}s) must be longer than the ramp-up ({ramp:g}s)")
        self.base_url, self.streams, self.duration, self.ramp = base_url, streams, duration, ramp
        self._transport, self._verify, self._clock, self._now = transport, verify, clock, now

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.streams, max_keepalive_connections=0)
        timeout = httpx.Timeout(self.duration + 10.0)
        return httpx.AsyncClient(
            base_url=self.base_url, transport=self._transport, limits=limits, timeout=timeout, verify=self._verify
        )

    async def measure(self) -> Measurement:
        """measure runs the download, then the upload; raises ThroughputError when the server cannot be used."""
        try:
            async with self._client() as client:
                down, down_bytes = await self._download(client)
                up, up_bytes = await self._upload(client)
        except httpx.HTTPError as exc:
            raise ThroughputError(
                f"throughput test against {self.base_url} failed: {exc or type(exc).__name__}"
            ) from exc
        return Measurement(down, up, down_bytes + up_bytes, self._now())

    async def _download(self, client: httpx.AsyncClient) -> tuple[float, int]:
        events: list[tuple[float, int]] = []
        start = self._clock()
        end = start + self.duration

        async def stream() -> None:
            params = {"seconds": f"{self.duration + 1.0:g}"}  # the server outlasts our window; we hang up at `end`
            async with client.stream("GET", "/api/v1/throughput/download", params=params) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise ThroughputError(f"download answered {response.status_code}: {response.text[:200]}")
                async for chunk in response.aiter_raw():
                    now = self._clock()
                    events.append((now, len(chunk)))
                    if now >= end:
                        return

        await self._run_streams(stream, end)
        return steady_rate(events, start, self.ramp, end), sum(n for _, n in events)

    async def _upload(self, client: httpx.AsyncClient) -> tuple[float, int]:
        events: list[tuple[float, int]] = []
        start = self._clock()
        end = start + self.duration

        async def body() -> AsyncIterator[bytes]:
            while (now := self._clock()) < end:
                events.append((now, CHUNK_BYTES))
                yield _CHUNK

        arrivals: list[tuple[float, int]] = []  # (server time, bytes): what the server saw arrive
        starts: list[float] = []

        async def stream() -> None:
            response = await client.post("/api/v1/throughput/upload", content=body())
            if response.status_code != 200:
                raise ThroughputError(f"upload answered {response.status_code}: {response.text[:200]}")
            doc = response.json()
            if isinstance(doc, dict) and isinstance(doc.get("buckets"), list):
                first, width = float(doc["start"]), float(doc["bucketSeconds"])
                starts.append(first)
                arrivals.extend((first + (i + 1) * width, int(n)) for i, n in enumerate(doc["buckets"]))

        await self._run_streams(stream, end)
        sent = sum(n for _, n in events)
        if starts:  # the receiver's view on its own clock (as iperf3 reports): exact, unlike bytes handed to a socket
            first = min(starts)
            return steady_rate(arrivals, first, self.ramp, first + self.duration), sent
        # An older server answers bytes only: fall back to the sender's view (the socket buffer is full at both
        # ends of the steady window, so bytes handed over in it approximate bytes delivered).
        return steady_rate(events, start, self.ramp, end), sent

    async def _run_streams(self, stream: Callable[[], Any], end: float) -> None:
        tasks = [asyncio.create_task(stream()) for _ in range(self.streams)]
        try:
            # Streams finish on their own at `end`; the bound is for a server that stops sending.
            done, pending = await asyncio.wait(tasks, timeout=max(0.0, end - self._clock()) + 10.0)
            for task in pending:
                task.cancel()
            for task in done:
                task.result()
            if pending:
                raise ThroughputError("the server stopped answering during the throughput test")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


#: What speedtest-cli raises when speedtest.net cannot be used (names looked up on the module at run time).
_SPEEDTEST_ERRORS: Final = ("SpeedtestException", "ConfigRetrievalError", "SpeedtestBestServerFailure")


def _import_speedtest() -> ModuleType:
    import importlib

    try:
        return importlib.import_module("speedtest")
    except ImportError:
        raise ThroughputError(
            "THROUGHPUT_BACKEND=speedtest needs speedtest-cli: pip install 'caravanserai-mesh[speedtest]'"
        ) from None


class SpeedtestMeter:
    """SpeedtestMeter measures internet egress with speedtest-cli (an optional extra); it needs speedtest.net."""

    def __init__(self, *, now: Callable[[], datetime], load: Callable[[], ModuleType] = _import_speedtest) -> None:
        self._now, self._load = now, load

    def _run(self) -> Measurement:
        module = self._load()
        errors = tuple(getattr(module, name) for name in _SPEEDTEST_ERRORS if hasattr(module, name))
        try:
            test = module.Speedtest(secure=True)
            test.get_best_server()
            down = float(test.download())
            up = float(test.upload())
            results = test.results
        except (*errors, OSError) as exc:
            raise ThroughputError(
                f"speedtest backend: cannot reach speedtest.net ({type(exc).__name__}: {exc})"
            ) from None
        used = int(getattr(results, "bytes_received", 0) or 0) + int(getattr(results, "bytes_sent", 0) or 0)
        return Measurement(down, up, used, self._now())

    async def measure(self) -> Measurement:
        """measure runs speedtest-cli in a thread; raises ThroughputError when it is missing or cannot connect."""
        return await asyncio.to_thread(self._run)
