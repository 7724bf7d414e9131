"""Issue 11 on the real tailnet: a cut link is told from a dead machine, and the control plane's own isolation from
both; a silent Node's facts are shown stale everywhere.

One cara-server in `control` (beats 2 s, grace 6 s, reschedule wait 15 s) and an agent in every edge, shared by the
tests in file order; each test leaves the fleet Ready. The agents run Projects on the lab's container runtime (podman
per edge, the lab's busybox image), and one Project is placed on edge1 and one on edge2 (the other edges cordoned while
it is applied) and is Running there before the first test.
`lab cut A B` is a firewall in A's netns on tailscale0 that drops every packet to or from B's tailnet address, direct
or relayed through DERP alike. tailscaled's own disco/TSMP pings do not cross tailscale0, so "the tailnet path works
again" is measured from the first TCP round trip through it (curl; the lab has no `ping`; see `pings`).
Every figure is printed for the closing note."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from lablib.harness import (
    BIN,
    Agent,
    ControlPlane,
    condition,
    node,
    running_agents,
    running_control_plane,
    start_agent,
    wait_until,
)

from tests.lab.conftest import LAB_SCRIPT, Lab
from tests.lab.projects import engine, manifest, phase_is, run_on, runtime_env, runtime_up
from tests.web._dom import HEADLESS_FLAGS, parse

pytestmark = pytest.mark.lab

EDGES = ["edge1", "edge2", "edge3"]
INTERVAL = 2.0
GRACE = 6.0
RESCHEDULE_AFTER = 15.0
#: The rescheduler passes every 5 s (ControllerConfig.rescheduler_period): a move comes at most this late.
RESCHEDULER_PERIOD = 5.0
#: How long the "dead" edge2's tailscaled stays down: past its NotReady, the wait and a rescheduler pass.
DEAD_FOR = GRACE + RESCHEDULE_AFTER + RESCHEDULER_PERIOD + 8
#: The lifecycle pass period (0.5 s) plus this test's polling (0.25 s) and a loaded shared machine's noise.
SLACK = 1.0
AGENT_ENV = {
    "HEARTBEAT_INTERVAL": f"{INTERVAL:g}s",
    "STATUS_INTERVAL": "10s",
    "PEER_REFRESH_PERIOD": "10s",
    "THROUGHPUT_BACKEND": "off",
}


@pytest.fixture(scope="module")
def runtime(lab: Lab) -> dict[str, Any]:
    return runtime_up(lab)


@pytest.fixture(scope="module")
def plane(lab: Lab, runtime: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    workdir = tmp_path_factory.mktemp("liveness-plane")
    extra = ("--reschedule-after", f"{RESCHEDULE_AFTER:g}s")
    with running_control_plane(lab, workdir, *extra, grace=f"{GRACE:g}s") as running:
        yield running


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("liveness-agents")


@pytest.fixture(scope="module")
def agents(lab: Lab, plane: ControlPlane, runtime: dict[str, Any], agent_dir: Path) -> Iterator[dict[str, Agent]]:
    """agents: one per edge, each on its edge's container runtime; a test that restarts one replaces its entry, and
    the new one is stopped at the end."""
    host_env = {host: runtime_env(runtime, host) for host in EDGES}
    with running_agents(lab, EDGES, agent_dir, env=AGENT_ENV, host_env=host_env) as running:
        for name in EDGES:
            wait_until(f"{name} Ready", partial(is_ready, plane, name), 60)
        yield running


@pytest.fixture(scope="module")
def projects(plane: ControlPlane, agents: dict[str, Agent], runtime: dict[str, Any]) -> dict[str, str]:
    """projects runs one Project on edge1 and one on edge2, each Running there before the tests; returns project →
    node."""
    placed = {"live1": "edge1", "live2": "edge2"}
    for project, host in placed.items():
        run_on(plane, host, EDGES, manifest(project, runtime["image"], resources={"cpu": "100m"}))
    return placed


def is_ready(plane: ControlPlane, name: str) -> bool:
    return state(plane, name) == "Ready"


def state(plane: ControlPlane, name: str) -> str | None:
    return ((node(plane, name) or {}).get("status") or {}).get("state")


def ready(plane: ControlPlane, name: str) -> dict[str, Any]:
    return condition(node(plane, name), "Ready")


def bound_to(plane: ControlPlane, project: str) -> str | None:
    code, body = plane.call("operator", "GET", f"/api/v1/projects/{project}", timeout=5)
    assert code == 200, body
    status = body.get("status") or {}
    return status.get("nodeRef") if status.get("phase") in ("Scheduled", "Running") else None


def placements(plane: ControlPlane) -> dict[str, tuple[str | None, str | None]]:
    code, body = plane.call("operator", "GET", "/api/v1/projects", timeout=5)
    assert code == 200, body
    return {p["metadata"]["name"]: (p["status"].get("phase"), p["status"].get("nodeRef")) for p in body["items"]}


def first_ping(lab: Lab, source: str, target: str, timeout: float = 30) -> float:
    """first_ping reaches target over the tailnet from source (a TCP connection to its agent's port through
    tailscale0, answered) until one succeeds; returns when."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pings(lab, source, target):
            return time.monotonic()
    raise AssertionError(f"{source} could not reach {target} over the tailnet within {timeout:g}s")


def caractrl(lab: Lab, home: Path, *args: str) -> str:
    return lab.run("operator", "env", f"HOME={home}", "NO_COLOR=1", str(BIN / "caractrl"), *args, timeout=30).stdout


def restart_agent(lab: Lab, agents: dict[str, Agent], runtime: dict[str, Any], host: str, workdir: Path) -> None:
    agents[host].stop()
    env = {**AGENT_ENV, **runtime_env(runtime, host)}
    agents[host] = start_agent(lab, host, workdir / f"again-{time.monotonic_ns()}", env=env)


def container_running(runtime: dict[str, Any], host: str, project: str) -> bool:
    """container_running: host's container runtime runs the Project's `web` container (asked from the test's own
    namespace, not over the tailnet)."""
    return bool(engine(runtime, host, f"/containers/{project}-web/json").get("State", {}).get("Running"))


def pings(lab: Lab, source: str, target: str) -> bool:
    """pings: one TCP round trip between source and target over the tailnet within 1 s (the lab has no `ping`).

    Between two edges: to the target's agent port 9090, where a refused connection counts too (the packets crossed
    the tailnet). Between the control host and an edge the tailnet policy (deploy/headscale/policy.hujson) opens
    only the edge → control plane direction, port 8080: the round trip goes that way, through the same tunnel and
    the same `lab cut` firewall, and only an answer counts (the edge's own refusal, e.g. its tailscaled stopped,
    must not)."""
    if "control" in (source, target):
        edge = target if source == "control" else source
        url = f"http://{lab.hosts['control']['ip']}:8080/api/healthz"
        done = lab.run(edge, "curl", "-s", "-o", "/dev/null", "-m", "1", url, check=False, timeout=5)
        return done.returncode == 0
    url = f"http://{lab.hosts[target]['ip']}:9090/healthz"
    done = lab.run(source, "curl", "-s", "-o", "/dev/null", "-m", "1", url, check=False, timeout=5)
    return done.returncode in (0, 7)  # 7: refused (an agent down), 28: timed out (no path)


def page(lab: Lab, plane: ControlPlane, profile: Path) -> Any:
    """page renders /ui in headless Chromium in `operator` and returns the parsed DOM."""
    argv = ["env", f"HOME={profile}", "chromium", *HEADLESS_FLAGS, f"--user-data-dir={profile}", "--dump-dom"]
    return parse(lab.run("operator", *argv, f"{plane.url}/ui", timeout=90).stdout)


def page_projects(lab: Lab, plane: ControlPlane, profile: Path) -> dict[str, str]:
    rows = page(lab, plane, profile).by_id("projects").find_all("tbody")[0].find_all("tr")
    return {r.attrs["data-project"]: r.find_all("td")[1].text() for r in rows if "data-project" in r.attrs}


def test_an_edge_cut_from_the_control_host_is_control_link_down_and_keeps_its_project(
    lab: Lab,
    plane: ControlPlane,
    agents: dict[str, Agent],
    runtime: dict[str, Any],
    projects: dict[str, str],
    tmp_path: Path,
) -> None:
    on_edge1 = sorted(p for p, n in projects.items() if n == "edge1")
    before = placements(plane)
    assert all(before[p] == ("Running", "edge1") for p in on_edge1), before
    lab.cut("control", "edge1")
    lab.cut("edge3", "edge1")  # edge2 stays the only fellow that reaches edge1 (Direct), so it is the witness
    try:
        cut = time.monotonic()
        seen: set[str] = set()

        def link_down() -> dict[str, Any] | None:
            found = ready(plane, "edge1")
            if found.get("status") != "True":
                seen.add(str(found.get("reason")))
            return found if found.get("reason") == "ControlLinkDown" else None

        verdict, took = wait_until("edge1 ControlLinkDown", link_down, GRACE + 2 * INTERVAL + 5, interval=0.25)
        print(f"\ncut -> edge1 NotReady(ControlLinkDown) in {took:.2f}s: {verdict['message']}")
        assert took <= GRACE + 2 * INTERVAL, f"{took:.2f}s: not within grace + two beat intervals"
        assert "edge2" in verdict["message"] and "Direct" in verdict["message"], verdict["message"]
        # The witness is asked for 2.5 s after the last beat and comes within about one interval, so edge1 is
        # normally ControlLinkDown straight away; on a loaded machine it may be HeartbeatTimeout for a pass first
        # (harmless: the rescheduler counts from when Ready left True either way). Recorded, not asserted.
        print(f"reasons seen on the way: {sorted(seen)}")
        assert state(plane, "edge1") == "NotReady"
        # A Project on a Node that is not Ready is not shown as plainly Running (checked while waiting anyway).
        listed = caractrl(lab, tmp_path, "get", "projects")
        print(listed)
        phases = {line.split()[0]: line.split()[1] for line in listed.splitlines()[1:]}
        assert all(phases[p] == "Running(NodeNotReady)" for p in on_edge1), phases
        shown = page_projects(lab, plane, tmp_path / "chromium")
        assert all(shown[p] == "Running (node NotReady)" for p in on_edge1), shown
        # Past the rescheduler's wait (and one of its passes): the witnessed Node keeps its Projects, bound to it
        # with the phase its agent last reported (Running), and its containers keep running there.
        held_until = cut + took + RESCHEDULE_AFTER + RESCHEDULER_PERIOD + 2
        while time.monotonic() < held_until:
            assert ready(plane, "edge1").get("reason") == "ControlLinkDown", "the witness must keep coming"
            assert placements(plane) == before, "no Project may move while edge1 is witnessed"
            time.sleep(1)
        assert placements(plane) == before
        assert all(container_running(runtime, "edge1", p) for p in on_edge1)
        print(f"edge1's {on_edge1} still Running on edge1 {time.monotonic() - cut - took:.1f}s after NotReady")
    finally:
        lab.uncut("control", "edge1")
        lab.uncut("edge3", "edge1")
    uncut = time.monotonic()
    path = first_ping(lab, "control", "edge1")
    _, _ = wait_until("edge1 Ready", lambda: state(plane, "edge1") == "Ready", 30, interval=0.1)
    recovered = time.monotonic() - path
    print(f"edge1 Ready {recovered:.2f}s after the first successful round trip over the tailnet", end="")
    print(f" ({time.monotonic() - uncut:.2f}s after the cut was lifted)")
    assert recovered <= INTERVAL + SLACK
    assert placements(plane) == before


def test_a_dead_agent_on_a_live_tailscaled_is_heartbeat_timeout_and_its_facts_show_stale(
    lab: Lab,
    plane: ControlPlane,
    agents: dict[str, Agent],
    runtime: dict[str, Any],
    projects: dict[str, str],
    tmp_path: Path,
    agent_dir: Path,
) -> None:
    wait_until("edge3 reported its paths", lambda: (node(plane, "edge3") or {})["status"]["network"].get("mode"), 20)
    agents["edge3"].signal(signal.SIGKILL)  # tailscaled stays up: the machine answers disco pings, the agent not
    killed = time.monotonic()
    verdict, took = wait_until(
        "edge3 NotReady", lambda: (r := ready(plane, "edge3")).get("status") == "False" and r, GRACE + 5, 0.25
    )
    assert verdict["reason"] == "HeartbeatTimeout", verdict
    print(f"\nkill -9 edge3's agent -> NotReady(HeartbeatTimeout) in {took:.2f}s")
    # Witness requests go out about edge3 every beat interval; none may be answered by its tailscaled alone.
    until = time.monotonic() + 3 * INTERVAL
    while time.monotonic() < until:
        assert ready(plane, "edge3").get("reason") == "HeartbeatTimeout"
        time.sleep(0.5)

    wide = caractrl(lab, tmp_path, "get", "nodes", "-o", "wide")
    row = next(line.split() for line in wide.splitlines() if line.startswith("edge3 "))
    print(wide)
    assert row[1] == "NotReady(HeartbeatTimeout)" and row[3].endswith("?") and row[7] == "stale", row
    mesh = caractrl(lab, tmp_path, "mesh")
    print(mesh)
    edge3_row = next(line for line in mesh.splitlines() if line.startswith("edge3 "))
    assert "?" in edge3_row and "stale" in edge3_row and "ms" not in edge3_row, edge3_row
    code, metrics = plane.call("operator", "GET", "/metrics", timeout=10)
    assert code == 200
    assert re.search(r'^cara_node_facts_stale\{node="edge3"\} 1(\.0)?$', metrics, re.M), "stale marker"
    assert not re.search(r'^cara_node_path_mode\{[^}]*node="edge3"', metrics, re.M), "no 0/1 mode series"
    assert re.search(r'^cara_node_path_mode\{[^}]*node="edge1"[^}]*\} 1', metrics, re.M), "the live ones are"
    dom = page(lab, plane, tmp_path / "chromium")
    rows = {r.attrs["data-node"]: r for r in dom.by_id("fleet").find_all("tbody")[0].find_all("tr")}
    assert rows["edge3"].attrs["data-stale"] == "true" and rows["edge1"].attrs["data-stale"] == "false"
    edge3_cells = [td.text() for td in rows["edge3"].find_all("td")]
    assert edge3_cells[1] == "NotReady(HeartbeatTimeout)" and "stale" in edge3_cells[2], edge3_cells
    greyed = {
        r.attrs["data-to"]: r.attrs["data-mode"]
        for r in dom.by_id("matrix").find_all("rect", class_="cell")
        if r.attrs["data-from"] == "edge3" and r.attrs["data-to"] != "edge3"
    }
    assert greyed and set(greyed.values()) == {"stale"}, greyed
    print(f"stale in get -o wide, mesh, /metrics and the page {time.monotonic() - killed:.1f}s after the kill")
    restart_agent(lab, agents, runtime, "edge3", agent_dir)
    wait_until("edge3 Ready again", lambda: state(plane, "edge3") == "Ready", 30)


def test_a_dead_machine_is_heartbeat_timeout_and_its_project_is_rescheduled_after_the_wait(
    lab: Lab,
    plane: ControlPlane,
    agents: dict[str, Agent],
    runtime: dict[str, Any],
    projects: dict[str, str],
    agent_dir: Path,
) -> None:
    on_edge2 = sorted(p for p, n in projects.items() if n == "edge2")
    assert on_edge2 and all(placements(plane)[p] == ("Running", "edge2") for p in on_edge2), placements(plane)
    # The machine dies: its tailscaled stops (for DEAD_FOR), then its agent (no goodbye can get out any more).
    down = subprocess.Popen(
        [str(LAB_SCRIPT), "--name", lab.name, "restart", "edge2", "--down", f"{DEAD_FOR:g}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until("edge2's tailscaled stopped", lambda: not pings(lab, "control", "edge2"), 10)
        agents["edge2"].signal(signal.SIGKILL)
        verdict, took = wait_until(
            "edge2 NotReady", lambda: (r := ready(plane, "edge2")).get("status") == "False" and r, GRACE + 5, 0.25
        )
        assert verdict["reason"] == "HeartbeatTimeout", verdict
        print(f"\nedge2 tailscaled + agent stopped -> NotReady(HeartbeatTimeout) in {took:.2f}s")
        moved, after = wait_until(
            f"{on_edge2} rescheduled",
            lambda: all((bound_to(plane, p) or "edge2") != "edge2" for p in on_edge2) and placements(plane),
            RESCHEDULE_AFTER + RESCHEDULER_PERIOD + 10,
            0.5,
        )
        print(f"edge2's {on_edge2} rescheduled {after:.1f}s after NotReady (wait {RESCHEDULE_AFTER:g}s): {moved}")
        assert RESCHEDULE_AFTER - SLACK <= after <= RESCHEDULE_AFTER + RESCHEDULER_PERIOD + SLACK
        assert ready(plane, "edge2").get("reason") == "HeartbeatTimeout"

        def running_elsewhere() -> dict[str, str] | None:
            docs = {p: phase_is(plane, p, "Running") for p in on_edge2}
            nodes = {p: str(d["status"]["nodeRef"]) for p, d in docs.items() if d is not None}
            return nodes if len(nodes) == len(on_edge2) and "edge2" not in nodes.values() else None

        where, started = wait_until(f"{on_edge2} Running elsewhere", running_elsewhere, 30, 0.25)
        assert all(container_running(runtime, n, p) for p, n in where.items())
        print(f"and Running there {after + started:.1f}s after NotReady: {where}")
    finally:
        down.wait(90)
    restart_agent(lab, agents, runtime, "edge2", agent_dir)
    wait_until("edge2 Ready again", lambda: state(plane, "edge2") == "Ready", 60)


def test_a_control_host_cut_from_every_peer_is_isolated_and_moves_nothing(
    lab: Lab, plane: ControlPlane, agents: dict[str, Agent], runtime: dict[str, Any], projects: dict[str, str]
) -> None:
    for name in EDGES:
        wait_until(f"{name} Ready", partial(is_ready, plane, name), 30)
    before = placements(plane)
    assert {phase for phase, _ in before.values()} == {"Running"}, before
    for name in EDGES:
        lab.cut("control", name)
    try:
        cut = time.monotonic()

        def all_isolated() -> bool:
            return all(ready(plane, n).get("reason") == "ControlPlaneIsolated" for n in EDGES)

        _, took = wait_until("every Node ControlPlaneIsolated", all_isolated, GRACE + 2 * INTERVAL + 5, 0.25)
        print(f"\ncontrol cut from every edge -> all NotReady(ControlPlaneIsolated) in {took:.2f}s")
        assert all(state(plane, n) == "NotReady" for n in EDGES)
        code, metrics = plane.call("operator", "GET", "/metrics", timeout=10)
        assert code == 200 and re.search(r"^cara_control_plane_isolated 1(\.0)?$", metrics, re.M)
        hold_until = cut + took + RESCHEDULE_AFTER + RESCHEDULER_PERIOD + 3
        while time.monotonic() < hold_until:
            assert placements(plane) == before, "no Project may move while the control plane is isolated"
            time.sleep(1)
        assert all(container_running(runtime, str(n), p) for p, (_, n) in before.items())
        print(f"no Project moved in {time.monotonic() - cut:.1f}s of isolation: {before}")
    finally:
        for name in EDGES:
            lab.uncut("control", name)
    uncut = time.monotonic()
    paths = {name: first_ping(lab, "control", name) for name in EDGES}
    _, _ = wait_until("every Node Ready", lambda: all(state(plane, n) == "Ready" for n in EDGES), 30, interval=0.1)
    recovered = time.monotonic() - min(paths.values())
    print(f"all Ready {recovered:.2f}s after the first successful round trip over the tailnet (to any edge)", end="")
    print(f" ({time.monotonic() - uncut:.2f}s after the cut was lifted)")
    assert recovered <= INTERVAL + SLACK
    assert placements(plane) == before
    code, metrics = plane.call("operator", "GET", "/metrics", timeout=10)
    assert re.search(r"^cara_control_plane_isolated 0(\.0)?$", metrics, re.M)
    log = plane.log.read_text()
    assert log.count("control plane isolated:") == 1 and log.count("control plane no longer isolated") == 1, log[-3000:]
