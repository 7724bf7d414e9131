"""deploy/prometheus and deploy/grafana: promtool checks and unit-tests the alert rules, and every series the rules
and the dashboard name is one cara-server (or cara-agent) really exports, read from a scrape with data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent.heartbeat import BeatState
from agent.metrics import metrics_handler
from controlplane.api import ConditionStatus, Node, set_condition
from controlplane.store import Store
from tests.conftest import FakeClock
from tests.factories import agent_status

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yaml"
DASHBOARDS = sorted((DEPLOY / "grafana").glob("*.json"))

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPINGS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"})
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def series_names(expr: str) -> set[str]:
    """series_names is every metric name a PromQL expression selects (functions, keywords, labels left out)."""
    text = _STRINGS.sub('""', expr)
    for pattern in (_MATCHERS, _RANGES, _GROUPINGS):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before in ".$" or match.group() in _KEYWORDS:
            continue  # 10e6, 0.99, $node
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        names.add(match.group())
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('cara_node_ready{reason!~"A|B"} == 0', {"cara_node_ready"}),
        (
            '(cara_node_path_mode{mode="DERP"} == 1) * on (node, peer) group_left (reason) cara_node_path_not_direct',
            {"cara_node_path_mode", "cara_node_path_not_direct"},
        ),
        ("cara_node_throughput_bits_per_second < 10e6", {"cara_node_throughput_bits_per_second"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(cara_http_request_duration_seconds_bucket[5m])))",
            {"cara_http_request_duration_seconds_bucket"},
        ),
        ('sum by (node) (increase(cara_path_changes_total{node=~"$node"}[1h]))', {"cara_path_changes_total"}),
        ("topk(10, up) or absent(nothing_here)", {"up", "nothing_here"}),
    ],
    ids=["matcher", "join", "number", "histogram", "variable", "functions"],
)
def test_series_names_reads_promql(expr: str, names: set[str]) -> None:
    assert series_names(expr) == names


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/test installs Debian's prometheus package, which has it"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, cwd=ALERTS.parent)


def test_promtool_checks_the_rules() -> None:
    done = _promtool("check", "rules", ALERTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    done = _promtool("test", "rules", ALERT_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rule_tests_can_fail(tmp_path: Path) -> None:
    """A copy of the rules with the relayed window at 20 m instead of 10 m must fail its unit test."""
    rules = ALERTS.read_text().replace("for: 10m", "for: 20m")
    (tmp_path / "alerts.yaml").write_text(rules)
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    promtool = shutil.which("promtool")
    assert promtool
    done = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode != 0 and "alertname: CaraPathRelayed" in done.stdout + done.stderr


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else ""
        exprs += [f"{name}" for name in _LABEL_VALUES.findall(text)]
    return exprs


def _samples(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture
async def server_series(api: httpx.AsyncClient, memory_store: Store, clock: FakeClock) -> set[str]:
    """server_series is every sample name of a real /metrics scrape of an in-process cara-server with data in
    every family: Nodes with paths (one relayed, with a reason), throughput, a Ready condition, Projects."""
    for name in ("edge1", "edge2"):
        assert (await api.post("/api/v1/nodes", json={"metadata": {"name": name}})).status_code == 201
    network = {
        "mode": "Direct",
        "latencyMs": 2.0,
        "throughput": {"download": "94.1Mbps", "upload": "41.0Mbps", "lastTestTime": clock.now().isoformat()},
        "peers": [{"name": "edge2", "mode": "DERP", "latencyMs": 40.0, "relayReason": "UDPBlocked"}],
    }
    assert (await api.post("/api/v1/nodes/edge1/heartbeat", json={"network": network})).status_code == 204
    network["peers"] = [{"name": "edge1", "mode": "Direct", "latencyMs": 1.0}]
    assert (await api.post("/api/v1/nodes/edge2/heartbeat", json={"network": network})).status_code == 204

    def ready(node: Node) -> Node:
        conditions = set_condition(node.status.conditions, "Ready", ConditionStatus.TRUE, "AgentReady", "", clock.now())
        return node.model_copy(update={"status": node.status.model_copy(update={"conditions": conditions})})

    await memory_store.update_node("edge1", ready)
    body = {"metadata": {"name": "web"}, "spec": {"services": [{"name": "app", "image": "nginx"}]}}
    assert (await api.post("/api/v1/projects", json=body)).status_code == 201
    assert (await api.get("/api/v1/nodes")).status_code == 200  # a request, for the HTTP families
    clock.step(10)
    network["peers"] = [{"name": "edge1", "mode": "DERP", "latencyMs": 30.0}]
    assert (await api.post("/api/v1/nodes/edge2/heartbeat", json={"network": network})).status_code == 204
    answer = await api.get("/metrics")
    assert answer.status_code == 200
    return _samples(answer.text)


def agent_series() -> set[str]:
    """agent_series is every sample name of a cara-agent /metrics with a beat, a path and a measurement."""
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    status = agent_status(now)
    beats = BeatState(registered=True, server_reachable=True, last_success=now, counts={"full": 1})
    return _samples(metrics_handler(beats, status, started=1.0)()[2].decode())


async def test_every_series_the_rules_and_dashboards_name_is_exported(server_series: set[str]) -> None:
    exported = server_series | agent_series()
    used: dict[str, set[str]] = {"alerts.yaml": set().union(*map(series_names, _rule_exprs()))}
    assert DASHBOARDS, "no dashboard under deploy/grafana"
    for path in DASHBOARDS:
        used[path.name] = set().union(*map(series_names, _dashboard_exprs(json.loads(path.read_text()))))
    assert all(used.values())
    for where, names in used.items():
        assert names <= exported, f"{where} names series nothing exports: {names - exported}"
    # Each family the scrape carries is in base units (Prometheus naming): no milliseconds, no bits-per-second
    # shorthand, no percentages.
    assert not {name for name in exported if re.search(r"_(ms|milliseconds|bps|kbps|mbps|percent|minutes)\b", name)}


def test_the_dashboard_is_self_contained() -> None:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"]
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        assert "http" not in path.read_text().replace("cara_http", "")  # no links or images from elsewhere
