"""Issue 7 end to end: after `lab block edge1 edge2`, the matrix, the metrics and the fleet page show that pair DERP
(and, blocked at the same time, edge3's own path to the control plane relayed, with its reason).

A real cara-server in `control`, an agent in every edge probing its fellow agents; `caractrl mesh -o json` and a
headless Chromium run from `operator` over the tailnet, `/metrics` is read from there too. The bound is the agent
issue's: the control plane reflects a path change within 15 s of tailscale's own verdict, here the moment
edge1's tailscaled stops (or starts again) trusting a direct address for edge2 (`CurAddr` in its status).
Agents beat every 2 s (HEARTBEAT_INTERVAL), send the full status at least every 10 s (STATUS_INTERVAL), refresh
every peer within 10 s (PEER_REFRESH_PERIOD) and skip throughput tests (THROUGHPUT_BACKEND=off); every wait is a
deadline on a condition.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lablib.harness import BIN, Agent, ControlPlane, running_agents, running_control_plane, wait_until

from tests.lab.conftest import Lab
from tests.web._dom import HEADLESS_FLAGS, parse

pytestmark = pytest.mark.lab

EDGES = ["edge1", "edge2", "edge3"]
PAIR = ("edge1", "edge2")
#: Blocked with PAIR, so both waits overlap: a Node's own path to the control plane (in host `control`), relayed.
OWN = ("edge3", "control")
#: STATUS_INTERVAL: probed latencies ride along with full beats only (a mode change is sent at once), so the
#: first probed latencies of an agent that started before its fellows registered arrive within 10 s.
AGENT_ENV = {
    "HEARTBEAT_INTERVAL": "2s",
    "STATUS_INTERVAL": "10s",
    "PEER_REFRESH_PERIOD": "10s",
    "THROUGHPUT_BACKEND": "off",
}
#: The agent issue's bound: the control plane shows a path change within this of tailscale's own verdict.
BOUND = 15.0
#: magicsock stops trusting a direct address 6.5 s after its last pong, so its own verdict comes within this.
TAILSCALE_VERDICT = 20.0


@pytest.fixture(scope="module")
def plane(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with running_control_plane(lab, tmp_path_factory.mktemp("health-plane"), grace="10s") as running:
        yield running


@pytest.fixture(scope="module")
def agents(lab: Lab, plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Agent]]:
    with running_agents(lab, EDGES, tmp_path_factory.mktemp("health-agents"), env=AGENT_ENV) as running:
        yield running


def mesh_json(lab: Lab, home: Path) -> dict[str, Any]:
    """mesh_json is `caractrl mesh -o json` run by the operator (server found by MagicDNS)."""
    done = lab.run("operator", "env", f"HOME={home}", str(BIN / "caractrl"), "mesh", "-o", "json", timeout=30)
    doc = json.loads(done.stdout)
    assert isinstance(doc, dict)
    return doc


def matrix_modes(doc: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    return {(p["from"], p["to"]): p["mode"] for p in doc["paths"]}


def metrics_modes(plane: ControlPlane) -> dict[tuple[str, str], str]:
    """metrics_modes is the mode each (node, peer) series of cara_node_path_mode says is current (value 1)."""
    code, text = plane.call("operator", "GET", "/metrics", timeout=10)
    assert code == 200, text
    pattern = re.compile(r"^cara_node_path_mode\{([^}]*)\} 1(?:\.0)?$", re.M)
    modes = {}
    for labels in pattern.findall(text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        modes[(found["node"], found["peer"])] = found["mode"]
    return modes


def metrics_reasons(plane: ControlPlane) -> dict[tuple[str, str], str]:
    """metrics_reasons is the reason label of each (node, peer) series of cara_node_path_not_direct."""
    code, text = plane.call("operator", "GET", "/metrics", timeout=10)
    assert code == 200, text
    reasons = {}
    for labels in re.findall(r"^cara_node_path_not_direct\{([^}]*)\} 1(?:\.0)?$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        reasons[(found["node"], found["peer"])] = found["reason"]
    return reasons


def _page_dom(lab: Lab, plane: ControlPlane, profile: Path) -> subprocess.CompletedProcess[str]:
    """_page_dom renders /ui in headless Chromium in `operator` and returns the run with the DOM on stdout."""
    return lab.run(
        "operator",
        "env",
        f"HOME={profile}",
        "chromium",
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        "--dump-dom",
        f"{plane.url}/ui",
        timeout=90,
    )


def page_reasons(lab: Lab, plane: ControlPlane, profile: Path) -> dict[tuple[str, str], str]:
    """page_reasons is the reason of each row of the page's list of paths that are not Direct."""
    done = _page_dom(lab, plane, profile)
    rows = parse(done.stdout).by_id("relayed").find_all("tr")
    return {
        (r.attrs["data-from"], r.attrs["data-to"]): r.attrs["data-reason"] for r in rows if "data-reason" in r.attrs
    }


def page_modes(lab: Lab, plane: ControlPlane, profile: Path) -> dict[tuple[str, str], str]:
    """page_modes renders /ui in headless Chromium in `operator` and returns each matrix cell's data-mode."""
    done = _page_dom(lab, plane, profile)
    cells = parse(done.stdout).by_id("matrix").find_all("rect", class_="cell")
    return {(r.attrs["data-from"], r.attrs["data-to"]): r.attrs["data-mode"] for r in cells}


def own_path(plane: ControlPlane, node: str, *, relayed: bool = False) -> dict[str, Any] | None:
    """own_path is the mode and relay reason of node's own path to the control plane, as the server stores them;
    with relayed, None until it has a reason."""
    code, body = plane.call("operator", "GET", f"/api/v1/nodes/{node}", timeout=10)
    assert code == 200, body
    network = body["status"].get("network") or {}
    own = {key: network.get(key) for key in ("mode", "relayReason", "relayMessage")}
    return None if relayed and not own["relayReason"] else own


def both_ways(modes: dict[tuple[str, str], Any], want: str) -> bool:
    a, b = PAIR
    return modes.get((a, b)) == want and modes.get((b, a)) == want


def curaddr(lab: Lab, host: str, peer: str) -> str | None:
    """curaddr is the direct address host's tailscaled trusts for peer right now ("" when none; None if unseen)."""
    ip = lab.hosts[peer]["ip"]
    for entry in (lab.status(host).get("Peer") or {}).values():
        if ip in (entry.get("TailscaleIPs") or []):
            return str(entry.get("CurAddr") or "")
    return None


def _within(what: str, since: float, probe: Callable[[], bool]) -> float:
    """_within waits for probe until BOUND s after `since` and returns the seconds from `since` it took."""
    wait_until(what, lambda: probe() or None, max(0.0, since + BOUND - time.monotonic()))
    return time.monotonic() - since


def _all_views(lab: Lab, plane: ControlPlane, tmp: Path, since: float, want: str) -> dict[str, float]:
    return {
        "matrix": _within(
            f"caractrl mesh shows {want}", since, lambda: both_ways(matrix_modes(mesh_json(lab, tmp)), want)
        ),
        "metrics": _within(f"/metrics shows {want}", since, lambda: both_ways(metrics_modes(plane), want)),
        "page": _within(f"/ui shows {want}", since, lambda: both_ways(page_modes(lab, plane, tmp / "chromium"), want)),
    }


def _all_direct(lab: Lab, home: Path) -> dict[str, Any] | None:
    """_all_direct is the matrix once every agent probed every other one (passive verdicts carry no latency)."""
    doc = mesh_json(lab, home)
    probed = [p for p in doc["paths"] if p["mode"] == "Direct" and p["latencyMs"] is not None]
    return doc if len(probed) == len(EDGES) * (len(EDGES) - 1) else None


def test_blocked_pair_shows_derp_everywhere_then_direct_again(
    lab: Lab, plane: ControlPlane, agents: dict[str, Agent], tmp_path: Path
) -> None:
    a, b = PAIR
    start = time.monotonic()
    doc, _ = wait_until("every pair of agents Direct in caractrl mesh", lambda: _all_direct(lab, tmp_path), 60, 1.0)
    assert doc["nodes"] == EDGES
    assert {p["to"] for p in doc["paths"] if p["from"] == a} == {"edge2", "edge3"}
    assert all(p["lastSeen"] for p in doc["paths"])
    print(f"\nall 6 paths Direct {time.monotonic() - start:.1f}s after the agents started")
    assert both_ways(metrics_modes(plane), "Direct")
    # The control host is each Node's own path, never one of its peers as well (the agent knows it by address).
    code, listed = plane.call("operator", "GET", "/api/v1/nodes", timeout=10)
    assert code == 200, listed
    reported = {n["metadata"]["name"]: [p.get("ip") for p in n["status"]["network"]["peers"]] for n in listed["items"]}
    assert all(ips and lab.hosts[OWN[1]]["ip"] not in ips for ips in reported.values()), reported

    lab.block(a, b)
    lab.block(*OWN)
    try:
        blocked = time.monotonic()
        wait_until(
            f"{a}'s tailscaled stops trusting {b}'s direct address", lambda: curaddr(lab, a, b) == "", TAILSCALE_VERDICT
        )
        fallback = time.monotonic()
        to_derp = _all_views(lab, plane, tmp_path, fallback, "DERP")
        derp_doc = mesh_json(lab, tmp_path)
        relayed = [p for p in derp_doc["paths"] if (p["from"], p["to"]) in (PAIR, PAIR[::-1])]
        assert all(p["derpRegion"] == "headscale" for p in relayed), relayed
        assert matrix_modes(derp_doc)[("edge1", "edge3")] == "Direct"  # the other pairs are untouched
        # edge3's own path to the control plane is relayed too, and says why: its disco ping came back through DERP,
        # the server's advertised endpoint went unanswered, and edge3 is Direct with its fellows.
        own, _ = wait_until(
            f"{OWN[0]}'s own path to the control plane relayed, with its reason",
            lambda: own_path(plane, OWN[0], relayed=True),
            max(1.0, blocked + TAILSCALE_VERDICT + BOUND - time.monotonic()),
            1.0,
        )
        print(f"\n{OWN[0]} → cara-server after `lab block {OWN[0]} {OWN[1]}`: {own}")
        assert (own["mode"], own["relayReason"]) == ("DERP", "UDPBlocked"), own
        assert f"{lab.hosts[OWN[1]]['underlay']}:41641" in own["relayMessage"], own
        assert metrics_reasons(plane)[(OWN[0], "cara-server")] == "UDPBlocked"
        for edge in PAIR:  # the pair's own paths are not blocked: Direct, and no reason
            assert own_path(plane, edge) == {"mode": "Direct", "relayReason": None, "relayMessage": None}
        # Why: each end pinged the other's advertised endpoint, got no pong, and is Direct with edge3.
        reasons = {(p["from"], p["to"]): (p["relayReason"], p["relayMessage"]) for p in relayed}
        print(f"\nreasons after `lab block {a} {b}`: {reasons}")
        assert {reason for reason, _ in reasons.values()} == {"UDPBlocked"}, reasons
        assert f"{lab.hosts[b]['underlay']}:41641" in reasons[PAIR][1]
        assert all(p["since"] for p in relayed)
        assert {k: v for k, v in metrics_reasons(plane).items() if k in (PAIR, PAIR[::-1])} == {
            PAIR: "UDPBlocked",
            PAIR[::-1]: "UDPBlocked",
        }
        on_page = page_reasons(lab, plane, tmp_path / "chromium")
        assert (on_page.get(PAIR), on_page.get((OWN[0], "cara-server"))) == ("UDPBlocked", "UDPBlocked"), on_page
        # …and the change is an Event about edge1, with the reason in its sentence.
        done = lab.run(
            "operator", "env", f"HOME={tmp_path}", str(BIN / "caractrl"), "get", "events", "--for", f"node/{a}",
            "-o", "json", timeout=30,
        )  # fmt: skip
        changed = [
            e for e in json.loads(done.stdout)["items"] if e["reason"] == "PathChanged" and e["type"] == "Warning"
        ]
        # (from Direct, or from unknown when the first probe after the block got no pong at all)
        assert any(
            f"{a} → {b}: " in e["message"] and "→ DERP(headscale) (UDPBlocked:" in e["message"] for e in changed
        ), [e["message"] for e in changed]
    finally:
        lab.unblock(a, b)
        lab.unblock(*OWN)
    wait_until(f"{a}'s tailscaled trusts {b}'s direct address again", lambda: curaddr(lab, a, b), TAILSCALE_VERDICT)
    direct = time.monotonic()
    to_direct = _all_views(lab, plane, tmp_path, direct, "Direct")
    print(
        f"tailscale's verdict {fallback - blocked:.1f}s after block; DERP shown after it in "
        + ", ".join(f"{k} {v:.1f}s" for k, v in to_derp.items())
        + "; Direct after tailscale's in "
        + ", ".join(f"{k} {v:.1f}s" for k, v in to_direct.items())
    )
    assert max(to_derp.values()) <= BOUND and max(to_direct.values()) <= BOUND
    # edge3's own path is Direct again, and its reason gone (the next tests start from a Direct lab).
    wait_until(
        f"{OWN[0]}'s own path to the control plane Direct again, without a reason",
        lambda: own_path(plane, OWN[0]) == {"mode": "Direct", "relayReason": None, "relayMessage": None},
        TAILSCALE_VERDICT + BOUND,
        1.0,
    )
