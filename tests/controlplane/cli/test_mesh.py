"""Tests of `caractrl mesh` (matrix, colour, JSON) and of the history part of `caractrl describe node`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from controlplane.client import Client, NotFound
from tests.conftest import FakeClock

from .conftest import API_URL, Caractrl

LAST_SEEN = "2026-11-24T11:59:58Z"


UDP_BLOCKED = "disco pings to the peer's endpoints (10.99.3.2:41641) went unanswered while this node is direct"
NO_DIRECT = (
    "disco pings to the peer's endpoints (10.99.1.2:41641) went unanswered, and this node is direct with no peer"
)


def peer(
    name: str, mode: str | None, latency: float | None = None, region: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "ip": f"100.64.0.{name[-1]}", "lastSeen": LAST_SEEN}
    why = (reason, UDP_BLOCKED, LAST_SEEN) if reason else (None, None, None)
    for key, value in (
        ("mode", mode),
        ("latencyMs", latency),
        ("derpRegion", region),
        ("relayReason", why[0]),
        ("relayMessage", why[1]),
        ("since", why[2]),
    ):
        if value is not None:
            body[key] = value
    return body


@pytest.fixture
async def fleet(api: httpx.AsyncClient, clock: FakeClock) -> None:
    """fleet: edge1 ↔ edge2 Direct, edge1 → edge3 DERP(lab), edge3 silent; edge1 also talks to a non-Node host."""
    for name in ("edge2", "edge1", "edge3"):
        assert (await api.post("/api/v1/nodes", json={"metadata": {"name": name}})).status_code == 201
    beats = {
        "edge1": {
            "mode": "Direct",
            "latencyMs": 2.25,
            "peers": [
                peer("edge3", "DERP", 41.0, "lab", "UDPBlocked"),
                peer("edge2", "Direct", 1.5),
                peer("laptop9", "Direct"),
            ],
        },
        "edge2": {
            "mode": "DERP",
            "derpRegion": "lab",
            "latencyMs": 38.0,
            "relayReason": "NoDirectPaths",
            "relayMessage": NO_DIRECT,
            "peers": [peer("edge1", "Direct", 1.4)],
        },
    }
    for name, network in beats.items():
        answer = await api.post(f"/api/v1/nodes/{name}/heartbeat", json={"network": network})
        assert answer.status_code == 204


@pytest.mark.usefixtures("fleet")
async def test_the_default_is_a_summary_and_the_paths_not_direct(caractrl: Caractrl, clock: FakeClock) -> None:
    clock.step(20)
    result = await caractrl("mesh")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "3 nodes (3 NotReady) · 3 pairs reported: 2 Direct, 1 relayed, 0 unknown, 0 stale · 3 pairs not probed"
        " · 1 relayed control path",  # edge2's own path: counted apart from the pairs
        "FROM    TO            PATH        REASON          SINCE    WHY",
        "edge1   edge3         DERP(lab)   UDPBlocked      22s      "
        "disco pings to the peer's endpoints (10.99.3.2:41641) went…",
        "edge2   cara-server   DERP(lab)   NoDirectPaths   <none>   "  # its own path to the control plane: why too
        "disco pings to the peer's endpoints (10.99.1.2:41641) went…",
    ]
    assert "\x1b[" not in result.stdout
    wide = (await caractrl("mesh", "-o", "wide")).stdout.splitlines()
    assert wide[2].endswith(UDP_BLOCKED)


@pytest.mark.usefixtures("fleet")
async def test_the_matrix_has_one_character_cells_and_a_legend(caractrl: Caractrl) -> None:
    result = await caractrl("mesh", "--matrix")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Legend: · Direct  D DERP  R peer relay  ? unknown")
    assert "(blank) not probed" in lines[0] and "\\ self" in lines[0]
    assert lines[2:] == [
        "        C 123",
        "1 edge1 · \\·D",
        "2 edge2 D ·\\",  # edge2 reports no path to edge3: not probed (blank), not unknown
        "3 edge3 ?   \\",  # edge3 never reported: its path to the control plane is unknown, its pairs not probed
    ]


async def test_unknown_is_apart_from_not_probed_and_selectors_narrow_the_fleet(
    caractrl: Caractrl, api: httpx.AsyncClient
) -> None:
    for name, labels in (("a1", {"site": "a"}), ("a2", {"site": "a"}), ("b1", {"site": "b"})):
        body = {"metadata": {"name": name, "labels": labels}}
        assert (await api.post("/api/v1/nodes", json=body)).status_code == 201
    network = {"mode": "Direct", "peers": [{"name": "a2", "relayReason": "NoAnswer"}, peer("b1", "Direct", 1.0)]}
    assert (await api.post("/api/v1/nodes/a1/heartbeat", json={"network": network})).status_code == 204
    everything = (await caractrl("mesh", "--matrix")).stdout.splitlines()[-3:]
    assert everything == ["1 a1 · \\?·", "2 a2 ?  \\", "3 b1 ?   \\"]
    site_a = await caractrl("mesh", "-l", "site=a")
    assert site_a.stdout.splitlines() == [
        "2 nodes (2 NotReady) · 1 pairs reported: 0 Direct, 0 relayed, 1 unknown, 0 stale · 1 pairs not probed"
        " · 0 relayed control paths",
        "FROM   TO   PATH      REASON     SINCE    WHY",
        "a1     a2   unknown   NoAnswer   <none>   <none>",
    ]
    assert (await caractrl("mesh", "-l", "site!")).exit_code == 1
    assert len((await caractrl("mesh", "-l", "site notin (b)")).stdout.splitlines()) == 3  # set-based selectors too


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize(
    ("args", "environ", "colored"),
    [
        pytest.param(["--color", "always"], {}, True, id="always"),
        pytest.param(["--color", "always"], {"NO_COLOR": "1"}, True, id="always-beats-no-color"),
        pytest.param([], {}, False, id="auto-when-piped"),
        pytest.param(["--color", "never"], {}, False, id="never"),
    ],
)
async def test_colour_only_when_asked_or_on_a_terminal(
    caractrl: Caractrl, args: list[str], environ: dict[str, str], colored: bool
) -> None:
    result = await caractrl("mesh", *args, environ={"CARA_SERVER": API_URL, **environ})
    assert result.exit_code == 0
    assert ("\x1b[33mDERP(lab)\x1b[0m" in result.stdout) is colored
    grid = await caractrl("mesh", "--matrix", *args, environ={"CARA_SERVER": API_URL, **environ})
    assert ("\x1b[32m·\x1b[0m" in grid.stdout) is colored


@pytest.mark.usefixtures("fleet")
async def test_json_lists_the_nodes_and_every_reported_path_between_nodes(caractrl: Caractrl) -> None:
    result = await caractrl("mesh", "-o", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "nodes": ["edge1", "edge2", "edge3"],
        "paths": [
            {
                "from": "edge1",
                "to": "edge2",
                "mode": "Direct",
                "derpRegion": None,
                "latencyMs": 1.5,
                "lastSeen": LAST_SEEN,
                "stale": False,
                "relayReason": None,
                "relayMessage": None,
                "since": None,
            },
            {
                "from": "edge1",
                "to": "edge3",
                "mode": "DERP",
                "derpRegion": "lab",
                "latencyMs": 41.0,
                "lastSeen": LAST_SEEN,
                "stale": False,
                "relayReason": "UDPBlocked",
                "relayMessage": UDP_BLOCKED,
                "since": LAST_SEEN,
            },
            {
                "from": "edge2",
                "to": "edge1",
                "mode": "Direct",
                "derpRegion": None,
                "latencyMs": 1.4,
                "lastSeen": LAST_SEEN,
                "stale": False,
                "relayReason": None,
                "relayMessage": None,
                "since": None,
            },
        ],
        # A key added by issue 14; the others keep their shape.
        "summary": {
            "nodes": 3,
            "direct": 2,
            "relayed": 1,
            "unknown": 0,
            "stale": 0,
            "notProbed": 3,
            "notReady": 3,
            "relayedControl": 1,
        },
    }


@pytest.mark.usefixtures("fleet")
async def test_a_silent_nodes_paths_are_shown_stale_never_as_current(
    caractrl: Caractrl, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.step(30)
    assert (await api.post("/api/v1/nodes/edge2/heartbeat")).status_code == 204  # edge2 reconfirms; edge1 does not
    clock.step(15)  # edge1 last beat 45 s ago: past the 40 s grace
    lines = (await caractrl("mesh")).stdout.splitlines()
    # edge2 reconfirmed: its relayed own path is current; a stale Node's would not be counted
    assert lines[0].endswith("1 Direct, 0 relayed, 0 unknown, 2 stale · 3 pairs not probed · 1 relayed control path")
    # Every path of edge1 is listed, last known (with ?), not current: since its last confirmation, 45 s ago.
    assert [line.split()[:5] for line in lines[2:]] == [
        ["edge2", "cara-server", "DERP(lab)", "NoDirectPaths", "<none>"],
        ["edge1", "cara-server", "Direct?", "Stale", "45s"],
        ["edge1", "edge2", "Direct?", "Stale", "45s"],
        ["edge1", "edge3", "DERP(lab)?", "UDPBlocked", "45s"],
    ]
    assert lines[3].endswith("the Node's facts are stale: last known, not current")
    grid = (await caractrl("mesh", "--matrix")).stdout.splitlines()[-3:]
    assert grid[0] == "1 edge1 s \\ss"  # its own path and both reported paths stale, never "·" or "D"
    listed = json.loads((await caractrl("mesh", "-o", "json")).stdout)["paths"]
    assert [(p["from"], p["to"], p["stale"]) for p in listed] == [
        ("edge1", "edge2", True),
        ("edge1", "edge3", True),
        ("edge2", "edge1", False),
    ]


async def test_an_empty_fleet(caractrl: Caractrl) -> None:
    table = await caractrl("mesh")
    assert (table.exit_code, table.stdout, table.stderr) == (0, "", "No resources found\n")
    as_json = await caractrl("mesh", "-o", "json")
    assert json.loads(as_json.stdout) == {
        "nodes": [],
        "paths": [],
        "summary": {
            "nodes": 0,
            "direct": 0,
            "relayed": 0,
            "unknown": 0,
            "stale": 0,
            "notProbed": 0,
            "notReady": 0,
            "relayedControl": 0,
        },
    }


@pytest.mark.usefixtures("fleet")
async def test_describe_node_ends_with_its_recent_history(
    caractrl: Caractrl, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    for minute in range(7):
        clock.step(60)
        throughput = {"download": f"9{minute}.0Mbps", "upload": "40.0Mbps", "lastTestTime": clock.now().isoformat()}
        network = {"mode": "DERP" if minute % 2 else "Direct", "derpRegion": "lab", "throughput": throughput}
        assert (await api.post("/api/v1/nodes/edge2/heartbeat", json={"network": network})).status_code == 204
    lines = (await caractrl("describe", "node", "edge2")).stdout.splitlines()
    start = lines.index("Throughput history (last 5 of 7):")
    assert [line.split() for line in lines[start + 1 : start + 3]] == [
        ["TIME", "DOWNLOAD", "UPLOAD", "BYTES"],
        ["2026-11-24T12:03:00Z", "92.0Mbps", "40.0Mbps", "<none>"],
    ]
    assert lines[start + 6].split()[:2] == ["2026-11-24T12:07:00Z", "96.0Mbps"]
    paths = lines.index("Path changes (last 5 of 9):")
    assert lines[paths + 1].split() == ["TIME", "PEER", "FROM", "TO", "LATENCY"]
    block = lines[paths + 1 : lines.index("Availability:")]
    # The beats carry no latency, so the fleet's stored 38 ms stays (network merges field by field, design §3.4).
    assert block[-1].split() == ["2026-11-24T12:07:00Z", "cara-server", "DERP", "Direct", "38ms"]
    assert block[-2].split() == ["2026-11-24T12:06:00Z", "cara-server", "Direct", "DERP(lab)", "38ms"]
    # Then its availability (only a path to the control plane was reported; no Ready judgement in this test)
    # and its last Events, the path changes among them.
    availability = lines.index("Availability:")
    assert [line.split()[:3] for line in lines[availability + 1 : availability + 4]] == [
        ["LAST", "24H", "LAST"],
        ["Ready", "<none>", "<none>"],
        ["Direct", "to", "cara-server"],
    ]
    events = lines[lines.index("Events:") + 1 :]
    assert events[0].split() == ["TYPE", "REASON", "AGE", "MESSAGE"]
    assert len(events) == 1 + 9  # registered, then its 8 path changes (the first Direct one is no news)
    assert events[-1].split()[:3] == ["Normal", "PathChanged", "0s"]
    assert "edge2 → cara-server: DERP → Direct" in events[-1]


@pytest.mark.usefixtures("fleet")
async def test_describe_node_without_history_says_none(caractrl: Caractrl) -> None:
    lines = (await caractrl("describe", "node", "edge3")).stdout.splitlines()
    start = lines.index("Throughput history:<none>")
    assert lines[start : start + 3] == ["Throughput history:<none>", "Path changes: <none>", "Availability:"]
    assert lines[-3] == "Events:"
    assert lines[-1].split()[:2] == ["Normal", "Registered"]


async def test_client_history_raises_not_found_for_an_unknown_node(api_transport: httpx.ASGITransport) -> None:
    async with Client(API_URL, transport=api_transport) as client:
        with pytest.raises(NotFound, match='Node "ghost" not found'):
            await client.history("ghost")


@pytest.mark.usefixtures("fleet")
async def test_describe_node_says_why_its_own_path_is_relayed(caractrl: Caractrl) -> None:
    lines = (await caractrl("describe", "node", "edge2")).stdout.splitlines()
    network = lines[lines.index("  network:") + 1 : lines.index("    peers:")]
    assert [line.split(":", 1)[0].strip() for line in network] == [
        "mode",
        "derpRegion",
        "latencyMs",
        "relayReason",
        "relayMessage",
    ]
    assert network[3].split() == ["relayReason:", "NoDirectPaths"] and network[4].endswith(NO_DIRECT)
