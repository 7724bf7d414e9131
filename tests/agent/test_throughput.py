"""Throughput: the steady-window math, the meter over a scripted server, the server routes, the speedtest backend."""

from __future__ import annotations

import sys
import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import Request

from agent.throughput import CHUNK_BYTES, Measurement, ServerMeter, SpeedtestMeter, ThroughputError, steady_rate
from controlplane.server.app import create_app
from controlplane.server.identity import Caller, Role
from controlplane.server.settings import Settings
from controlplane.store.base import Store
from tests.conftest import API_URL, FakeClock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_steady_rate_counts_only_the_window_after_ramp_up() -> None:
    # 1 MB in the burst at t=0.1 (discarded), then 250 kB every 0.25 s from t=1.0 to 3.0 inclusive.
    events = [(0.1, 1_000_000)] + [(1.0 + 0.25 * i, 250_000) for i in range(9)]
    assert steady_rate(events, start=0.0, ramp=1.0, end=3.0) == pytest.approx(9 * 250_000 * 8 / 2.0)


def test_steady_rate_ignores_events_after_the_end() -> None:
    assert steady_rate([(0.5, 100), (1.5, 100), (9.0, 10_000)], start=0.0, ramp=0.5, end=2.5) == pytest.approx(
        200 * 8 / 2.0
    )


def test_an_empty_window_is_an_error() -> None:
    with pytest.raises(ThroughputError, match="steady window is empty"):
        steady_rate([], start=0.0, ramp=1.0, end=1.0)


def test_measurement_renders_as_status() -> None:
    status = Measurement(94_123_456.0, 41_000_000.0, 123, NOW).to_status()
    assert status.to_wire() == {
        "download": "94.1Mbps",
        "upload": "41.0Mbps",
        "lastTestTime": "2026-11-24T12:00:00Z",
        "bytesUsed": 123,
    }


class TickClock:
    """TickClock advances by `tick` seconds on every read: each chunk moved costs one tick."""

    def __init__(self, tick: float) -> None:
        self.t, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t


def scripted_server(received: list[int]) -> httpx.MockTransport:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield bytes(CHUNK_BYTES)

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/throughput/download":
            assert 0 < float(request.url.params["seconds"]) <= 10
            return httpx.Response(200, stream=_Stream(endless()))
        if request.url.path == "/api/v1/throughput/upload":
            total = 0
            async for chunk in request.stream:  # type: ignore[union-attr]
                total += len(chunk)
            received.append(total)
            return httpx.Response(200, json={"bytes": total, "seconds": 1.0})
        return httpx.Response(404)

    return httpx.MockTransport(handler)


class _Stream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk


async def test_meter_measures_both_directions_from_the_steady_window() -> None:
    received: list[int] = []
    clock = TickClock(0.001)  # one 64 KiB chunk per millisecond per clock read
    meter = ServerMeter(
        base_url="http://cara-server.test",
        streams=2,
        duration=1.0,
        ramp=0.25,
        transport=scripted_server(received),
        clock=clock,
        now=lambda: NOW,
    )
    result = await meter.measure()
    # One clock read per chunk: 1 ms per 64 KiB in the window, whichever stream moved it.
    expected = CHUNK_BYTES * 8 / 0.001
    assert result.download_bps == pytest.approx(expected, rel=0.02)
    assert result.upload_bps == pytest.approx(expected, rel=0.02)
    assert result.bytes_used >= sum(received) > 0
    assert result.finished_at == NOW
    assert len(received) == 2


async def test_meter_reports_a_refusing_server_in_one_line() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(403, json={"title": "Forbidden"}))
    meter = ServerMeter(
        base_url="http://x.test", streams=1, duration=1.0, ramp=0.5, transport=transport, now=lambda: NOW
    )
    with pytest.raises(ThroughputError, match="download answered 403"):
        await meter.measure()


async def test_meter_reports_an_unreachable_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    meter = ServerMeter(
        base_url="http://x.test",
        streams=2,
        duration=1.0,
        ramp=0.5,
        transport=httpx.MockTransport(refuse),
        now=lambda: NOW,
    )
    with pytest.raises(ThroughputError, match=r"throughput test against http://x\.test failed: connection refused"):
        await meter.measure()


def test_meter_needs_a_window_longer_than_the_ramp() -> None:
    with pytest.raises(ValueError, match="longer than the ramp-up"):
        ServerMeter(base_url="http://x.test", duration=0.5, ramp=0.75, now=lambda: NOW)


async def test_download_route_streams_for_the_asked_time(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/throughput/download", params={"seconds": "0.002"})
    assert response.status_code == 200
    assert len(response.content) >= CHUNK_BYTES and len(response.content) % CHUNK_BYTES == 0


@pytest.mark.parametrize(
    "seconds", ["0", "11", "-1", "nan", "soon"], ids=["zero", "over-cap", "negative", "nan", "text"]
)
async def test_download_route_refuses_bad_seconds(api: httpx.AsyncClient, seconds: str) -> None:
    response = await api.get("/api/v1/throughput/download", params={"seconds": seconds})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == ["seconds: must be a number in (0, 10]"]


async def test_upload_route_counts_and_discards(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/throughput/upload", content=bytes(300_000))
    assert response.status_code == 200
    assert response.json()["bytes"] == 300_000 and response.json()["seconds"] >= 0


def fake_speedtest(fail: Exception | None) -> types.ModuleType:
    module = types.ModuleType("speedtest")

    class SpeedtestException(Exception):
        pass

    class ConfigRetrievalError(SpeedtestException):
        pass

    class Results:
        bytes_received, bytes_sent = 1000, 500

    class Speedtest:
        def __init__(self, secure: bool) -> None:
            if fail is not None:
                raise fail
            self.results = Results()

        def get_best_server(self) -> None:
            pass

        def download(self) -> float:
            return 50e6

        def upload(self) -> float:
            return 10e6

    module.SpeedtestException = SpeedtestException  # type: ignore[attr-defined]
    module.ConfigRetrievalError = ConfigRetrievalError  # type: ignore[attr-defined]
    module.Speedtest = Speedtest  # type: ignore[attr-defined]
    return module


async def test_speedtest_backend_reports_its_result() -> None:
    meter = SpeedtestMeter(now=lambda: NOW, load=lambda: fake_speedtest(None))
    assert await meter.measure() == Measurement(50e6, 10e6, 1500, NOW)


async def test_speedtest_backend_fails_clearly_without_speedtest_net() -> None:
    error = OSError("[Errno 101] Network is unreachable")
    meter = SpeedtestMeter(now=lambda: NOW, load=lambda: fake_speedtest(error))
    with pytest.raises(ThroughputError, match=r"speedtest backend: cannot reach speedtest.net \(OSError"):
        await meter.measure()


async def test_speedtest_backend_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "speedtest", None)  # as if speedtest-cli were not installed
    with pytest.raises(ThroughputError, match=r"needs speedtest-cli: pip install 'caravanserai-mesh\[speedtest\]'"):
        await SpeedtestMeter(now=lambda: NOW).measure()


async def test_viewers_may_not_load_the_server(memory_store: Store, clock: FakeClock, settings: Settings) -> None:
    class ViewerIdentity:
        async def identify(self, request: Request) -> Caller:
            return Caller(name="ops-viewer", role=Role.VIEWER)

    app = create_app(store=memory_store, now=clock.now, identity=ViewerIdentity(), settings=settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API_URL) as client:
        down = await client.get("/api/v1/throughput/download", params={"seconds": "1"})
        up = await client.post("/api/v1/throughput/upload", content=b"x")
    assert (down.status_code, up.status_code) == (403, 403)
    assert "a node or admin role is needed" in down.json()["detail"]


async def test_upload_route_answers_arrivals_on_its_own_clock(api: httpx.AsyncClient) -> None:
    doc = (await api.post("/api/v1/throughput/upload", content=bytes(200_000))).json()
    assert doc["bucketSeconds"] == 0.01
    assert sum(doc["buckets"]) == doc["bytes"] == 200_000
    assert isinstance(doc["start"], float)


async def test_meter_prefers_the_servers_arrival_buckets() -> None:
    """With buckets in the answer, the upload rate is what the server saw arrive in the steady window."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/download"):
            return httpx.Response(200, stream=_Stream(_chunks(50)))
        async for _ in request.stream:  # type: ignore[union-attr]
            pass
        # 100 buckets of 10 ms from t=1000.0: 12_500 bytes each = 10 Mbit/s throughout.
        return httpx.Response(
            200, json={"bytes": 1_250_000, "start": 1000.0, "bucketSeconds": 0.01, "buckets": [12_500] * 100}
        )

    meter = ServerMeter(
        base_url="http://x.test",
        streams=1,
        duration=1.0,
        ramp=0.25,
        transport=httpx.MockTransport(handler),
        clock=TickClock(0.001),
        now=lambda: NOW,
    )
    result = await meter.measure()
    assert result.upload_bps == pytest.approx(10e6, rel=0.02)


async def _chunks(n: int) -> AsyncIterator[bytes]:
    for _ in range(n):
        yield bytes(CHUNK_BYTES)
