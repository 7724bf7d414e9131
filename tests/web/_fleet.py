"""A simulated fleet for the page tests: N Nodes fed through the API as agents would feed them (registration, full
heartbeats with peers, throughput, pressure), with known problems, and the names of those problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import httpx

#: Each Node reports this many fellows (the agent's default MAX_PEERS): the rest of the pairs are not probed.
PEERS: Final = 16
UDP_BLOCKED: Final = "disco pings to the peer's endpoints (10.99.12.2:41641) went unanswered while this node is direct"
#: The peer name of a Node's own path to the control plane.
CONTROL_PLANE: Final = "cara-server"


def name(i: int) -> str:
    return f"edge{i:03d}"


@dataclass
class Fleet:
    """Fleet is what was fed: the names, and which of them carry which problem."""

    names: list[str]
    silent: list[str]  # registered, never beat: NotReady
    pressure: list[str]  # MemoryPressure True
    cordoned: list[str]
    draining: list[str]
    relayed: dict[tuple[str, str], str] = field(default_factory=dict)  # (from, to) → reason
    unknown: list[tuple[str, str]] = field(default_factory=list)  # probed, no answer
    measured: str = ""  # the Node with throughput history
    projects: list[str] = field(default_factory=list)

    @property
    def alive(self) -> list[str]:
        return [n for n in self.names if n not in self.silent]


def plan(count: int) -> Fleet:
    """plan decides the problems of a fleet of count Nodes (count ≥ 40)."""
    names = [name(i) for i in range(1, count + 1)]
    fleet = Fleet(
        names=names,
        silent=[names[count // 2], names[count // 3], names[-1]],
        pressure=[names[10], names[20]],
        cordoned=[names[30]],
        draining=[names[31]],
        measured=names[0],
        projects=[f"web{i}" for i in range(6)],
    )
    fleet.relayed = {
        (names[4], names[5]): "UDPBlocked",
        (names[5], names[4]): "UDPBlocked",
        (names[7], names[8]): "NoEndpoints",
        (names[12], names[13]): "PeerRelay",
        (names[40], CONTROL_PLANE): "NoDirectPaths",  # a Node's own path to the control plane, relayed
    }
    fleet.unknown = [(names[15], names[16])]
    return fleet


def _peers(fleet: Fleet, i: int) -> list[dict[str, Any]]:
    me, count = fleet.names[i], len(fleet.names)
    peers = []
    for step in [*range(-PEERS // 2, 0), *range(1, PEERS // 2 + 1)]:  # the neighbours on a ring, both sides
        other = fleet.names[(i + step) % count]
        body: dict[str, Any] = {"name": other, "mode": "Direct", "latencyMs": round(0.8 + (i % 7) * 0.3, 1)}
        reason = fleet.relayed.get((me, other))
        if reason is not None:
            body = {
                "name": other,
                "mode": "DERP",
                "derpRegion": "headscale",
                "latencyMs": 3.4,
                "relayReason": reason,
                "relayMessage": UDP_BLOCKED if reason == "UDPBlocked" else f"{reason} (simulated)",
                "since": "2026-11-30T09:00:00Z",
            }
        elif (me, other) in fleet.unknown:
            body = {"name": other, "relayReason": "NoAnswer", "relayMessage": "probed: no pong came back"}
        peers.append(body)
    return peers


def feed(api: httpx.Client, fleet: Fleet) -> None:
    """feed registers every Node, sends each live one a full beat (and the measured one its throughput history),
    cordons and drains, and creates the Projects."""
    for node in fleet.names:
        assert api.post("/api/v1/nodes", json={"metadata": {"name": node}}).status_code == 201
    for i, node in enumerate(fleet.names):
        if node in fleet.silent:
            continue
        memory = "200Mi" if node in fleet.pressure else "6000Mi"
        own: dict[str, Any] = {"mode": "Direct"}
        reason = fleet.relayed.get((node, CONTROL_PLANE))
        if reason is not None:
            own = {
                "mode": "DERP",
                "derpRegion": "headscale",
                "relayReason": reason,
                "relayMessage": f"{reason} (simulated)",
            }
        body = {
            "network": {
                "ip": f"100.64.{i // 250}.{i % 250 + 1}",
                "dnsName": f"{node}.tailnet.test",
                **own,
                "latencyMs": 1.1,
                "peers": _peers(fleet, i),
            },
            "capacity": {"cpu": "4000m", "memory": "8000Mi", "disk": "100Gi"},
            "allocatable": {"cpu": "3500m", "memory": "7000Mi", "disk": "90Gi"},
            "available": {"memory": memory, "disk": "80Gi"},
        }
        assert api.post(f"/api/v1/nodes/{node}/heartbeat", json=body).status_code == 204
    for minute in range(6):
        throughput = {
            "download": f"{80 + minute * 2}.0Mbps",
            "upload": f"{30 + minute}.0Mbps",
            "lastTestTime": f"2026-11-30T09:{minute:02d}:00Z",
            "bytesUsed": 1_000_000,
        }
        body = {"network": {"throughput": throughput, "latencyMs": 1.0 + minute}}
        assert api.post(f"/api/v1/nodes/{fleet.measured}/heartbeat", json=body).status_code == 204
    for node in fleet.cordoned:
        current = api.get(f"/api/v1/nodes/{node}").json()
        current["spec"]["unschedulable"] = True
        assert api.put(f"/api/v1/nodes/{node}", json=current).status_code == 200
    for node in fleet.draining:
        assert api.post(f"/api/v1/nodes/{node}/drain").status_code == 200
    for project in fleet.projects:
        body = {"metadata": {"name": project}, "spec": {"services": [{"name": "app", "image": "nginx"}]}}
        assert api.post("/api/v1/projects", json=body).status_code == 201


def keep_alive(api: httpx.Client, fleet: Fleet) -> None:
    """keep_alive renews the lease of every live Node (empty beats)."""
    for node in fleet.alive:
        api.post(f"/api/v1/nodes/{node}/heartbeat")
