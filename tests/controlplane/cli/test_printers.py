"""Tests of caractrl's printers over constructed API objects: AGE, alignment, `<none>`, wire output, describe."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from controlplane.api import (
    Condition,
    ConditionStatus,
    NetworkMode,
    Node,
    NodeList,
    NodeNetworkStatus,
    NodeSpec,
    NodeState,
    NodeStatus,
    NodeThroughput,
    ObjectMeta,
    Project,
    ProjectSpec,
    ServiceDef,
)
from controlplane.cli import pages, printers
from tests.factories import node, node_wire

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


CREATED = NOW - timedelta(hours=3)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(minutes=5, seconds=59), "5m"),
        (timedelta(hours=3, minutes=59), "3h"),
        (timedelta(days=2, hours=23), "2d"),
        (timedelta(days=400), "1y"),
        (timedelta(seconds=-30), "0s"),
    ],
    ids=["now", "seconds", "minutes", "hours", "days", "years", "clock-skew"],
)
def test_age_like_kubectl(delta: timedelta, text: str) -> None:
    assert printers.age(NOW - delta, NOW) == text


def test_age_of_an_unset_time() -> None:
    assert printers.age(None, NOW) == "<none>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T09:00:00Z", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        ("2026-11-24T10:00:00+01:00", datetime(2026, 11, 24, 9, 0, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("2026-11-24T09:00:00", None),
        ("yesterday", None),
        (None, None),
        (1700000000, None),
    ],
    ids=["utc", "offset", "go-zero-time", "naive", "garbage", "null", "number"],
)
def test_wire_time_reads_rfc3339_and_treats_the_rest_as_unset(value: object, expected: datetime | None) -> None:
    assert printers.wire_time(value) == expected


def test_tables_tolerate_missing_and_mistyped_wire_fields() -> None:
    odd = {"metadata": {"name": "odd", "createdAt": "0001-01-01T00:00:00Z"}, "status": {"network": "not an object"}}
    bare = {"metadata": {"name": "bare"}, "spec": {"services": [{"name": "web"}]}, "status": {"conditions": "x"}}
    assert printers.nodes_table([odd], NOW, wide=True).splitlines()[1].split() == [
        "odd",
        *["<none>"] * 4,
        *["<none>"] * 4,
        "false",
    ]
    assert printers.projects_table([bare], NOW, wide=True).splitlines()[1].split() == [
        "bare",
        *["<none>"] * 4,
        "web",
        "<none>",
        "<none>",
    ]


def test_table_aligns_columns_without_trailing_blanks() -> None:
    assert printers.table(["A", "LONGER"], [["xyz", "1"], ["q", ""]]).splitlines() == [
        "A     LONGER",
        "xyz   1",
        "q",
    ]


def test_nodes_table_wide() -> None:
    network = {
        "ip": "100.64.0.1",
        "mode": "DERP",
        "derpRegion": "hub",
        "latencyMs": 38.5,
        "throughput": {"download": "9.5Mbps"},
    }
    ready = node_wire("edge-1", created=CREATED, state=NodeState.READY, status={"network": network})
    text = printers.nodes_table([ready, node_wire("edge-20", created=CREATED)], NOW, wide=True)
    assert text.splitlines() == [
        "NAME      STATE    IP           MODE     AGE   DNS      DERP     LATENCY   THROUGHPUT   UNSCHEDULABLE",
        "edge-1    Ready    100.64.0.1   DERP     3h    <none>   hub      38.5ms    9.5Mbps/?    false",
        "edge-20   <none>   <none>       <none>   3h    <none>   <none>   <none>    <none>       false",
    ]


def test_projects_table_summarises_conditions() -> None:
    project = Project(
        metadata=ObjectMeta(name="web", created_at=NOW - timedelta(days=2)),
        spec=ProjectSpec(services=[ServiceDef(name="web", image="nginx")]),
        status={
            "phase": "Running",
            "nodeRef": "edge-1",
            "conditions": [{"type": "Scheduled", "status": "True"}, {"type": "Ready", "status": "False"}],
        },
    )
    assert printers.projects_table([project.to_wire()], NOW).splitlines()[1].split() == [
        "web",
        "Running",
        "edge-1",
        "Scheduled=True,Ready=False",
        "2d",
    ]
    assert printers.projects_table([project.to_wire()], NOW, wide=True).splitlines()[1].split()[-3:] == [
        "web",
        "<none>",
        "<none>",
    ]


def test_json_and_yaml_are_exactly_the_wire_object() -> None:
    listing = NodeList(items=[node("edge-1", created=CREATED, state=NodeState.DRAINING)])
    assert json.loads(printers.to_json(listing.to_wire())) == listing.to_wire()
    assert yaml.safe_load(printers.to_yaml(listing.to_wire())) == listing.to_wire()
    assert printers.to_yaml(listing.to_wire()).startswith("apiVersion: caravanserai/v1\nkind: NodeList\nitems:\n")


def test_describe_renders_every_field() -> None:
    full = Node(
        metadata=ObjectMeta(
            name="edge-1", labels={"b": "2", "a": "1"}, annotations={"note": "x"}, created_at=NOW - timedelta(minutes=5)
        ),
        spec=NodeSpec(hostname="edge-1", unschedulable=True),
        status=NodeStatus(
            state=NodeState.READY,
            network=NodeNetworkStatus(
                ip="100.64.0.1",
                mode=NetworkMode.DIRECT,
                agent_port=9100,
                throughput=NodeThroughput(download="94.1Mbps", upload="41.0Mbps"),
            ),
            capacity={"cpu": "4000m", "memory": "7823Mi"},
            conditions=[
                Condition(
                    type="Ready",
                    status=ConditionStatus.TRUE,
                    reason="AgentReady",
                    message="beating",
                    last_heartbeat_time=NOW,
                    last_transition_time=NOW - timedelta(hours=1),
                ),
            ],
        ),
    )
    assert pages.describe(full, NOW).splitlines() == [
        "Name:         edge-1",
        "Kind:         Node",
        "Labels:       a=1",
        "              b=2",
        "Annotations:  note=x",
        "Created:      2026-11-24T11:55:00Z (5m ago)",
        "Updated:      <none>",
        "Spec:",
        "  hostname:       edge-1",
        "  unschedulable:  true",
        "Status:",
        "  state:     Ready",
        "  network:",
        "    ip:          100.64.0.1",
        "    mode:        Direct",
        "    agentPort:   9100",
        "    throughput:",
        "      download:  94.1Mbps",
        "      upload:    41.0Mbps",
        "  capacity:",
        "    cpu:     4000m",
        "    memory:  7823Mi",
        "Facts:        STALE: last known values, not current; last confirmed never",
        "Conditions:",
        "  TYPE    STATUS   REASON       MESSAGE   LAST HEARTBEAT         LAST TRANSITION",
        "  Ready   True     AgentReady   beating   2026-11-24T12:00:00Z   2026-11-24T11:00:00Z",
    ]


def test_describe_renders_lists_of_objects_and_empty_status() -> None:
    project = Project(
        metadata=ObjectMeta(name="web"),
        spec=ProjectSpec.model_validate(
            {
                "services": [{"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}]}],
                "volumes": [{"name": "data", "type": "Ephemeral"}],
            }
        ),
    )
    lines = pages.describe(project, NOW).splitlines()
    spec = lines[lines.index("Spec:") + 1 : lines.index("Status:")]
    assert spec == [
        "  services:",
        "    - name:   web",
        "      image:  nginx",
        "      env:",
        "        - name:   A",
        "          value:  1",
        "  volumes:",
        "    - name:  data",
        "      type:  Ephemeral",
    ]
    assert lines[-1] == "Conditions:   <none>"


READY_CONDITION = {"type": "Ready", "status": "True", "reason": "AgentReady"}
LOST_CONDITION = {"type": "Ready", "status": "False", "reason": "HeartbeatTimeout"}


@pytest.mark.parametrize(
    ("state", "unschedulable", "condition", "shown"),
    [
        ("Ready", False, READY_CONDITION, "Ready"),
        ("Ready", True, READY_CONDITION, "Ready,SchedulingDisabled"),
        ("NotReady", True, LOST_CONDITION, "NotReady(HeartbeatTimeout),SchedulingDisabled"),
        ("Draining", True, READY_CONDITION, "Ready,Draining"),
        ("Draining", True, LOST_CONDITION, "NotReady(HeartbeatTimeout),Draining"),
    ],
)
def test_state_reads_like_kubectls_status(
    state: str, unschedulable: bool, condition: dict[str, str], shown: str
) -> None:
    wire = node_wire(unschedulable=unschedulable, status={"state": state, "conditions": [condition]})
    assert printers.node_state(wire) == shown


def test_a_node_that_never_beat_has_no_latency_not_a_stale_one() -> None:
    """The server serves a never-beaten Node as factsStale (no confirmation), but no fact is not a stale fact."""
    silent = node_wire("edge-9", created=CREATED, status={"state": "NotReady", "factsStale": True})
    mode, age, dns, derp, latency, throughput, unschedulable = printers.node_row(silent, NOW, wide=True)[3:]
    assert (mode, age, dns, derp, throughput, unschedulable) == ("<none>", "3h", "<none>", "<none>", "<none>", "false")
    assert latency == "<none>", "never confirmed: no latency, not `stale <none>`"
    beat = NOW - timedelta(minutes=6)
    stale = node_wire(
        "edge-8", created=CREATED, status={"state": "NotReady", "factsStale": True, "lastHeartbeat": beat}
    )
    assert printers.node_row(stale, NOW, wide=True)[7] == "stale 6m", "a fact once confirmed is stale with its age"


def test_the_derp_column_names_a_relay_only_where_the_path_is_relayed() -> None:
    """status.network.derpRegion is the home region whatever the path; a Direct path goes through no relay."""
    direct = node(
        "edge-1",
        created=CREATED,
        status={"state": "Ready", "network": {"mode": "Direct", "derpRegion": "hub", "latencyMs": 0.3}},
    )
    relayed = node(
        "edge-2",
        created=CREATED,
        status={"state": "Ready", "network": {"mode": "DERP", "derpRegion": "hub", "latencyMs": 38.5}},
    )
    assert printers.node_row(direct.to_wire(), NOW, wide=True)[6] == "<none>"
    assert printers.node_row(relayed.to_wire(), NOW, wide=True)[6] == "hub"
