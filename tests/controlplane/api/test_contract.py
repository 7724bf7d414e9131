"""Our serialised objects validate against the Go project's published JSON Schemas (design §3)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from controlplane.api import (
    Condition,
    ConditionStatus,
    InvalidObject,
    NetworkMode,
    Node,
    NodeInfo,
    NodeList,
    NodeNetworkStatus,
    NodeSpec,
    NodeState,
    NodeStatus,
    NodeTailnet,
    NodeThroughput,
    ObjectMeta,
    PeerPath,
    Project,
    ProjectList,
    WitnessReport,
    decode,
)

CONTRACT = Path(__file__).resolve().parents[3].parent / "shared" / "contract"
T0 = datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC)

#: Our additive extensions (design §3.5); the Go schemas forbid unknown properties, so they are removed first.
EXTENSIONS: dict[str, list[tuple[str, ...]]] = {
    "node": [
        ("status", "available"),
        ("status", "network", "derpRegion"),
        ("status", "network", "latencyMs"),
        ("status", "network", "relayReason"),
        ("status", "network", "relayMessage"),
        ("status", "network", "peers"),
        ("status", "network", "tailnet"),
        ("status", "network", "throughput", "bytesUsed"),
        ("status", "network", "observedAt"),
        ("status", "network", "witnessed"),
        ("status", "factsStale"),
        ("status", "factsConfirmedAt"),
    ],
    "project": [("spec", "resources")],
}


def _schema(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CONTRACT / f"{kind}.schema.json").read_text())
    return loaded


def _strip(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for path in EXTENSIONS[kind]:
        parent = doc
        for key in path[:-1]:
            parent = parent.get(key, {})
        parent.pop(path[-1], None)
    return doc


def _validate(doc: dict[str, Any], kind: str) -> None:
    validator = jsonschema.Draft202012Validator(_schema(kind), format_checker=jsonschema.FormatChecker())
    validator.validate(doc)


def full_node() -> Node:
    return Node(
        metadata=ObjectMeta(
            name="edge1", labels={"zone": "a"}, annotations={"note": "x"}, created_at=T0, updated_at=T0
        ),
        spec=NodeSpec(hostname="edge1", unschedulable=True),
        status=NodeStatus(
            state=NodeState.READY,
            network=NodeNetworkStatus(
                ip="100.64.0.3",
                dns_name="edge1.tailnet.test",
                mode=NetworkMode.DERP,
                agent_port=9090,
                throughput=NodeThroughput(download="94.1Mbps", upload="41.0Mbps", last_test_time=T0, bytes_used=7),
                derp_region="headscale",
                latency_ms=1.5,
                relay_reason="UDPBlocked",
                relay_message="disco pings to the peer's endpoints (10.99.12.2:41641) went unanswered",
                peers=[
                    PeerPath(
                        name="edge2",
                        ip="100.64.0.4",
                        mode=NetworkMode.DERP,
                        derp_region="headscale",
                        latency_ms=3.0,
                        last_seen=T0,
                    )
                ],
                tailnet=NodeTailnet(node_id="3", user="tagged-devices", tags=["tag:cara-node"], online=True),
                observed_at=T0,
                witnessed=[WitnessReport(name="edge2", at=T0, mode=NetworkMode.DIRECT, latency_ms=2.5)],
            ),
            capacity={"cpu": "4000m", "memory": "7823Mi", "disk": "118Gi"},
            allocatable={"cpu": "3500m", "memory": "7311Mi", "disk": "108Gi"},
            available={"memory": "5000Mi", "disk": "90Gi"},
            info=NodeInfo(kernel_version="6.1.0", os_image="Debian GNU/Linux 12", agent_version="0.1.0"),
            last_heartbeat=T0,
            facts_stale=False,
            facts_confirmed_at=T0,
            conditions=[
                Condition(
                    type="Ready",
                    status=ConditionStatus.TRUE,
                    reason="AgentReady",
                    message="ok",
                    last_heartbeat_time=T0,
                    last_transition_time=T0,
                )
            ],
        ),
    )


def full_project() -> Project:
    return decode(
        Project,
        {
            "apiVersion": "caravanserai/v1",
            "kind": "Project",
            "metadata": {"name": "shop", "labels": {"team": "web"}},
            "spec": {
                "services": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "env": [{"name": "A", "value": "1"}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    },
                    {"name": "db", "image": "postgres:16"},
                ],
                "volumes": [{"name": "data", "type": "Ephemeral"}],
                "ingress": [
                    {
                        "name": "www",
                        "host": "shop.example",
                        "target": {"service": "web", "port": 80},
                        "access": {"scope": "Internal"},
                    }
                ],
                "expireAt": "2027-01-01T00:00:00Z",
                "resources": {"cpu": "500m", "memory": "256Mi"},
            },
            "status": {"phase": "Scheduled", "nodeRef": "edge1"},
        },
    )


@pytest.mark.contract
def test_full_node_matches_the_go_schema() -> None:
    _validate(_strip(full_node().to_wire(), "node"), "node")


@pytest.mark.contract
def test_minimal_node_matches_the_go_schema() -> None:
    _validate(Node(metadata=ObjectMeta(name="n")).to_wire(), "node")


@pytest.mark.contract
def test_full_project_matches_the_go_schema() -> None:
    _validate(_strip(full_project().to_wire(), "project"), "project")


def test_lists_never_have_null_items() -> None:
    assert NodeList().to_wire() == {"apiVersion": "caravanserai/v1", "kind": "NodeList", "items": []}
    assert ProjectList().to_wire()["items"] == []


@pytest.mark.contract
def test_the_schema_check_catches_a_wrong_shape() -> None:
    doc = full_node().to_wire()
    doc["spec"]["unschedulable"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        _validate(_strip(doc, "node"), "node")


def test_timestamps_are_utc_with_z() -> None:
    wire = full_node().to_wire()
    assert wire["metadata"]["createdAt"] == "2026-11-24T01:02:03Z"
    assert wire["status"]["conditions"][0]["lastTransitionTime"] == "2026-11-24T01:02:03Z"
    assert wire["status"]["network"]["throughput"]["lastTestTime"].endswith("Z")


def test_go_zero_times_and_nulls_read_as_unset() -> None:
    node = decode(
        Node,
        {
            "apiVersion": "caravanserai/v1",
            "kind": "Node",
            "metadata": {"name": "n", "createdAt": "0001-01-01T00:00:00Z", "labels": None},
            "spec": {"hostname": "", "unschedulable": False},
            "status": {"lastHeartbeat": "0001-01-01T00:00:00Z", "conditions": None, "network": None},
        },
    )
    assert node.metadata.created_at is None
    assert node.status.last_heartbeat is None
    assert "createdAt" not in node.to_wire()["metadata"]


def test_round_trip_is_lossless() -> None:
    node = full_node()
    assert decode(Node, node.to_wire()) == node
    project = full_project()
    assert decode(Project, project.to_wire()) == project


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("2026-11-24T01:02:03Z", datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC)),  # the form the API writes
        ("2026-11-24T01:02:03.250000Z", datetime(2026, 11, 24, 1, 2, 3, 250000, tzinfo=UTC)),
        ("2026-11-24T02:02:03+01:00", datetime(2026, 11, 24, 1, 2, 3, tzinfo=UTC)),  # a Go agent's local time
        ("2026-11-24T01:02:03.123456789Z", datetime(2026, 11, 24, 1, 2, 3, 123456, tzinfo=UTC)),  # RFC3339Nano
        ("0001-01-01T00:00:00Z", None),
        ("0001-01-01T00:00:00.000000Z", None),
        (None, None),
    ],
)
def test_timestamps_read_in_utc_whatever_form_they_come_in(given: str | None, read: datetime | None) -> None:
    wire = {"metadata": {"name": "n", "createdAt": given}, "spec": {"hostname": "n"}}
    for node in (Node.model_validate(wire), Node.model_validate_json(json.dumps(wire))):
        assert node.metadata.created_at == read
        if read is not None:
            assert node.metadata.created_at is not None and node.metadata.created_at.utcoffset() == timedelta(0)
            assert node.to_wire()["metadata"]["createdAt"].endswith("Z")


@pytest.mark.parametrize(
    "given", ["2026-13-24T01:02:03Z", "2026-11-24T25:02:03.000000Z", "2026-11-24T01:02:03", 1764000000]
)
def test_malformed_timestamps_are_refused_naming_the_field(given: object) -> None:
    wire = {"metadata": {"name": "n", "createdAt": given}, "spec": {"hostname": "n"}}
    with pytest.raises(InvalidObject) as refused:
        decode(Node, wire)
    assert [error.split(":")[0] for error in refused.value.errors] == ["metadata.createdAt"]
