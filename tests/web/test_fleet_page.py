"""The fleet page in a real headless Chromium against a real `cara-server --dev` holding known data.

The server runs as its own process on a free loopback port with a throwaway SQLite store; the data goes in
through the API (nodes, full heartbeats with peers and throughput, so history is recorded by the server).
Chromium dumps the DOM after the page's scripts ran and writes a screenshot under artifacts/web/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._dom import HEADLESS_FLAGS, Element, parse

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "web"
HISTORY_LIMIT = 5
#: How long the server may take to start and the controllers to mark the beating nodes Ready (a bound, not a wait).
STARTUP_S = 30.0

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _poll(what: str, check: Any, process: subprocess.Popen[bytes]) -> None:
    """_poll calls check until it returns true, the server exits, or STARTUP_S passes (then fails naming what)."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"cara-server exited with {process.returncode} while waiting for {what}"
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # waiting on another process, not driving our own time
    pytest.fail(f"{what}: not within {STARTUP_S:g}s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("cara-web")
    url = f"http://127.0.0.1:{_free_port()}"
    command = [
        str(Path(sys.executable).with_name("cara-server")),
        "--dev",
        "--listen",
        url.removeprefix("http://"),
        "--store",
        f"sqlite://{data}/cara.db",
        "--history-limit",
        str(HISTORY_LIMIT),
        "--log-level",
        "warning",
    ]
    with (data / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _poll("/api/healthz", lambda: httpx.get(f"{url}/api/healthz", timeout=2).text == "OK", process)
        yield Server(url, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _peer(name: str, mode: str, latency: float, region: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "ip": f"100.64.0.{name[-1]}", "mode": mode, "latencyMs": latency}
    if region:
        body["derpRegion"] = region
    return body


def _network(name: str, mode: str, latency: float, peers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "ip": f"100.64.0.{name[-1]}",
        "dnsName": f"{name}.tailnet.test",
        "mode": mode,
        "latencyMs": latency,
        "peers": peers,
        **extra,
    }


@pytest.fixture(scope="module")
def fleet(server: Server) -> Server:
    """fleet: edge1 ⇄ edge2 blocked (DERP lab), both Direct to edge3; edge3 never beats (NotReady); edge1 measured
    seven times (the server keeps HISTORY_LIMIT)."""
    with httpx.Client(base_url=server.url, timeout=10) as api:
        for name in ("edge1", "edge2", "edge3"):
            assert api.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
        beats = {
            "edge1": _network(
                "edge1", "Direct", 2.5, [_peer("edge2", "DERP", 41.0, "lab"), _peer("edge3", "Direct", 1.2)]
            ),
            "edge2": _network(
                "edge2",
                "DERP",
                38.0,
                [_peer("edge1", "DERP", 40.0, "lab"), _peer("edge3", "Direct", 1.6)],
                derpRegion="lab",
            ),
        }
        for minute in range(7):
            throughput = {
                "download": f"{80 + minute * 2}.0Mbps",
                "upload": f"{30 + minute}.0Mbps",
                "lastTestTime": f"2026-11-24T10:{minute:02d}:00Z",
                "bytesUsed": 1_000_000,
            }
            body = {"network": {**beats["edge1"], "throughput": throughput}}
            assert api.post("/api/v1/nodes/edge1/heartbeat", json=body).status_code == 204
        assert api.post("/api/v1/nodes/edge2/heartbeat", json={"network": beats["edge2"]}).status_code == 204

        def beating_nodes_ready() -> bool:
            states = {n["metadata"]["name"]: n["status"].get("state") for n in api.get("/api/v1/nodes").json()["items"]}
            for name in ("edge1", "edge2"):  # keep the leases fresh while the controllers catch up
                api.post(f"/api/v1/nodes/{name}/heartbeat")
            return states == {"edge1": "Ready", "edge2": "Ready", "edge3": "NotReady"}

        _poll("edge1 and edge2 Ready", beating_nodes_ready, server.process)
        project = {"metadata": {"name": "web"}, "spec": {"services": [{"name": "web", "image": "nginx:1.27"}]}}
        assert api.post("/api/v1/projects", json=project).status_code == 201

        def scheduled() -> bool:
            for name in ("edge1", "edge2"):
                api.post(f"/api/v1/nodes/{name}/heartbeat")
            return bool(api.get("/api/v1/projects/web").json()["status"].get("phase") == "Scheduled")

        _poll("project web Scheduled", scheduled, server.process)
    return server


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed: scripts/test installs it (apt-get install chromium)"
    return found


def _run_chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(),
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        *extra,
        url,
    ]
    env = {**os.environ, "HOME": str(profile)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def page(fleet: Server, tmp_path_factory: pytest.TempPathFactory) -> Element:
    profile = tmp_path_factory.mktemp("chromium")
    return parse(_run_chromium(f"{fleet.url}/ui", profile, "--dump-dom").stdout)


def test_the_fleet_table_shows_every_node(page: Element) -> None:
    rows = page.by_id("fleet").find_all("tbody")[0].find_all("tr")
    cells = {row.attrs["data-node"]: [td.text() for td in row.find_all("td")] for row in rows}
    assert list(cells) == ["edge1", "edge2", "edge3"]
    assert cells["edge1"][:5] == ["edge1", "Ready", "100.64.0.1", "edge1.tailnet.test", "Direct 2.5 ms"]
    # Throughput is a measurement with its own time: always shown with its age.
    assert cells["edge1"][5].startswith("92.0Mbps / 36.0Mbps · ") and cells["edge1"][5].endswith(" ago")
    assert cells["edge2"][:6] == ["edge2", "Ready", "100.64.0.2", "edge2.tailnet.test", "DERP(lab) 38 ms", "—"]
    assert cells["edge3"][:6] == ["edge3", "NotReady(NodeStatusNeverUpdated)", "—", "—", "unknown", "—"]
    stale = {row.attrs["data-node"]: row.attrs["data-stale"] for row in rows}
    assert stale == {"edge1": "false", "edge2": "false", "edge3": "true"}, "a node that never beat has no current facts"
    assert "Ready=True" in cells["edge1"][6] and "PathRelayed=True" in cells["edge2"][6]
    assert cells["edge1"][7].endswith("s ago") and cells["edge3"][7] == "never"
    assert page.by_id("summary").text() == "3 nodes: 2 Ready, 1 NotReady"
    assert page.by_id("updated").text().startswith("updated ")


def test_the_matrix_shows_the_blocked_pair_as_derp(page: Element) -> None:
    cells = {
        (g.attrs["data-from"], g.attrs["data-to"]): (g.attrs["data-mode"], [t.text() for t in g.find_all("text")])
        for g in page.by_id("matrix").find_all("g", class_="cell")
    }
    assert cells[("edge1", "edge2")] == ("DERP", ["DERP(lab)", "41 ms"])
    assert cells[("edge2", "edge1")] == ("DERP", ["DERP(lab)", "40 ms"])
    assert cells[("edge1", "edge3")] == ("Direct", ["Direct", "1.2 ms"])
    assert cells[("edge2", "edge3")] == ("Direct", ["Direct", "1.6 ms"])
    assert cells[("edge3", "edge1")] == ("unknown", ["unknown"])
    assert cells[("edge1", "cara-server")] == ("Direct", ["Direct", "2.5 ms"])
    assert cells[("edge2", "cara-server")] == ("DERP", ["DERP(lab)", "38 ms"])
    assert cells[("edge1", "edge1")][0] == "self"
    assert len(cells) == 3 * 4
    stale = {
        g.attrs["data-from"]
        for g in page.by_id("matrix").find_all("g", class_="cell")
        if g.attrs["data-stale"] == "true"
    }
    assert stale == {"edge3"}


def test_the_projects_table_shows_each_project_and_its_node(page: Element) -> None:
    rows = [
        [td.text() for td in row.find_all("td")] for row in page.by_id("projects").find_all("tbody")[0].find_all("tr")
    ]
    assert len(rows) == 1 and rows[0][0] == "web"
    assert rows[0][1] == "Scheduled" and rows[0][2] in {"edge1", "edge2"}, "placed on a Ready node: plain Scheduled"


def test_the_chart_shows_the_kept_throughput_history(page: Element) -> None:
    assert page.by_id("chart-node").text() == "edge1"
    chart = page.by_id("chart")
    downloads = [c.attrs["data-rate"] for c in chart.find_all("circle", class_="sample download")]
    uploads = [c.attrs["data-rate"] for c in chart.find_all("circle", class_="sample upload")]
    assert downloads == ["84.0Mbps", "86.0Mbps", "88.0Mbps", "90.0Mbps", "92.0Mbps"]  # the last HISTORY_LIMIT of 7
    assert uploads == ["32.0Mbps", "33.0Mbps", "34.0Mbps", "35.0Mbps", "36.0Mbps"]
    assert chart.find_all("p", class_="latest")[0].text() == "latest: ↓ 92.0Mbps ↑ 36.0Mbps at 2026-11-24T10:06:00Z"
    changes = [[td.text() for td in row.find_all("td")] for row in page.by_id("changes").find_all("tr")[1:]]
    assert sorted(row[1:4] for row in changes) == [
        ["cara-server", "unknown", "Direct"],
        ["edge2", "unknown", "DERP(lab)"],
        ["edge3", "unknown", "Direct"],
    ]


def test_a_screenshot_is_written(fleet: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "fleet.png"
    shot.unlink(missing_ok=True)
    _run_chromium(f"{fleet.url}/ui", tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1200")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    with capsys.disabled():
        print(f"\nfleet page screenshot: {shot}")
