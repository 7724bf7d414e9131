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


def peer(name: str, mode: str | None, latency: float | None = None, region: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "ip": f"100.64.0.{name[-1]}", "lastSeen": LAST_SEEN}
    for key, value in (("mode", mode), ("latencyMs", latency), ("derpRegion", region)):
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
            "peers": [peer("edge3", "DERP", 41.0, "lab"), peer("edge2", "Direct", 1.5), peer("laptop9", "Direct")],
        },
        "edge2": {"mode": "DERP", "derpRegion": "lab", "latencyMs": 38.0, "peers": [peer("edge1", "Direct", 1.4)]},
    }
    for name, network in beats.items():
        answer = await api.post(f"/api/v1/nodes/{name}/heartbeat", json={"network": network})
        assert answer.status_code == 204


MATRIX = [
    "FROM \\ TO   cara-server      edge1          edge2          edge3",
    "edge1       Direct 2.2ms     -              Direct 1.5ms   DERP(lab) 41ms",
    "edge2       DERP(lab) 38ms   Direct 1.4ms   -              unknown",
    "edge3       unknown          unknown        unknown        -",
]


@pytest.mark.usefixtures("fleet")
async def test_the_matrix_is_plain_and_aligned_when_piped(caractrl: Caractrl) -> None:
    result = await caractrl("mesh")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == MATRIX
    assert "\x1b[" not in result.stdout


@pytest.mark.usefixtures("fleet")
async def test_cells_are_exactly_the_reported_paths(caractrl: Caractrl) -> None:
    lines = (await caractrl("mesh")).stdout.splitlines()
    cells = [[cell.strip() for cell in line.split("   ") if cell.strip()] for line in lines]
    assert cells == [
        ["FROM \\ TO", "cara-server", "edge1", "edge2", "edge3"],
        ["edge1", "Direct 2.2ms", "-", "Direct 1.5ms", "DERP(lab) 41ms"],
        ["edge2", "DERP(lab) 38ms", "Direct 1.4ms", "-", "unknown"],
        ["edge3", "unknown", "unknown", "unknown", "-"],
    ]


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
    assert ("\x1b[32mDirect 1.5ms" in result.stdout) is colored
    assert ("\x1b[33mDERP(lab) 41ms" in result.stdout) is colored


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
            },
            {
                "from": "edge1",
                "to": "edge3",
                "mode": "DERP",
                "derpRegion": "lab",
                "latencyMs": 41.0,
                "lastSeen": LAST_SEEN,
                "stale": False,
            },
            {
                "from": "edge2",
                "to": "edge1",
                "mode": "Direct",
                "derpRegion": None,
                "latencyMs": 1.4,
                "lastSeen": LAST_SEEN,
                "stale": False,
            },
        ],
    }


@pytest.mark.usefixtures("fleet")
async def test_a_silent_nodes_paths_are_shown_stale_never_as_current(
    caractrl: Caractrl, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.step(30)
    assert (await api.post("/api/v1/nodes/edge2/heartbeat")).status_code == 204  # edge2 reconfirms; edge1 does not
    clock.step(15)  # edge1 last beat 45 s ago: past the 40 s grace
    lines = (await caractrl("mesh")).stdout.splitlines()
    cells = [[cell.strip() for cell in line.split("   ") if cell.strip()] for line in lines]
    assert cells[1] == ["edge1", "Direct? stale 45s", "-", "Direct?", "DERP(lab)?"]
    assert cells[2] == ["edge2", "DERP(lab) 38ms", "Direct 1.4ms", "-", "unknown"]
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
    assert json.loads(as_json.stdout) == {"nodes": [], "paths": []}


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
    # The beats carry no latency, so the fleet's stored 38 ms stays (network merges field by field, design §3.4).
    assert lines[-1].split() == ["2026-11-24T12:07:00Z", "cara-server", "DERP", "Direct", "38ms"]
    assert lines[-2].split() == ["2026-11-24T12:06:00Z", "cara-server", "Direct", "DERP(lab)", "38ms"]


@pytest.mark.usefixtures("fleet")
async def test_describe_node_without_history_says_none(caractrl: Caractrl) -> None:
    lines = (await caractrl("describe", "node", "edge3")).stdout.splitlines()
    assert lines[-2:] == ["Throughput history:<none>", "Path changes: <none>"]


async def test_client_history_raises_not_found_for_an_unknown_node(api_transport: httpx.ASGITransport) -> None:
    async with Client(API_URL, transport=api_transport) as client:
        with pytest.raises(NotFound, match='Node "ghost" not found'):
            await client.history("ghost")
