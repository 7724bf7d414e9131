"""Availability: the Ready and Direct shares of 24 h / 7 d from stored transitions, the route and the series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.api import ConditionStatus, Node, Transition, set_condition
from controlplane.server.availability import share
from controlplane.store import Store
from tests.conftest import FakeClock

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def tr(hours: float, good: bool, subject: str = "node/edge1") -> Transition:
    return Transition(subject=subject, time=T0 + hours * HOUR, good=good)


@pytest.mark.parametrize(
    ("transitions", "ratio", "observed_hours"),
    [
        ([], None, 0),
        ([tr(-30, True)], 1.0, 24),  # Ready since before the window
        ([tr(-30, True), tr(6, False)], 0.25, 24),  # Ready 6 h of 24
        ([tr(12, True)], 1.0, 12),  # first seen mid-window: only the known half counts
        ([tr(-1, False), tr(12, True), tr(18, False)], 0.25, 24),
        ([tr(-5, True), tr(-2, False)], 0.0, 24),  # only transitions before the window: its last state holds
        ([tr(30, True)], None, 0),  # after the window: nothing known in it
    ],
    ids=["nothing", "always", "down-at-6h", "new-mid-window", "up-6h-in-middle", "down-before", "future"],
)
def test_share(transitions: list[Transition], ratio: float | None, observed_hours: float) -> None:
    window = share(transitions, T0, T0 + 24 * HOUR, "24h")
    assert window.window == "24h"
    assert window.ratio == (pytest.approx(ratio) if ratio is not None else None)
    assert window.observed_seconds == pytest.approx(observed_hours * 3600)


def judged(status: ConditionStatus, clock: FakeClock) -> object:
    def judge(node: Node) -> Node:
        conditions = set_condition(node.status.conditions, "Ready", status, "Reason", "", clock.now())
        return node.model_copy(update={"status": node.status.model_copy(update={"conditions": conditions})})

    return judge


async def test_route_and_series_follow_the_nodes_transitions(
    api: httpx.AsyncClient, memory_store: Store, clock: FakeClock
) -> None:
    assert (await api.post("/api/v1/nodes", json={"metadata": {"name": "edge1"}})).status_code == 201
    await memory_store.update_node("edge1", judged(ConditionStatus.TRUE, clock))  # type: ignore[arg-type]
    direct = {"mode": "Direct", "peers": [{"name": "edge2", "mode": "Direct"}]}
    relayed = {"mode": "Direct", "peers": [{"name": "edge2", "mode": "DERP", "relayReason": "UDPBlocked"}]}
    assert (await api.post("/api/v1/nodes/edge1/heartbeat", json={"network": direct})).status_code == 204
    clock.step(18 * 3600)
    await memory_store.update_node("edge1", judged(ConditionStatus.FALSE, clock))  # type: ignore[arg-type]
    assert (await api.post("/api/v1/nodes/edge1/heartbeat", json={"network": relayed})).status_code == 204
    clock.step(6 * 3600)  # 24 h after the first judgement: Ready 18 h of 24, edge2 Direct 18 h of 24
    answer = await api.get("/api/v1/nodes/edge1/availability")
    assert answer.status_code == 200
    body = answer.json()
    assert body["kind"] == "NodeAvailability" and body["name"] == "edge1"
    assert [(w["window"], w["ratio"], w["observedSeconds"]) for w in body["ready"]] == [
        ("24h", 0.75, 86400.0),
        ("7d", 0.75, 86400.0),  # only a day is known
    ]
    assert [p["peer"] for p in body["paths"]] == ["cara-server", "edge2"]
    assert body["paths"][1]["windows"][0]["ratio"] == 0.75
    assert body["paths"][0]["windows"][0]["ratio"] == 1.0
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families((await api.get("/metrics")).text)
        for s in family.samples
    }
    assert samples[("cara_node_ready_ratio", (("node", "edge1"), ("window", "24h")))] == 0.75
    assert samples[("cara_node_path_direct_ratio", (("node", "edge1"), ("peer", "edge2"), ("window", "7d")))] == 0.75
    assert (await api.get("/api/v1/nodes/nobody/availability")).status_code == 404
    assert (await api.delete("/api/v1/nodes/edge1")).status_code == 204
    after = (await api.get("/metrics")).text
    assert "cara_node_ready_ratio{" not in after and "cara_node_path_direct_ratio{" not in after
