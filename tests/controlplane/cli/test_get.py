"""Tests of `caractrl get` and `caractrl describe` against the in-process API."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml

from controlplane.api import Condition, ConditionStatus, Heartbeat, NetworkMode, NodeNetworkStatus, NodeThroughput
from controlplane.client import Client
from tests.conftest import FakeClock

from .conftest import API_URL, Caractrl

NODES = """\
kind: Node
metadata: {name: edge-1, labels: {site: lab}}
spec: {hostname: edge-1}
---
kind: Node
metadata: {name: edge-2, labels: {site: field}}
spec: {unschedulable: true}
"""

PROJECT = """\
kind: Project
metadata: {name: web, labels: {app: web}}
spec:
  services: [{name: web, image: "nginx:1.27"}, {name: sync, image: alpine}]
  resources: {cpu: 500m, memory: 256Mi}
"""


@pytest.fixture
async def fleet(caractrl: Caractrl, api_transport: httpx.ASGITransport, clock: FakeClock) -> None:
    """fleet holds two Nodes (edge-1 has beaten once, with its network) and one Project, created 5 minutes ago."""
    assert (await caractrl("apply", "-f", "-", input=NODES + "---\n" + PROJECT)).exit_code == 0
    network = NodeNetworkStatus(
        ip="100.64.0.5",
        dns_name="edge-1.tailnet.test",
        mode=NetworkMode.DIRECT,
        derp_region="lab",
        throughput=NodeThroughput(download="94.1Mbps", upload="41.0Mbps"),
    )
    gpu = Condition(type="GPUHealthy", status=ConditionStatus.TRUE, reason="DriverLoaded", message="driver 550")
    async with Client(API_URL, transport=api_transport) as client:
        await client.heartbeat("edge-1", Heartbeat(network=network, conditions=[gpu]))
    clock.step(300)


async def test_get_nodes_is_an_aligned_table(caractrl: Caractrl, fleet: None) -> None:
    result = await caractrl("get", "nodes")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "NAME     STATE                         IP           MODE      AGE",
        "edge-1   NotReady                      100.64.0.5   Direct?   5m",
        "edge-2   NotReady,SchedulingDisabled   <none>       <none>    5m",
    ]


async def test_get_nodes_wide_adds_dns_derp_throughput_unschedulable(caractrl: Caractrl, fleet: None) -> None:
    result = await caractrl("get", "nodes", "-o", "wide")
    header, first, second = result.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "STATE",
        "IP",
        "MODE",
        "AGE",
        "DNS",
        "DERP",
        "LATENCY",
        "THROUGHPUT",
        "UNSCHEDULABLE",
    ]
    assert first.split() == [
        "edge-1",
        "NotReady",
        "100.64.0.5",
        "Direct?",
        "5m",
        "edge-1.tailnet.test",
        "<none>",  # DERP: the home region "lab" is not shown for a Direct path
        "stale",
        "5m",
        "94.1Mbps/41.0Mbps?",
        "false",
    ]
    assert second.split()[-1] == "true"


async def test_a_node_that_just_beat_shows_its_facts_as_current(
    caractrl: Caractrl, fleet: None, api_transport: httpx.ASGITransport, clock: FakeClock
) -> None:
    measured = NodeThroughput(download="94.1Mbps", upload="41.0Mbps", last_test_time=clock.now())
    network = NodeNetworkStatus(ip="100.64.0.5", mode=NetworkMode.DIRECT, latency_ms=2.5, throughput=measured)
    async with Client(API_URL, transport=api_transport) as client:
        await client.heartbeat("edge-1", Heartbeat(network=network))
    clock.step(90)  # the measurement ages; an empty beat reconfirms the facts
    async with Client(API_URL, transport=api_transport) as client:
        await client.heartbeat("edge-1", Heartbeat())
    row = (await caractrl("get", "nodes", "-o", "wide")).stdout.splitlines()[1].split()
    assert row[3] == "Direct"
    assert row[7:11] == ["2.5ms", "94.1Mbps/41.0Mbps", "1m", "ago"]
    clock.step(41)  # silent past the 40 s grace: the same facts are last known values now
    row = (await caractrl("get", "nodes", "-o", "wide")).stdout.splitlines()[1].split()
    assert row[3] == "Direct?"
    assert row[7:12] == ["stale", "41s", "94.1Mbps/41.0Mbps?", "2m", "ago"]


@pytest.mark.parametrize("word", ["node", "nodes", "no", "NODES"])
async def test_singular_plural_and_short_names(caractrl: Caractrl, fleet: None, word: str) -> None:
    result = await caractrl("get", word, "edge-2")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].split()[:2] == ["edge-2", "NotReady,SchedulingDisabled"]


async def test_get_projects_table_and_wide(caractrl: Caractrl, fleet: None) -> None:
    table = await caractrl("get", "projects")
    wide = await caractrl("get", "project", "web", "-o", "wide")
    assert table.stdout.splitlines()[0].split() == ["NAME", "PHASE", "NODE", "CONDITIONS", "AGE"]
    assert table.stdout.splitlines()[1].split() == ["web", "Pending", "<none>", "<none>", "5m"]
    assert wide.stdout.splitlines()[1].split()[-3:] == ["web,sync", "500m", "256Mi"]


async def test_json_and_yaml_are_the_wire_objects(caractrl: Caractrl, fleet: None) -> None:
    listing = json.loads((await caractrl("get", "nodes", "-o", "json")).stdout)
    single = yaml.safe_load((await caractrl("get", "node", "edge-1", "-o", "yaml")).stdout)
    projects = yaml.safe_load((await caractrl("get", "projects", "-o", "yaml")).stdout)
    assert (listing["apiVersion"], listing["kind"]) == ("caravanserai/v1", "NodeList")
    assert [item["metadata"]["name"] for item in listing["items"]] == ["edge-1", "edge-2"]
    assert single == listing["items"][0]
    assert single["status"]["network"]["dnsName"] == "edge-1.tailnet.test"
    assert single["metadata"]["createdAt"].endswith("Z")
    assert projects["kind"] == "ProjectList"
    assert projects["items"][0]["spec"]["resources"] == {"cpu": "500m", "memory": "256Mi"}


async def test_label_selector(caractrl: Caractrl, fleet: None) -> None:
    result = await caractrl("get", "nodes", "-l", "site=field")
    none = await caractrl("get", "projects", "-l", "app=nothing")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["edge-2"]
    assert (none.exit_code, none.stdout, none.stderr) == (0, "", "No resources found\n")


async def test_an_empty_list(caractrl: Caractrl) -> None:
    table = await caractrl("get", "nodes")
    as_json = await caractrl("get", "projects", "-o", "json")
    assert (table.exit_code, table.stdout, table.stderr) == (0, "", "No resources found\n")
    assert json.loads(as_json.stdout) == {"apiVersion": "caravanserai/v1", "kind": "ProjectList", "items": []}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["get", "node", "ghost"], 'Error: Not Found: Node "ghost" not found'),
        (["get", "gadgets"], 'Error: unknown resource type "gadgets" (expected nodes or projects)'),
        (
            ["get", "nodes", "-l", "app!x"],
            'Error: -l: invalid selector "app!x": cannot read "app!x": terms are key=value, key==value, key!=value, '
            "key in (v1,v2), key notin (v1,v2), key or !key, joined by ','",
        ),
        (["get", "nodes", "edge-1", "-l", "a=b"], "Error: a NAME and -l cannot be used together"),
        (["describe", "project", "ghost"], 'Error: Not Found: Project "ghost" not found'),
        (
            ["describe", "node", "Bad_Name"],
            "Error: invalid name \"Bad_Name\": must be 1-253 characters of lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit",
        ),
    ],
    ids=["not-found", "unknown-type", "bad-selector", "name-and-selector", "describe-not-found", "invalid-name"],
)
async def test_errors_exit_1_with_one_line(caractrl: Caractrl, args: list[str], error: str) -> None:
    result = await caractrl(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", error + "\n")


async def test_an_unknown_output_format_is_a_usage_error(caractrl: Caractrl) -> None:
    result = await caractrl("get", "nodes", "-o", "xml")
    assert result.exit_code == 2
    assert "Invalid value for '-o' / '--output': unknown output format \"xml\"" in result.stderr


async def test_describe_node_shows_every_field_and_a_conditions_table(caractrl: Caractrl, fleet: None) -> None:
    result = await caractrl("describe", "node", "edge-1")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[:4] == ["Name:         edge-1", "Kind:         Node", "Labels:       site=lab", "Annotations:  <none>"]
    assert lines[4].startswith("Created:      2026-11-24T12:00:00Z (5m ago)")
    for expected in [
        "Spec:",
        "  hostname:       edge-1",
        "  unschedulable:  false",
        "Status:",
        "  network:",
        "    ip:          100.64.0.5",
        "    dnsName:     edge-1.tailnet.test",
        "      download:  94.1Mbps",
        "Conditions:",
    ]:
        assert expected in lines
    header, row = lines[lines.index("Conditions:") + 1 : lines.index("Conditions:") + 3]
    assert header.split() == ["TYPE", "STATUS", "REASON", "MESSAGE", "LAST", "HEARTBEAT", "LAST", "TRANSITION"]
    assert row.split() == [
        "GPUHealthy",
        "True",
        "DriverLoaded",
        "driver",
        "550",
        "2026-11-24T12:00:00Z",
        "2026-11-24T12:00:00Z",
    ]


async def test_describe_project(caractrl: Caractrl, fleet: None) -> None:
    result = await caractrl("describe", "projects", "web")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    for expected in [
        "Kind:         Project",
        "  services:",
        "    - name:   web",
        "      image:  nginx:1.27",
        "  resources:",
        "    cpu:     500m",
        "  phase:  Pending",
    ]:
        assert expected in lines
