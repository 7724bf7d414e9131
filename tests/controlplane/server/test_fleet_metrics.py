"""Fleet metrics on /metrics: per-node and per-path series computed at scrape, parsed with prometheus_client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.api import ConditionStatus, Node, ProjectPhase, set_condition
from controlplane.server.settings import Settings
from controlplane.store import Store
from tests.conftest import FakeClock

NODES = "/api/v1/nodes"
PAIR_LIMIT = 3

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def settings() -> Settings:
    return Settings(dev=True, metrics_pair_limit=PAIR_LIMIT)


async def scrape(api: httpx.AsyncClient) -> Samples:
    """scrape parses /metrics into (sample name, sorted labels) → value; the parser rejects a bad exposition."""
    answer = await api.get("/metrics")
    assert answer.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def of(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def L(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def peer(name: str, mode: str | None, latency: float | None = None, region: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if mode:
        body["mode"] = mode
    if latency is not None:
        body["latencyMs"] = latency
    if region:
        body["derpRegion"] = region
    return body


async def beat(api: httpx.AsyncClient, name: str, network: dict[str, Any]) -> None:
    assert (await api.post(f"{NODES}/{name}/heartbeat", json={"network": network})).status_code == 204


@pytest.fixture
async def fleet(api: httpx.AsyncClient, clock: FakeClock) -> None:
    """fleet: edge1 (Direct to the server, DERP to edge2, measured) beat 30 s ago; edge2 beat now; edge3 never."""
    for name in ("edge1", "edge2", "edge3"):
        assert (await api.post(NODES, json={"metadata": {"name": name}})).status_code == 201
    await beat(
        api,
        "edge1",
        {
            "mode": "Direct",
            "latencyMs": 2.0,
            "throughput": {"download": "94.1Mbps", "upload": "41.0Mbps", "lastTestTime": "2026-11-24T11:59:00Z"},
            "peers": [peer("edge2", "DERP", 40.0, "lab"), peer("edge3", None)],
        },
    )
    clock.step(30)
    await beat(api, "edge2", {"mode": "DERP", "derpRegion": "lab", "peers": [peer("edge1", "DERP", 41.0, "lab")]})


@pytest.mark.usefixtures("fleet")
async def test_heartbeat_age_per_node_from_the_leases(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    assert of(samples, "cara_node_heartbeat_age_seconds") == {L(node="edge1"): 30.0, L(node="edge2"): 0.0}
    assert of(samples, "cara_nodes") == {L(state="Ready"): 0, L(state="NotReady"): 3, L(state="Draining"): 0}


@pytest.mark.usefixtures("fleet")
async def test_path_mode_is_one_for_the_current_mode_per_pair(api: httpx.AsyncClient) -> None:
    modes = of(await scrape(api), "cara_node_path_mode")
    assert modes == {
        L(node="edge1", peer="cara-server", mode="Direct"): 1,
        L(node="edge1", peer="cara-server", mode="DERP"): 0,
        L(node="edge1", peer="edge2", mode="Direct"): 0,
        L(node="edge1", peer="edge2", mode="DERP"): 1,
        L(node="edge1", peer="edge3", mode="Direct"): 0,  # unknown: both 0
        L(node="edge1", peer="edge3", mode="DERP"): 0,
        L(node="edge2", peer="cara-server", mode="Direct"): 0,
        L(node="edge2", peer="cara-server", mode="DERP"): 1,
        L(node="edge2", peer="edge1", mode="Direct"): 0,
        L(node="edge2", peer="edge1", mode="DERP"): 1,
    }


@pytest.mark.usefixtures("fleet")
async def test_latency_in_seconds_and_throughput_in_bits_per_second(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    assert of(samples, "cara_node_path_latency_seconds") == {
        L(node="edge1", peer="cara-server"): 0.002,
        L(node="edge1", peer="edge2"): 0.040,
        L(node="edge2", peer="edge1"): 0.041,
    }
    assert of(samples, "cara_node_throughput_bits_per_second") == {
        L(node="edge1", direction="download"): 94.1e6,
        L(node="edge1", direction="upload"): 41.0e6,
    }


@pytest.mark.usefixtures("fleet")
async def test_path_changes_total_counts_recorded_changes(api: httpx.AsyncClient) -> None:
    await beat(api, "edge1", {"mode": "Direct", "peers": [peer("edge2", "Direct", 1.0)]})
    await beat(api, "edge1", {"mode": "Direct", "peers": [peer("edge2", "DERP", 40.0, "lab")]})
    changes = of(await scrape(api), "cara_path_changes_total")
    assert changes == {
        L(node="edge1", peer="cara-server"): 1,  # first report: unknown → Direct
        L(node="edge1", peer="edge2"): 3,  # unknown → DERP, DERP → Direct, Direct → DERP
        L(node="edge2", peer="cara-server"): 1,
        L(node="edge2", peer="edge1"): 1,
    }
    history = (await api.get(f"{NODES}/edge1/history")).json()
    assert sum(1 for change in history["paths"] if change["peer"] == "edge2") == 3


@pytest.mark.usefixtures("fleet")
async def test_pair_series_are_bounded_and_the_rest_counted_as_dropped(api: httpx.AsyncClient) -> None:
    await beat(api, "edge2", {"mode": "DERP", "peers": [peer("edge1", "DERP"), peer("edge3", "Direct")]})
    samples = await scrape(api)
    pairs = {dict(labels)["node"] + ">" + dict(labels)["peer"] for labels in of(samples, "cara_node_path_mode")}
    # edge1's two peers, then one of edge2's (the limit is 3); every path to the control plane is kept.
    assert pairs == {"edge1>cara-server", "edge1>edge2", "edge1>edge3", "edge2>cara-server", "edge2>edge1"}
    assert of(samples, "cara_metrics_dropped_paths") == {(): 1}


@pytest.mark.usefixtures("fleet")
async def test_a_deleted_node_leaves_no_series(api: httpx.AsyncClient) -> None:
    assert (await api.delete(f"{NODES}/edge1")).status_code == 204
    samples = await scrape(api)
    assert all(("node", "edge1") not in labels for (_, labels) in samples)
    assert L(node="edge2", peer="edge1") in of(samples, "cara_path_changes_total")


async def test_an_empty_fleet_exports_only_the_totals(api: httpx.AsyncClient) -> None:
    samples = await scrape(api)
    assert of(samples, "cara_node_path_mode") == {}
    assert of(samples, "cara_metrics_dropped_paths") == {(): 0}
    assert of(samples, "cara_nodes")[L(state="Ready")] == 0


async def test_paths_not_direct_carry_their_reason_from_a_closed_set(api: httpx.AsyncClient) -> None:
    for name in ("edge1", "edge2"):
        assert (await api.post(NODES, json={"metadata": {"name": name}})).status_code == 201
    peers = [
        {**peer("edge2", "DERP", 40.0, "lab"), "relayReason": "UDPBlocked"},
        {**peer("edge3", "DERP", 40.0, "lab"), "relayReason": "MadeUpByAnAgent"},
        {"name": "edge4", "relayReason": "NotProbed"},
        peer("edge5", "Direct", 1.0),  # past the pair limit (3), as the rest
    ]
    await beat(api, "edge1", {"mode": "Direct", "peers": peers})
    assert of(await scrape(api), "cara_node_path_not_direct") == {
        L(node="edge1", peer="edge2", reason="UDPBlocked"): 1,
        L(node="edge1", peer="edge3", reason="Unknown"): 1,  # not one of mesh.RelayReason: the label stays closed
        L(node="edge1", peer="edge4", reason="NotProbed"): 1,
    }
    # A Node's own path to the control plane carries its reason like a peer path (Unknown from an older agent).
    # A passive peer entry named like the control plane (its host's tailnet name) is that same path: own wins.
    passive = {"name": "cara-server", "mode": "DERP", "relayReason": "NotProbed"}
    network = {"mode": "DERP", "relayReason": "UDPBlocked", "relayMessage": "disco pings ...", "peers": [passive]}
    await beat(api, "edge2", network)
    samples = await scrape(api)
    assert {k: v for k, v in of(samples, "cara_node_path_not_direct").items() if ("node", "edge2") in k} == {
        L(node="edge2", peer="cara-server", reason="UDPBlocked"): 1
    }
    assert of(samples, "cara_node_path_mode")[L(node="edge2", peer="cara-server", mode="DERP")] == 1
    await beat(api, "edge2", {"mode": "DERP"})
    assert L(node="edge2", peer="cara-server", reason="Unknown") in of(await scrape(api), "cara_node_path_not_direct")
    await beat(api, "edge1", {"mode": "Direct", "peers": [peer("edge2", "DERP", 41.0, "lab")]})
    await beat(api, "edge2", {"mode": "Direct", "peers": [peer("edge1", "Direct", 1.0)]})
    assert of(await scrape(api), "cara_node_path_not_direct") == {
        L(node="edge1", peer="edge2", reason="Unknown"): 1,  # an agent from before reasons
    }


async def test_ready_per_node_with_its_reason_and_projects_by_phase(
    api: httpx.AsyncClient, memory_store: Store, clock: FakeClock
) -> None:
    for name in ("edge1", "edge2", "edge3"):
        assert (await api.post(NODES, json={"metadata": {"name": name}})).status_code == 201
    verdicts = {"edge1": (ConditionStatus.TRUE, "AgentReady"), "edge2": (ConditionStatus.FALSE, "ControlLinkDown")}
    for name, (status, reason) in verdicts.items():

        def judge(node: Node, status: ConditionStatus = status, reason: str = reason) -> Node:
            conditions = set_condition(node.status.conditions, "Ready", status, reason, "judged", clock.now())
            return node.model_copy(update={"status": node.status.model_copy(update={"conditions": conditions})})

        await memory_store.update_node(name, judge)
    for name in ("web", "db"):
        body = {"metadata": {"name": name}, "spec": {"services": [{"name": "app", "image": "nginx"}]}}
        assert (await api.post("/api/v1/projects", json=body)).status_code == 201
    samples = await scrape(api)
    assert of(samples, "cara_node_ready") == {
        L(node="edge1", reason="AgentReady"): 1,
        L(node="edge2", reason="ControlLinkDown"): 0,
        L(node="edge3", reason="NotReported"): 0,
    }
    projects = of(samples, "cara_projects")
    assert projects[L(phase="Pending")] == 2
    assert sum(projects.values()) == 2 and len(projects) == len(ProjectPhase)


@pytest.mark.usefixtures("fleet")
async def test_a_stale_nodes_paths_are_not_exported_as_current_modes(api: httpx.AsyncClient, clock: FakeClock) -> None:
    clock.step(15)  # edge1 last beat 45 s ago: past the 40 s grace; edge2 15 s ago
    samples = await scrape(api)
    assert of(samples, "cara_node_facts_stale") == {L(node="edge1"): 1, L(node="edge2"): 0, L(node="edge3"): 1}
    modes = of(samples, "cara_node_path_mode")
    assert {dict(labels)["node"] for labels in modes} == {"edge2"}, "no 0/1 mode series for a stale node's paths"
    assert {dict(labels)["node"] for labels in of(samples, "cara_node_path_latency_seconds")} == {"edge2"}
    assert of(samples, "cara_node_throughput_bits_per_second") == {}
    # The measurement keeps its own time: 11:59:00Z, now 12:00:45Z.
    assert of(samples, "cara_node_throughput_age_seconds") == {L(node="edge1"): 105.0}
    assert of(samples, "cara_node_heartbeat_age_seconds")[L(node="edge1")] == 45.0
    assert of(samples, "cara_control_plane_isolated") == {(): 0.0}
    clock.step(1)
    await beat(api, "edge1", {"mode": "Direct"})  # reconfirmed: current again
    samples = await scrape(api)
    assert of(samples, "cara_node_facts_stale")[L(node="edge1")] == 0
    assert of(samples, "cara_node_path_mode")[L(node="edge1", peer="cara-server", mode="Direct")] == 1
