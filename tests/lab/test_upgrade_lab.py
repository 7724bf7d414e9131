"""docs/deploy.md's upgrade and backup steps in the lab, on the previous release's wheel and store.

The previous release (artifacts/previous: its wheel, built by scripts/package from PREVIOUS_RELEASE, its tag or else
its commit) runs the control plane and two agents the way that release was run (before the units: roles in YAML); the
venv is then upgraded in place from the wheelhouse, the server restarted on the same store with the unit's command
line and settings, and each agent killed and started again as systemd does on failure (docs: `systemctl kill -s KILL
cara-agent`), so no goodbye beat is sent. While all that happens the operator reads both Nodes every half second:
neither may ever be NotReady. Then the store is backed up under write load and restored: every write acknowledged
before the backup began is there."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from lablib.harness import Agent, ControlPlane, node, start_agent, start_control_plane, wait_until

from tests.lab.conftest import Lab
from tests.lab.deployment import release

pytestmark = pytest.mark.lab

EDGES = ("edge1", "edge2")
AGENT_ENV = {"HEARTBEAT_INTERVAL": "2s", "THROUGHPUT_DURATION": "1s"}
#: How systemd restarts a killed agent: RestartSec= of cara-agent.service.
RESTART_SEC = 2.0
#: The roles as the previous release read them (YAML); server.toml's [roles] holds the same.
OLD_ROLES = (
    "roles:\n  admin: {users: [ops]}\n  viewer: {tags: ['tag:cara-server']}\n  node: {tags: ['tag:cara-node']}\n"
)
#: The previous release's writer of acknowledged creates: prints "ack NAME" after each 201, until killed.
WRITER = """
import sys, httpx
url = sys.argv[1]
with httpx.Client(timeout=5) as client:
    for i in range(1_000_000):
        name = f"w-{i:06}"
        doc = {"apiVersion": "caravanserai/v1", "kind": "Node", "metadata": {"name": name}}
        if client.post(f"{url}/api/v1/nodes", json=doc).status_code == 201:
            print(f"ack {name}", flush=True)
"""


def state_of(plane: ControlPlane, name: str) -> str | None:
    """state_of is Node `name`'s state as the operator sees it; None when the server does not answer."""
    try:
        return ((node(plane, name) or {}).get("status") or {}).get("state")
    except AssertionError:
        return None


@dataclass
class Watch:
    """Watch polls the Nodes' states from the operator's machine until stopped, keeping every state it saw."""

    plane: ControlPlane
    seen: list[tuple[float, str, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for name in EDGES:
                self.seen.append((time.monotonic(), name, state_of(self.plane, name)))
            self.stop.wait(0.5)


@dataclass
class Upgraded:
    """Upgraded is the control plane after the upgrade, and what the watch saw during it."""

    plane: ControlPlane
    agents: dict[str, Agent]
    store: Path
    seen: list[tuple[float, str, str | None]]
    seconds: float


@pytest.fixture(scope="module")
def upgraded(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upgraded]:
    work = tmp_path_factory.mktemp("upgrade")
    previous, current = release("previous"), release("dist")
    prefix, state = work / "opt-caravanserai", work / "state"
    previous.install(prefix)
    (work / "roles.yaml").write_text(OLD_ROLES)
    socket = lab.hosts["control"]["socket"]
    old_server = [str(prefix / "bin" / "cara-server"), "--socket", socket, "--config", str(work / "roles.yaml")]
    plane = start_control_plane(lab, state, command=old_server, log_name="old-server.log")
    agents = {
        h: start_agent(lab, h, work / "agents", env=AGENT_ENV, command=[str(prefix / "bin" / "cara-agent")])
        for h in EDGES
    }
    try:
        for host in EDGES:
            wait_until(f"{host} Ready on {previous.version}", functools.partial(_ready, plane, host), 90)
        watch = Watch(plane)
        watcher = threading.Thread(target=watch.run, daemon=True)
        watcher.start()
        started = time.monotonic()
        # docs/deploy.md, "Upgrade": the new wheel into the same venv, then the server, then each agent.
        current.install(prefix)
        plane.stop()
        plane = start_control_plane(lab, state, bin_dir=prefix / "bin", log_name="new-server.log")
        watch.plane = plane
        for host in EDGES:
            agents[host].signal(signal.SIGKILL)
            agents[host].wait(10)
            agents[host].stop()
            time.sleep(RESTART_SEC)
            agents[host] = start_agent(lab, host, work / "agents", env=AGENT_ENV, bin_dir=prefix / "bin")
        for host in EDGES:
            # A beat of the new agent: its Node's heartbeat time moves past the new agent's start.
            wait_until(
                f"{host} beating on {current.version}", functools.partial(_beat_after, plane, host, time.time()), 30
            )
        seconds = time.monotonic() - started
        time.sleep(4)  # two more beats watched at the new version
        watch.stop.set()
        watcher.join(5)
        result = Upgraded(plane, agents, state / "cara.db", watch.seen, seconds)
        yield result
        plane = result.plane  # the restore test starts another
    finally:
        for agent in agents.values():
            agent.stop()
        plane.stop()


def _ready(plane: ControlPlane, name: str) -> bool:
    return state_of(plane, name) == "Ready"


def _beat_after(plane: ControlPlane, name: str, since: float) -> bool:
    seen = ((node(plane, name) or {}).get("status") or {}).get("lastHeartbeat")
    return isinstance(seen, str) and datetime.fromisoformat(seen.replace("Z", "+00:00")).timestamp() > since


def test_upgrading_from_the_previous_release_never_turns_a_node_not_ready(upgraded: Upgraded) -> None:
    states = [(name, state) for _, name, state in upgraded.seen if state is not None]
    assert {name for name, _ in states} == set(EDGES)
    assert [s for s in states if s[1] != "Ready"] == [], "a Node left Ready during the upgrade"
    print(f"\nupgrade of the server and {len(EDGES)} agents: {upgraded.seconds:.1f} s, {len(states)} reads, all Ready")


def test_a_backup_under_write_load_restores_every_acknowledged_write(
    lab: Lab, upgraded: Upgraded, tmp_path: Path
) -> None:
    plane = upgraded.plane
    acks = tmp_path / "acks.txt"
    with acks.open("wb") as out:
        writer = lab.popen("operator", sys.executable, "-c", WRITER, plane.url, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until("50 acknowledged writes", lambda: acks.read_text().count("ack ") >= 50, 30)
            before = {line.split()[1] for line in acks.read_text().splitlines() if line.startswith("ack ")}
            backup = tmp_path / "cara-backup.db"
            # docs/deploy.md, "Back up": SQLite's VACUUM INTO, a consistent snapshot while the server writes on.
            subprocess.run(_backup_command(upgraded, backup), check=True, timeout=60)
            wait_until("writes after the backup", lambda: acks.read_text().count("ack ") > len(before) + 20, 30)
        finally:
            writer.kill()
            writer.wait()
    acked = {line.split()[1] for line in acks.read_text().splitlines() if line.startswith("ack ")}
    # docs/deploy.md, "Restore": stop the server, put the backup in place of the store, start it.
    plane.stop()
    for suffix in ("-wal", "-shm"):
        Path(f"{upgraded.store}{suffix}").unlink(missing_ok=True)
    upgraded.store.write_bytes(backup.read_bytes())
    restored = start_control_plane(lab, upgraded.store.parent, bin_dir=_bin(upgraded), log_name="restored.log")
    upgraded.plane = restored
    code, body = restored.call("operator", "GET", "/api/v1/nodes")
    assert code == 200
    names = {item["metadata"]["name"] for item in body["items"]}
    assert before <= names, f"{len(before - names)} acknowledged writes lost"
    assert set(EDGES) <= names
    print(f"\nbackup under load: {len(before)} writes acknowledged before it, all restored; {len(acked)} in all")


def _bin(upgraded: Upgraded) -> Path:
    return upgraded.store.parent.parent / "opt-caravanserai" / "bin"


def _backup_command(upgraded: Upgraded, backup: Path) -> list[str]:
    """The docs' backup command, with the lab's paths for /opt/caravanserai and /var/lib/caravanserai."""
    snapshot = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('VACUUM INTO ?', (sys.argv[2],))"
    return [str(_bin(upgraded) / "python"), "-c", snapshot, str(upgraded.store), str(backup)]
