"""Path classification: pongs and status from the lab, table-driven, plus the probe loop with a scripted daemon."""

from __future__ import annotations

import httpx
import pytest

from mesh import (
    Path,
    PathMode,
    PeerStatus,
    PingResult,
    Via,
    classify_peer,
    classify_pong,
    classify_pongs,
    probe_path,
    wait_for_mode,
)

from .captured import Answer, peer, pong
from .conftest import ClientFactory

DIRECT = pong("edge1-ping-edge2-direct.json")
DERP = pong("edge1-ping-edge2-derp.json")
TSMP = pong("edge1-ping-edge2-tsmp.json")
# A peer-relay pong: the DERP capture with the carrier swapped (the lab has no peer relay to capture from).
RELAYED = DERP.model_copy(update={"derp_region_id": 0, "derp_region_code": "", "peer_relay": "10.99.13.2:7777:vni:5"})
FAILED = DERP.model_copy(update={"err": "timeout", "derp_region_id": 0, "derp_region_code": "", "latency_seconds": 0})


@pytest.mark.parametrize(
    ("result", "via", "mode", "detail"),
    [
        (DIRECT, Via.DIRECT, PathMode.DIRECT, DIRECT.endpoint),
        (DERP, Via.DERP, PathMode.DERP, "headscale"),
        (RELAYED, Via.PEER_RELAY, PathMode.DERP, "10.99.13.2:7777:vni:5"),
        (TSMP, Via.NO_ANSWER, None, ""),
        (FAILED, Via.NO_ANSWER, None, ""),
    ],
    ids=["endpoint-is-direct", "derp-region-is-derp", "peer-relay-is-not-direct", "tsmp-names-no-path", "error"],
)
def test_classify_pong(result: PingResult, via: Via, mode: PathMode | None, detail: str) -> None:
    path = classify_pong(result)
    assert (path.via, path.mode) == (via, mode)
    assert detail == (path.endpoint or path.derp_region or path.peer_relay)
    if via in (Via.DIRECT, Via.DERP, Via.PEER_RELAY):
        assert path.latency_ms is not None and path.latency_ms > 0
        assert path.latency_ms == pytest.approx(result.latency_seconds * 1000)


@pytest.mark.parametrize(
    ("pongs", "via"),
    [
        ([DERP, DIRECT], Via.DIRECT),
        ([DIRECT, DERP], Via.DIRECT),
        ([DERP, DERP, DERP], Via.DERP),
        ([DERP, RELAYED], Via.PEER_RELAY),
        ([FAILED, DERP], Via.DERP),
        ([FAILED], Via.NO_ANSWER),
        ([], Via.NO_ANSWER),
    ],
    ids=[
        "late-direct-wins",
        "early-direct-wins",
        "all-derp",
        "relay-beats-derp",
        "failures-skipped",
        "no-pong",
        "none",
    ],
)
def test_classify_pongs_direct_if_any_endpoint_else_relayed(pongs: list[PingResult], via: Via) -> None:
    assert classify_pongs(pongs).via is via


EDGE2_IDLE = peer("edge1-status.json", "edge2")
EDGE2_DIRECT = peer("edge1-status-direct.json", "edge2")
EDGE2_DERP = peer("edge1-status-derp.json", "edge2")


@pytest.mark.parametrize(
    ("status_peer", "expected"),
    [
        (EDGE2_DIRECT, Path(Via.DIRECT, endpoint=EDGE2_DIRECT.cur_addr)),
        (EDGE2_DERP, Path(Via.DERP, derp_region="headscale")),
        (EDGE2_IDLE, Path(Via.IDLE)),
        (
            EDGE2_DERP.model_copy(update={"peer_relay": "10.99.13.2:7777:vni:5"}),
            Path(Via.PEER_RELAY, peer_relay="10.99.13.2:7777:vni:5"),
        ),
        (EDGE2_DIRECT.model_copy(update={"online": False}), Path(Via.OFFLINE)),
    ],
    ids=["curaddr-is-direct", "active-with-relay-is-derp", "relay-alone-is-only-home", "peer-relay", "offline"],
)
def test_classify_peer_passively(status_peer: PeerStatus, expected: Path) -> None:
    assert classify_peer(status_peer) == expected


def test_relay_is_the_home_region_even_on_a_direct_path() -> None:
    # The captures show why Relay alone proves nothing: it is the same on the direct, DERP and idle peer.
    assert EDGE2_DIRECT.relay == EDGE2_DERP.relay == EDGE2_IDLE.relay == "headscale"
    assert [classify_peer(p).mode for p in (EDGE2_DIRECT, EDGE2_DERP, EDGE2_IDLE)] == [
        PathMode.DIRECT,
        PathMode.DERP,
        None,
    ]


class RecordingSleep:
    """RecordingSleep stands in for asyncio.sleep and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_probe_stops_at_the_first_direct_pong(fake_client: ClientFactory) -> None:
    script: list[Answer] = [
        httpx.ReadTimeout("no pong"),
        (200, "edge1-ping-edge2-derp.json"),
        (200, "edge1-ping-edge2-direct.json"),
    ]
    client, daemon = fake_client({"POST ping": script})
    sleep = RecordingSleep()
    path = await probe_path(client, "100.64.0.4", attempts=10, interval=1.0, sleep=sleep)
    assert path == classify_pong(DIRECT)
    assert len(daemon.requests) == 3 and sleep.waits == [1.0, 1.0]
    assert all(r.url.params["type"] == "disco" for r in daemon.requests)


async def test_probe_says_derp_only_after_every_attempt_came_via_derp(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"POST ping": (200, "edge1-ping-edge2-derp.json")})
    sleep = RecordingSleep()
    path = await probe_path(client, "100.64.0.4", attempts=4, interval=0.5, sleep=sleep)
    assert (path.mode, path.derp_region) == (PathMode.DERP, "headscale")
    assert len(daemon.requests) == 4 and sleep.waits == [0.5, 0.5, 0.5]


async def test_probe_without_any_pong_is_no_answer(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"POST ping": httpx.ReadTimeout("no pong")})
    path = await probe_path(client, "100.64.0.4", attempts=2, sleep=RecordingSleep())
    assert path.via is Via.NO_ANSWER and path.mode is None and len(daemon.requests) == 2


class FakeClock:
    """FakeClock is a monotonic clock that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


async def test_wait_for_mode_returns_the_first_pong_in_the_wanted_mode(fake_client: ClientFactory) -> None:
    script: list[Answer] = [
        (200, "edge1-ping-edge2-direct.json"),
        httpx.ReadTimeout("dead direct path"),
        (200, "edge1-ping-edge2-derp.json"),
    ]
    client, daemon = fake_client({"POST ping": script})
    clock = FakeClock()
    elapsed, path = await wait_for_mode(
        client, "100.64.0.4", PathMode.DERP, within=20, interval=1.0, clock=clock, sleep=clock.sleep
    )
    assert (elapsed, path) == (2.0, classify_pong(DERP))
    assert len(daemon.requests) == 3 and clock.waits == [1.0, 1.0]
    assert daemon.requests[0].extensions["timeout"]["read"] == 2.0


async def test_wait_for_mode_gives_up_after_within_seconds(fake_client: ClientFactory) -> None:
    client, daemon = fake_client({"POST ping": (200, "edge1-ping-edge2-derp.json")})
    clock = FakeClock()
    elapsed, path = await wait_for_mode(
        client, "100.64.0.4", PathMode.DIRECT, within=3, interval=1.0, clock=clock, sleep=clock.sleep
    )
    assert elapsed == 3.0 and path.mode is PathMode.DERP
    assert len(daemon.requests) == 4
