"""cara-agent end to end in the lab: real cara-server in `control`, an agent in every edge, the issue's "Done when".

One control plane and three agents are shared by the module (beats every 2 s, grace 6 s, so that liveness tests
take seconds); each test leaves them as it found them or starts its own agent. Every wait is a deadline on a
condition, never a sleep standing in for an assertion.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from lablib.harness import (
    Agent,
    ControlPlane,
    condition,
    node,
    running_agents,
    running_control_plane,
    start_agent,
    wait_until,
)

from controlplane.api import parse_throughput
from tests.lab.conftest import Lab

pytestmark = pytest.mark.lab

EDGES = ["edge1", "edge2", "edge3"]
GRACE = 6.0
AGENT_ENV = {"HEARTBEAT_INTERVAL": "2s", "THROUGHPUT_DURATION": "2s"}


@pytest.fixture(scope="module")
def plane(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with running_control_plane(lab, tmp_path_factory.mktemp("agent-plane"), grace=f"{GRACE:g}s") as running:
        yield running


@pytest.fixture(scope="module")
def agents(lab: Lab, plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    with running_agents(lab, EDGES, tmp_path_factory.mktemp("agents"), env=AGENT_ENV) as running:
        yield running


def _ready_with_network(plane: ControlPlane, name: str) -> dict[str, Any] | None:
    doc = node(plane, name)
    status = (doc or {}).get("status") or {}
    network = status.get("network") or {}
    if status.get("state") == "Ready" and network.get("mode") and (network.get("throughput") or {}).get("download"):
        # Ready follows the lease at once; the conditions judged from reported facts follow the lifecycle
        # controller's next re-read of the Node (every 5 s, docs/lifecycle.md), so wait for those too.
        if condition(doc, "PathRelayed").get("status") in ("True", "False"):
            return doc
    return None


@pytest.fixture(scope="module")
def ready(lab: Lab, plane: ControlPlane, agents: dict[str, Agent]) -> dict[str, dict[str, Any]]:
    docs = {}
    for name in EDGES:
        docs[name], _ = wait_until(
            f"{name} Ready with network and throughput", partial(_ready_with_network, plane, name), 60
        )
    return docs


def test_every_node_is_ready_with_the_labs_ground_truth(lab: Lab, ready: dict[str, dict[str, Any]]) -> None:
    for name, doc in ready.items():
        truth = lab.hosts[name]
        status = doc["status"]
        network = status["network"]
        assert (network["ip"], network["dnsName"], network["mode"]) == (truth["ip"], truth["dnsName"], "Direct"), name
        assert network["agentPort"] == 9090
        assert network["derpRegion"] == "headscale"
        assert network["latencyMs"] >= 0
        assert network["tailnet"]["tags"] == ["tag:cara-node"]
        # The path to the control plane is the Node's own (mode, above), never one of its peers as well.
        assert lab.hosts["control"]["ip"] not in [peer.get("ip") for peer in network["peers"]], network["peers"]
        assert set(status["capacity"]) == {"cpu", "memory", "disk"}
        assert status["capacity"]["cpu"].endswith("m") and status["allocatable"]["memory"].endswith("Mi")
        assert status["info"]["kernelVersion"] and status["info"]["osImage"] and status["info"]["agentVersion"]
        assert condition(doc, "NetworkUnavailable")["status"] == "False"
        assert condition(doc, "PathRelayed")["status"] == "False"


def test_throughput_fields_are_present_and_plausible(ready: dict[str, dict[str, Any]]) -> None:
    for name, doc in ready.items():
        throughput = doc["status"]["network"]["throughput"]
        for direction in ("download", "upload"):
            bps = parse_throughput(throughput[direction])
            assert 1e6 < bps < 100e9, f"{name} {direction} {throughput[direction]}"
        assert throughput["bytesUsed"] > 1_000_000
        assert throughput["lastTestTime"].endswith("Z")


def test_agent_serves_healthz_and_metrics_on_its_tailnet_ip(
    lab: Lab, plane: ControlPlane, ready: dict[str, Any]
) -> None:
    ip = lab.hosts["edge1"]["ip"]
    # From the operator's machine: the policy lets operators (not the control plane) reach the agents' port.
    health = lab.run("operator", "curl", "-sS", "-m", "5", f"http://{ip}:9090/healthz").stdout
    doc = json.loads(health)
    assert (doc["status"], doc["node"], doc["registered"], doc["tailscaled"]) == ("ok", "edge1", True, "Running")
    metrics = lab.run("operator", "curl", "-sS", "-m", "5", f"http://{ip}:9090/metrics").stdout
    assert "cara_agent_path_direct 1.0" in metrics
    assert 'cara_agent_heartbeats_total{result="empty"}' in metrics
    assert "process_resident_memory_bytes" in metrics


def _mode(plane: ControlPlane, name: str, mode: str) -> dict[str, Any] | None:
    """_mode returns the Node once it reports `mode` and the controller has judged PathRelayed from it."""
    doc = node(plane, name)
    network = ((doc or {}).get("status") or {}).get("network") or {}
    relayed = "True" if mode == "DERP" else "False"
    return doc if network.get("mode") == mode and condition(doc, "PathRelayed").get("status") == relayed else None


def _tailscale_mode(lab: Lab, host: str, peer_ip: str) -> str:
    """_tailscale_mode is tailscale's own verdict on the path from host to peer_ip, from `tailscale status`."""
    status = lab.status(host)
    for peer in (status.get("Peer") or {}).values():
        if peer_ip in (peer.get("TailscaleIPs") or []):
            if peer.get("CurAddr"):
                return "Direct"
            if peer.get("Active") and peer.get("Relay"):
                return "DERP"
    return "unknown"


def _block_and_unblock(lab: Lab, plane: ControlPlane, host: str) -> tuple[float, float]:
    """_block_and_unblock blocks host <-> control, then unblocks; it returns how long after tailscale's own
    verdict the control plane showed DERP, and then Direct again (PathRelayed judged accordingly)."""
    control_ip = lab.hosts["control"]["ip"]
    lab.block(host, "control")
    try:
        wait_until("tailscale falls back to DERP", lambda: _tailscale_mode(lab, host, control_ip) == "DERP", 40)
        t0 = time.monotonic()
        wait_until(f"control plane shows {host} DERP", lambda: _mode(plane, host, "DERP"), 20)
        to_derp = time.monotonic() - t0
    finally:
        lab.unblock(host, "control")
    wait_until("tailscale direct again", lambda: _tailscale_mode(lab, host, control_ip) == "Direct", 40)
    t0 = time.monotonic()
    wait_until(f"control plane shows {host} Direct again", lambda: _mode(plane, host, "Direct"), 20)
    return to_derp, time.monotonic() - t0


def test_blocking_the_direct_path_shows_derp_then_direct_again(
    lab: Lab, plane: ControlPlane, ready: dict[str, Any]
) -> None:
    to_derp, to_direct = _block_and_unblock(lab, plane, "edge1")
    print(f"2 s beats: control plane DERP {to_derp:.1f}s and Direct {to_direct:.1f}s after tailscale's own verdict")
    assert to_derp <= 15 and to_direct <= 15


def test_the_15s_bound_holds_at_the_default_10s_beats(
    lab: Lab, plane: ControlPlane, agents: dict[str, Agent], ready: dict[str, Any], tmp_path: Path
) -> None:
    agents["edge3"].stop()
    agents["edge3"] = start_agent(lab, "edge3", tmp_path, env={"THROUGHPUT_DURATION": "2s"})  # default 10 s beats
    try:
        wait_until("edge3 Direct at 10 s beats", lambda: _mode(plane, "edge3", "Direct"), 30)
        to_derp, to_direct = _block_and_unblock(lab, plane, "edge3")
        print(f"10 s beats: control plane DERP {to_derp:.1f}s and Direct {to_direct:.1f}s after tailscale's verdict")
        assert to_derp <= 15 and to_direct <= 15
    finally:
        _restart(lab, agents, "edge3", tmp_path, plane)


def _state(plane: ControlPlane, name: str, state: str) -> dict[str, Any] | None:
    doc = node(plane, name)
    return doc if ((doc or {}).get("status") or {}).get("state") == state else None


def _restart(lab: Lab, agents: dict[str, Agent], host: str, workdir: Path, plane: ControlPlane) -> None:
    agents[host].stop()
    agents[host] = start_agent(lab, host, workdir, env=AGENT_ENV)
    wait_until(f"{host} Ready again", lambda: _state(plane, host, "Ready"), 30)


def test_sigterm_turns_the_node_not_ready_within_2s(
    lab: Lab, plane: ControlPlane, agents: dict[str, Agent], ready: dict[str, Any], tmp_path: Path
) -> None:
    agent = agents["edge2"]
    t0 = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.wait(5) == 0
    exited = time.monotonic() - t0
    doc, _ = wait_until("edge2 NotReady", lambda: _state(plane, "edge2", "NotReady"), 5, interval=0.1)
    elapsed = time.monotonic() - t0
    print(f"SIGTERM (monotonic {t0:.3f}) -> agent exited in {exited:.2f}s -> NotReady in {elapsed:.2f}s")
    assert elapsed <= 2.0
    assert condition(doc, "Ready")["reason"] == "AgentShutdown"
    _restart(lab, agents, "edge2", tmp_path, plane)


def test_kill_9_turns_the_node_not_ready_within_grace_plus_1s(
    lab: Lab, plane: ControlPlane, agents: dict[str, Agent], ready: dict[str, Any], tmp_path: Path
) -> None:
    agent = agents["edge3"]
    t0 = time.monotonic()
    agent.signal(signal.SIGKILL)
    agent.wait(5)
    _, _ = wait_until("edge3 NotReady", lambda: _state(plane, "edge3", "NotReady"), GRACE + 5, interval=0.1)
    elapsed = time.monotonic() - t0
    print(f"kill -9 -> NotReady in {elapsed:.2f}s (grace {GRACE:g}s)")
    assert elapsed <= GRACE + 1.0
    _restart(lab, agents, "edge3", tmp_path, plane)


def _want_running(lab: Lab, host: str, running: bool) -> None:
    """_want_running is `tailscale down` / `up` without touching the login: a prefs edit of WantRunning."""
    body = json.dumps({"WantRunning": running, "WantRunningSet": True})
    sock = lab.hosts[host]["socket"]
    lab.run(
        host,
        "curl",
        "-sS",
        "-m",
        "10",
        "--unix-socket",
        sock,
        "-X",
        "PATCH",
        "-d",
        body,
        "http://local-tailscaled.sock/localapi/v0/prefs",
    )


def test_tailscaled_stopped_is_reported_and_recovered_within_one_interval(
    lab: Lab, plane: ControlPlane, agents: dict[str, Agent], ready: dict[str, Any]
) -> None:
    _want_running(lab, "edge1", False)
    try:
        wait_until("edge1's agent notices", lambda: "tailscaled is Stopped" in agents["edge1"].output(), 10)
        wait_until("edge1 NotReady while its tailnet is down", lambda: _state(plane, "edge1", "NotReady"), GRACE + 5)
    finally:
        _want_running(lab, "edge1", True)
    wait_until("tailscaled Running again", lambda: lab.status("edge1").get("BackendState") == "Running", 30)
    t0 = time.monotonic()
    doc, _ = wait_until("edge1 Ready again", lambda: _state(plane, "edge1", "Ready"), 15, interval=0.1)
    elapsed = time.monotonic() - t0
    print(f"tailscaled Running -> Node Ready in {elapsed:.2f}s (interval 2s)")
    assert elapsed <= 2.0 + 1.5  # one beat interval, plus the controller's pass and the path settling
    assert condition(doc, "NetworkUnavailable")["status"] == "False"
