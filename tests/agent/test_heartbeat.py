"""The register → beat → re-register loop against the real app in-process, with a fake clock and fake sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from agent.heartbeat import Backoff, Heartbeater, Snapshot
from controlplane.api import (
    AGENT_MAX_BACKOFF,
    Condition,
    ConditionStatus,
    Heartbeat,
    NetworkMode,
    NodeInfo,
    NodeNetworkStatus,
    find_condition,
)
from controlplane.client import Client
from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable
from tests.conftest import API_URL, FakeClock


class FakeSource:
    """FakeSource hands out a settable status; `mode` is the part tests change."""

    def __init__(self) -> None:
        self.mode = NetworkMode.DIRECT
        self.running = True
        self.calls = 0

    async def snapshot(self) -> Snapshot:
        self.calls += 1
        beat = Heartbeat(
            network=NodeNetworkStatus(ip="100.64.0.3", dns_name="edge1.tailnet.test", mode=self.mode),
            capacity={"cpu": "2000m", "memory": "1024Mi", "disk": "10Gi"},
            info=NodeInfo(kernel_version="6.1", os_image="Test OS", agent_version="0.1.0"),
            conditions=[Condition(type="NetworkUnavailable", status=ConditionStatus.FALSE, reason="TailscaledRunning")],
        )
        signature: Hashable = (self.mode,)
        return Snapshot(beat=beat, signature=signature, tailnet_running=self.running)


class Recorder(httpx.AsyncBaseTransport):
    """Recorder passes requests to the app and keeps (method, path, body) of each; it can fail on demand."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, bytes]] = []
        self.down = False
        # slow: the connection is made but no answer comes in time (a frozen or overloaded server).
        self.slow = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.slow:
            raise httpx.ReadTimeout("timed out", request=request)
        body = await request.aread()
        self.sent.append((request.method, request.url.path, body))
        return await self.inner.handle_async_request(request)

    def beats(self) -> list[bytes]:
        return [body for method, path, body in self.sent if path.endswith("/heartbeat")]


@pytest.fixture
def recorder(api_transport: httpx.ASGITransport) -> Recorder:
    return Recorder(api_transport)


def make(
    recorder: Recorder,
    clock: FakeClock,
    source: FakeSource,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Heartbeater:
    return Heartbeater(
        client=Client(API_URL, transport=recorder),
        node_name="edge1",
        hostname="Edge1",
        source=source,
        now=clock.now,
        interval=10.0,
        status_interval=60.0,
        backoff=Backoff(random=lambda: 0.5),
        sleep=sleep,
    )


async def test_first_pass_registers_and_sends_the_full_status(
    recorder: Recorder, clock: FakeClock, memory_store: Store
) -> None:
    beater = make(recorder, clock, FakeSource())
    assert await beater.beat_once() == 10.0
    assert [(m, p) for m, p, _ in recorder.sent] == [
        ("POST", "/api/v1/nodes"),
        ("POST", "/api/v1/nodes/edge1/heartbeat"),
    ]
    node = await memory_store.get_node("edge1")
    assert node.spec.hostname == "Edge1"
    assert node.status.network is not None and node.status.network.ip == "100.64.0.3"
    assert node.status.info is not None and node.status.info.os_image == "Test OS"
    assert find_condition(node.status.conditions, "NetworkUnavailable") is not None


async def test_unchanged_status_beats_empty_until_the_status_interval(recorder: Recorder, clock: FakeClock) -> None:
    beater = make(recorder, clock, FakeSource())
    for _ in range(7):
        await beater.beat_once()
        clock.step(10)
    sizes = [len(body) > 2 for body in recorder.beats()]
    # t=0 full, 10..50 empty, t=60 full again (status interval)
    assert sizes == [True, False, False, False, False, False, True]
    assert beater.state.counts == {"registered": 1, "full": 2, "empty": 5}


async def test_a_change_sends_the_full_status_at_once(
    recorder: Recorder, clock: FakeClock, memory_store: Store
) -> None:
    source = FakeSource()
    beater = make(recorder, clock, source)
    await beater.beat_once()
    clock.step(10)
    await beater.beat_once()
    source.mode = NetworkMode.DERP
    clock.step(10)
    await beater.beat_once()
    assert [len(b) > 2 for b in recorder.beats()] == [True, False, True]
    node = await memory_store.get_node("edge1")
    assert node.status.network is not None and node.status.network.mode is NetworkMode.DERP


async def test_an_existing_node_409_counts_as_registered(
    recorder: Recorder, clock: FakeClock, api: httpx.AsyncClient
) -> None:
    await api.post(
        "/api/v1/nodes", json={"apiVersion": "caravanserai/v1", "kind": "Node", "metadata": {"name": "edge1"}}
    )
    beater = make(recorder, clock, FakeSource())
    assert await beater.beat_once() == 10.0
    assert beater.state.registered and beater.state.counts["full"] == 1


async def test_404_registers_again_and_resends_everything(
    recorder: Recorder, clock: FakeClock, memory_store: Store, leases: LeaseTable, api: httpx.AsyncClient
) -> None:
    beater = make(recorder, clock, FakeSource())
    await beater.beat_once()
    assert (await api.delete("/api/v1/nodes/edge1")).status_code == 204
    clock.step(10)
    assert await beater.beat_once() == 0.0  # 404, registered again, beat now
    assert beater.state.counts["not_found"] == 1 and beater.state.counts["registered"] == 2
    assert await beater.beat_once() == 10.0
    assert len(recorder.beats()[-1]) > 2  # the full status, not an empty beat
    node = await memory_store.get_node("edge1")
    assert node.status.network is not None and node.status.network.dns_name == "edge1.tailnet.test"
    assert leases.get("edge1") is not None


async def test_a_server_that_answers_too_slowly_is_backed_off_from_then_gets_the_current_status(
    recorder: Recorder, clock: FakeClock
) -> None:
    beater = make(recorder, clock, FakeSource())
    await beater.beat_once()
    recorder.slow = True
    delays = []
    for _ in range(6):
        clock.step(10)
        delays.append(await beater.beat_once())
    assert delays == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]  # jitter factor 1.0 at random() = 0.5
    assert not beater.state.server_reachable and "cannot reach the control plane" in beater.state.last_error
    recorder.slow = False
    clock.step(10)
    assert await beater.beat_once() == 10.0
    assert len(recorder.beats()[-1]) > 2  # back: the full status at once, not an empty beat
    assert beater.state.server_reachable and beater.backoff.failures == 0


async def test_no_connection_is_retried_every_interval_so_a_cut_link_recovers_within_one(
    recorder: Recorder, clock: FakeClock
) -> None:
    beater = make(recorder, clock, FakeSource())
    await beater.beat_once()
    recorder.down = True  # refused or unroutable: the request never reaches the server
    delays = []
    for _ in range(6):
        clock.step(10)
        delays.append(await beater.beat_once())
    assert delays == [10.0] * 6
    assert not beater.state.server_reachable and "cannot reach the control plane" in beater.state.last_error
    recorder.down = False
    clock.step(10)
    assert await beater.beat_once() == 10.0
    assert len(recorder.beats()[-1]) > 2  # back: the full status at once, not an empty beat
    assert beater.state.server_reachable and beater.backoff.failures == 0


@pytest.mark.parametrize(("r", "low"), [(0.0, 4.0), (1.0, 6.0), (0.25, 4.5)], ids=["min", "max", "quarter"])
def test_backoff_jitter_is_twenty_percent(r: float, low: float) -> None:
    backoff = Backoff(random=lambda: r)
    assert backoff.next_delay() == pytest.approx(low)
    assert backoff.failures == 1
    for _ in range(10):
        delay = backoff.next_delay()
    assert delay == pytest.approx(60.0 * (0.8 + 0.4 * r))
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(5.0 * (0.8 + 0.4 * r))


def test_the_longest_backoff_is_the_one_the_lifecycle_stall_rule_assumes() -> None:
    backoff = Backoff(random=lambda: 1.0)  # the top of the jitter
    longest = max(backoff.next_delay() for _ in range(20))
    assert longest == pytest.approx(AGENT_MAX_BACKOFF.total_seconds())


async def test_going_away_releases_the_lease_so_the_node_turns_not_ready(
    recorder: Recorder, clock: FakeClock, leases: LeaseTable
) -> None:
    beater = make(recorder, clock, FakeSource())
    await beater.beat_once()
    lease = leases.get("edge1")
    assert lease is not None and lease.is_fresh(clock.now(), timedelta(seconds=40))
    assert await beater.going_away()
    assert recorder.beats()[-1] == b'{"state":"NotReady"}'
    released = leases.get("edge1")
    assert released is None or not released.is_fresh(clock.now(), timedelta(seconds=40))


async def test_going_away_before_registering_sends_nothing(recorder: Recorder, clock: FakeClock) -> None:
    beater = make(recorder, clock, FakeSource())
    assert not await beater.going_away()
    assert recorder.sent == []


async def test_run_stops_when_asked(recorder: Recorder, clock: FakeClock) -> None:
    stop = asyncio.Event()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.step(seconds)
        if len(slept) == 3:
            stop.set()
        await asyncio.sleep(0)

    beater = make(recorder, clock, FakeSource(), sleep=fake_sleep)
    await asyncio.wait_for(beater.run(stop), 5)
    assert slept == [10.0, 10.0, 10.0]
    assert len(recorder.beats()) == 3


async def test_while_our_tailscaled_is_down_retry_every_second_without_backoff(
    recorder: Recorder, clock: FakeClock
) -> None:
    source = FakeSource()
    beater = make(recorder, clock, source)
    await beater.beat_once()
    recorder.down = True
    source.running = False
    delays = [await beater.beat_once() for _ in range(4)]
    assert delays == [1.0, 1.0, 1.0, 1.0]  # the fault is ours: no growing backoff, and a local look is cheap
    source.running = True
    assert await beater.beat_once() == 1.0  # tailscaled is back but the path is settling: once more soon
    recorder.down, recorder.slow = False, True
    assert await beater.beat_once() == 5.0  # connected but no answer with a Running tailscaled: the server's fault
    recorder.slow = False
    assert await beater.beat_once() == 10.0


async def test_with_a_short_interval_one_lost_beat_is_retried_on_schedule(recorder: Recorder, clock: FakeClock) -> None:
    beater = make(recorder, clock, FakeSource())
    beater.interval = 2.0
    await beater.beat_once()
    recorder.slow = True
    assert [await beater.beat_once() for _ in range(4)] == [2.0, 10.0, 20.0, 40.0]


class SlowSource(FakeSource):
    """SlowSource takes its snapshot only when `release` is set (a disco ping or peer probe on a full link)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def snapshot(self) -> Snapshot:
        await self.release.wait()
        return await super().snapshot()


async def test_a_slow_snapshot_never_holds_the_beat_back(
    recorder: Recorder, clock: FakeClock, memory_store: Store
) -> None:
    source = SlowSource()
    beater = make(recorder, clock, source)
    beater.snapshot_budget = 0.01  # real seconds: asyncio.wait's own timeout
    assert await beater.beat_once() == 10.0
    assert recorder.beats() == [b"{}"]  # on time, empty: the lease is renewed without the facts
    assert beater.state.sent_signature is None
    node = await memory_store.get_node("edge1")
    assert node.status.network is None
    source.release.set()
    await asyncio.sleep(0.01)  # the snapshot finishes between beats
    assert await beater.beat_once() == 10.0
    assert recorder.beats()[-1] != b"{}" and source.calls == 1  # the next beat carries it; no second snapshot
    node = await memory_store.get_node("edge1")
    assert node.status.network is not None and node.status.network.ip == "100.64.0.3"


async def test_beats_are_an_interval_apart_start_to_start(recorder: Recorder, clock: FakeClock) -> None:
    stop = asyncio.Event()
    slept: list[float] = []

    class TakesThreeSeconds(FakeSource):
        async def snapshot(self) -> Snapshot:
            clock.step(3)  # collecting took 3 s of the interval
            return await super().snapshot()

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.step(seconds)
        if len(slept) == 2:
            stop.set()
        await asyncio.sleep(0)

    beater = make(recorder, clock, TakesThreeSeconds(), sleep=fake_sleep)
    await asyncio.wait_for(beater.run(stop), 5)
    assert slept == [7.0, 7.0]


async def test_a_late_snapshot_goes_out_as_soon_as_it_is_taken(recorder: Recorder, clock: FakeClock) -> None:
    stop = asyncio.Event()
    source = SlowSource()
    slept: list[float] = []

    async def never_wakes(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            source.release.set()  # the slow snapshot finishes a moment after the empty beat
        else:
            stop.set()
        await asyncio.Event().wait()  # the interval's end never comes: only the snapshot (or stop) wakes the loop

    beater = make(recorder, clock, source, sleep=never_wakes)
    beater.snapshot_budget = 0.01
    await asyncio.wait_for(beater.run(stop), 5)
    assert recorder.beats()[0] == b"{}" and recorder.beats()[1] != b"{}"  # empty on time, then the full status
    assert len(recorder.beats()) == 2


async def test_a_witness_request_is_checked_at_once_and_reported_by_an_immediate_beat(
    recorder: Recorder, clock: FakeClock, app: FastAPI
) -> None:
    asked: list[list[str]] = []

    async def witness(names: Sequence[str]) -> int:
        asked.append(list(names))
        return 1

    beater = Heartbeater(
        client=Client(API_URL, transport=recorder),
        node_name="edge1",
        hostname="edge1",
        source=FakeSource(),
        now=clock.now,
        interval=10.0,
        witness=witness,
    )
    assert await beater.beat_once() == 10.0, "nothing asked: the normal interval"
    app.state.context.writes.witnesses.want(["edge3", "edge1"])  # the leader wants a witness of silent edge3
    assert await beater.beat_once() == 0.0, "asked: checked now, and the next beat goes out at once"
    assert asked == [["edge3"]], "never itself"
    assert beater.state.counts["witnessed"] == 1
    clock.step(1)
    assert await beater.beat_once() == 10.0, "asked again within half an interval: not redone"
    assert asked == [["edge3"]]


async def test_a_witness_request_is_ignored_without_a_witness(
    recorder: Recorder, clock: FakeClock, app: FastAPI
) -> None:
    beater = make(recorder, clock, FakeSource())
    await beater.beat_once()
    app.state.context.writes.witnesses.want(["edge3"])
    assert await beater.beat_once() == 10.0


class Stalling(httpx.AsyncBaseTransport):
    """Stalling holds the next `stall` heartbeat requests: for `stall_for` seconds and then a read timeout (a lost
    SYN or segment that TCP resends too late), or forever when stall_for is None. It counts what it held and what
    was cancelled while held; `delay` slows every answer (a busy server)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.stall, self.held, self.cancelled = 0, 0, 0
        self.stall_for: float | None = None
        self.delay = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/heartbeat") and self.stall > 0:
            self.stall -= 1
            self.held += 1
            try:
                if self.stall_for is None:
                    await asyncio.Event().wait()
                await asyncio.sleep(self.stall_for or 0.0)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            raise httpx.ReadTimeout("timed out", request=request)
        await asyncio.sleep(self.delay)
        return await self.inner.handle_async_request(request)


def hedging(recorder: Recorder, clock: FakeClock, stalling: Stalling) -> Heartbeater:
    stalling.inner = recorder
    return Heartbeater(
        client=Client(API_URL, transport=stalling),
        node_name="edge1",
        hostname="Edge1",
        source=FakeSource(),
        now=clock.now,
        interval=10.0,
        backoff=Backoff(random=lambda: 0.5),
        hedge_after=0.2,
    )


async def test_a_beat_not_answered_in_time_goes_again_over_a_new_connection_and_the_first_answer_wins(
    recorder: Recorder, clock: FakeClock
) -> None:
    stalling = Stalling(recorder)
    beater = hedging(recorder, clock, stalling)
    assert await beater.beat_once() == 10.0  # answered at once: the server is fast, so later beats may be hedged
    before = len(recorder.beats())
    stalling.stall = 1  # this beat's first attempt never gets an answer
    clock.step(10)
    assert await asyncio.wait_for(beater.beat_once(), 5) == 10.0
    assert len(recorder.beats()) == before + 1  # the hedge reached the server; the held attempt never did
    assert (stalling.held, stalling.cancelled) == (1, 1)  # and it was cancelled, not left hanging
    assert beater.state.counts["hedged"] == 1 and beater.state.server_reachable


async def test_hedges_stop_after_two_and_the_beat_fails_as_one(recorder: Recorder, clock: FakeClock) -> None:
    stalling = Stalling(recorder)
    beater = hedging(recorder, clock, stalling)
    await beater.beat_once()
    stalling.stall, stalling.stall_for = 10, 0.7
    clock.step(10)
    assert await beater.beat_once() == 5.0  # one failed beat: the backoff's first step (random() = 0.5)
    assert stalling.held == 3 and beater.state.counts["hedged"] == 2
    assert beater.state.counts["failed"] == 1 and "cannot reach the control plane" in beater.state.last_error
    clock.step(5)
    assert await beater.beat_once() == 5.0 * 2  # the server has not answered since: no hedge this time
    assert stalling.held == 4 and beater.state.counts["hedged"] == 2


async def test_the_first_beat_and_beats_to_a_slow_server_are_not_hedged(recorder: Recorder, clock: FakeClock) -> None:
    stalling = Stalling(recorder)
    beater = hedging(recorder, clock, stalling)
    stalling.stall, stalling.stall_for = 1, 0.5  # no answer yet: nothing says the server could take a second beat
    await beater.beat_once()
    assert stalling.held == 1 and "hedged" not in beater.state.counts
    stalling.delay = 0.25  # answers, but slower than hedge_after: a busy server gets no extra load
    assert await beater.beat_once() == 10.0
    stalling.stall, stalling.delay = 1, 0.0
    clock.step(10)
    await beater.beat_once()
    assert stalling.held == 2 and "hedged" not in beater.state.counts
