"""The fleet page in a real headless Chromium against a real `cara-server --dev`, at 200 simulated Nodes (fed through
the API as agents feed it) and at 5,000 (a seeded store): DOM assertions on what it shows, its layout at 1,400 px,
its load time and size, and screenshots kept under artifacts/web/ (the paths are printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.api import (
    ConditionStatus,
    NetworkMode,
    Node,
    NodeNetworkStatus,
    NodeState,
    NodeStatus,
    ObjectMeta,
    PeerPath,
    set_condition,
)
from controlplane.store.leases import Lease
from controlplane.store.sqlite import SqliteStore
from tests.helpers import free_port

from ._dom import HEADLESS_FLAGS, Element, parse
from ._fleet import CONTROL_PLANE, Fleet, feed, keep_alive, plan

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "web"
#: How long the server may take to start and the controllers to judge the Nodes (a bound, not a wait).
STARTUP_S = 60.0
WINDOW = "--window-size=1400,2600"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]


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
        time.sleep(0.2)  # waiting on another process, not driving our own time
    pytest.fail(f"{what}: not within {STARTUP_S:g}s")


@contextlib.contextmanager
def _start(data: Path, *extra: str) -> Iterator[Server]:
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(Path(sys.executable).with_name("cara-server")),
        "--dev",
        "--listen",
        url.removeprefix("http://"),
        "--store",
        f"sqlite://{data}/cara.db",
        "--log-level",
        "warning",
        *extra,
    ]
    with (data / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _poll("/api/healthz", lambda: httpx.get(f"{url}/api/healthz", timeout=2).text == "OK", process)
        yield Server(url, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed: scripts/test installs it (apt-get install chromium)"
    return found


def _run_chromium(url: str, profile: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """_run_chromium runs headless Chromium on url and returns its result and the seconds it took."""
    command = [_chromium(), *HEADLESS_FLAGS, f"--user-data-dir={profile}", *extra, url]
    env = {**os.environ, "HOME": str(profile)}
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done, time.monotonic() - started


def _screenshot(url: str, profile: Path, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    _run_chromium(url, profile, f"--screenshot={shot}", WINDOW)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    return shot


# --- 200 Nodes, fed through the API -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fed:
    server: Server
    fleet: Fleet


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    data = tmp_path_factory.mktemp("cara-web-200")
    with _start(data, "--grace", "20s", "--history-limit", "5") as server:
        fleet = plan(200)
        stop = threading.Event()
        with httpx.Client(base_url=server.url, timeout=30) as api:
            feed(api, fleet)

            def judged() -> bool:
                keep_alive(api, fleet)
                nodes = {n["metadata"]["name"]: n["status"] for n in api.get("/api/v1/nodes").json()["items"]}
                ready = [n for n in fleet.alive if n not in fleet.draining]
                pressed = all(
                    any(
                        c["type"] == "MemoryPressure" and c["status"] == "True"
                        for c in nodes[n].get("conditions") or []
                    )
                    for n in fleet.pressure
                )
                return pressed and all(nodes[n].get("state") == "Ready" for n in ready)

            _poll("every live Node Ready and the pressure judged", judged, server.process)

            def beat() -> None:  # the agents keep beating while Chromium looks
                with httpx.Client(base_url=server.url, timeout=30) as beats:
                    while not stop.wait(2.0):
                        keep_alive(beats, fleet)

            beating = threading.Thread(target=beat, daemon=True)
            beating.start()
            try:
                yield Fed(server, fleet)
            finally:
                stop.set()
                beating.join(timeout=30)


@dataclass(frozen=True)
class Loaded:
    page: Element
    seconds: float
    baseline: float


@pytest.fixture(scope="module")
def page(fed: Fed, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    profile = tmp_path_factory.mktemp("chromium")
    _run_chromium(f"{fed.server.url}/ui/style.css", profile, "--dump-dom", WINDOW)  # a first run sets the profile up
    _, baseline = _run_chromium(f"{fed.server.url}/ui/style.css", profile, "--dump-dom", WINDOW)
    done, seconds = _run_chromium(f"{fed.server.url}/ui#node={fed.fleet.measured}", profile, "--dump-dom", WINDOW)
    return Loaded(parse(done.stdout), seconds, baseline)


def _root(page: Element) -> dict[str, str]:
    return page.find_all("html")[0].attrs


def test_the_summary_counts_nodes_paths_pressure_and_projects(page: Loaded, fed: Fed) -> None:
    found = {e.attrs["data-card"]: e.text() for e in page.page.by_id("summary").iter() if "data-card" in e.attrs}
    assert set(found) == {
        "Nodes Ready",
        "NotReady",
        "Cordoned or draining",
        "Relayed pairs",
        "Relayed control paths",
        "Nodes under pressure",
        "Stale facts",
        "Projects",
    }
    assert found["Nodes Ready"].startswith("196/200Nodes Ready")  # 3 silent, 1 draining
    assert found["NotReady"].startswith("3NotReady3 NodeStatusNeverUpdated")
    assert found["Cordoned or draining"].startswith("2")
    # Pairs between Nodes and Nodes' own paths to the control plane are counted apart (edge041's own path).
    assert found["Relayed pairs"] == "4Relayed pairs1 unknown · 0 stale"
    assert found["Relayed control paths"].startswith("1Relayed control paths")
    assert found["Nodes under pressure"].startswith("2")
    assert found["Projects"].startswith("6Projects")


def test_problems_come_first_with_their_reasons(page: Loaded, fed: Fed) -> None:
    items = page.page.by_id("problems").find_all("li")
    kinds = [li.attrs.get("data-kind") for li in items]
    assert kinds == ["NotReady"] * 3 + ["MemoryPressure"] * 2 + ["Relayed"] * 5
    assert {li.attrs["data-node"] for li in items[:3]} == set(fed.fleet.silent)
    assert items[0].text().endswith("is NotReady (NodeStatusNeverUpdated) — last heartbeat never, facts stale")
    relayed = {
        (li.attrs["data-node"], li.attrs["data-to"]): li.text() for li in items if li.attrs["data-kind"] == "Relayed"
    }
    assert set(relayed) == set(fed.fleet.relayed)
    assert "relayed (UDPBlocked) since" in relayed[("edge005", "edge006")]
    assert "relayed (NoDirectPaths)" in relayed[("edge041", "cara-server")]  # its own path to the control plane
    # The node table: problems first too, cordoned and draining said so, times in words.
    rows = page.page.by_id("fleet").find_all("tbody")[0].find_all("tr")
    assert len(rows) == 100  # a page of the 200
    states = [r.attrs["data-state"] for r in rows]
    assert states[:3] == ["NotReady"] * 3 and "NotReady" not in states[3:]
    cells = {r.attrs["data-node"]: [td.text() for td in r.find_all("td")] for r in rows}
    assert cells["edge031"][0] == "edge031cordoned" and cells["edge032"][:2] == ["edge032draining", "Draining"]
    assert cells[fed.fleet.silent[0]][1] == "NotReady(NodeStatusNeverUpdated)"
    # A Node that never beat has no current facts: stale (the server's factsStale), greyed.
    stale = {r.attrs["data-node"] for r in rows if r.attrs["data-stale"] == "true"}
    assert stale == set(fed.fleet.silent)
    assert cells["edge005"][6].endswith(" s ago") and cells[fed.fleet.silent[0]][6] == "never"
    assert "µ" not in page.page.by_id("fleet").text() and ".000" not in page.page.by_id("fleet").text()


def _big(page: Element, title: str) -> str:
    """_big is the big figure of the summary card titled title."""
    card = next(e for e in page.by_id("summary").iter() if e.attrs.get("data-card") == title)
    return card.find_all("div", class_="big")[0].text()


def test_the_page_and_caractrl_mesh_count_relayed_paths_alike(page: Loaded, fed: Fed) -> None:
    """One rule (controlplane.api.path_counts, mirrored by the page): caractrl mesh's summary and the page's cards
    give the same relayed pairs, unknown pairs and relayed control paths for the same fleet."""
    caractrl = [str(Path(sys.executable).with_name("caractrl")), "--server", fed.server.url, "mesh"]
    shown = subprocess.run([*caractrl, "-o", "json"], capture_output=True, text=True, timeout=60, check=True)
    counts = json.loads(shown.stdout)["summary"]
    pairs = sum(1 for (_, to) in fed.fleet.relayed if to != CONTROL_PLANE)
    assert (counts["relayed"], counts["unknown"], counts["relayedControl"]) == (pairs, 1, 1) == (4, 1, 1)
    shown_pairs, shown_control = _big(page.page, "Relayed pairs"), _big(page.page, "Relayed control paths")
    assert (shown_pairs, shown_control) == (str(counts["relayed"]), str(counts["relayedControl"]))
    card = next(e for e in page.page.by_id("summary").iter() if e.attrs.get("data-card") == "Relayed pairs")
    small = card.find_all("div", class_="small")[0].text()
    assert small == f"{counts['unknown']} unknown · {counts['stale']} stale"
    line = subprocess.run(caractrl, capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()[0]
    assert " 4 relayed, 1 unknown, " in line and line.endswith(" · 1 relayed control path")


def test_the_matrix_is_compact_sorted_and_stays_inside_its_panel(page: Loaded, fed: Fed) -> None:
    root = _root(page.page)
    assert int(root["data-page-width"]) <= int(root["data-view-width"]) == 1400  # no sideways scrolling
    assert int(root["data-matrix-right"]) <= int(root["data-panel-right"])
    image = page.page.by_id("matrix").find_all("svg")[0]
    assert int(image.attrs["data-rows"]) == 200 and 3 <= int(image.attrs["data-cell"]) <= 16
    cells = {
        (r.attrs["data-from"], r.attrs["data-to"]): r.attrs["data-mode"] for r in image.find_all("rect", class_="cell")
    }
    # Drawn: each live Node's 16 reported peers and its path to the control plane, and the diagonal; the other
    # pairs are "not probed" (the background), apart from "unknown" (probed, no answer).
    assert len(cells) == 197 * 17 + 200
    assert cells[("edge005", "edge006")] == "DERP" and cells[("edge006", "edge005")] == "DERP"
    assert cells[("edge013", "edge014")] == "relay"
    assert cells[("edge016", "edge017")] == "unknown"
    assert cells[("edge041", "cara-server")] == "DERP"
    assert cells[("edge005", "edge007")] == "Direct" and cells[("edge005", "cara-server")] == "Direct"
    assert ("edge005", "edge100") not in cells  # not probed
    assert cells[("edge001", "edge001")] == "self"
    order = list(dict.fromkeys(r.attrs["data-from"] for r in image.find_all("rect", class_="cell")))
    assert set(order[:3]) == set(fed.fleet.silent)  # problems cluster at the top left
    legend = page.page.by_id("matrix-panel").text()
    for key in ("Direct", "DERP", "peer relay", "unknown", "not probed", "stale", "self"):
        assert key in legend


def test_the_relayed_list_says_why_and_since_when(page: Loaded) -> None:
    rows = page.page.by_id("relayed").find_all("tbody")[0].find_all("tr")
    found = {(r.attrs["data-from"], r.attrs["data-to"]): [td.text() for td in r.find_all("td")] for r in rows}
    assert found[("edge005", "edge006")][2:4] == ["DERP(headscale)", "UDPBlocked"]
    assert found[("edge005", "edge006")][4].endswith(" ago")
    assert found[("edge013", "edge014")][3] == "PeerRelay"
    assert found[("edge016", "edge017")][2:] == ["unknown", "NoAnswer", "—"]
    assert found[("edge041", "cara-server")][2:4] == ["DERP(headscale)", "NoDirectPaths"]  # the control path too
    assert len(found) == 6  # 5 relayed and 1 unknown


def test_the_drill_down_shows_history_events_availability_and_projects(page: Loaded, fed: Fed) -> None:
    assert page.page.by_id("drill-node").text() == fed.fleet.measured
    drill = page.page.by_id("drill-body")
    rates = [c for c in drill.find_all("circle") if "download" in c.attrs.get("class", "")]
    assert len(rates) == 5  # the server keeps --history-limit 5 of the 6 measurements
    assert "Throughput to the control plane" in drill.text() and "Latency at each path change" in drill.text()
    events = [r.attrs["data-reason"] for r in page.page.by_id("events").find_all("tr") if "data-reason" in r.attrs]
    assert events[-1] == "Registered" and "NodeReady" in events
    assert page.page.by_id("drill-availability").text().startswith("Ready 24h: ")
    changes = page.page.by_id("changes").find_all("tr")
    assert len(changes) == 1 + 5
    assert page.page.by_id("drill-projects").text() != ""


def test_projects_are_listed(page: Loaded, fed: Fed) -> None:
    rows = page.page.by_id("projects").find_all("tbody")[0].find_all("tr")
    assert [r.attrs["data-project"] for r in rows] == sorted(fed.fleet.projects)


def test_load_time_size_and_a_screenshot(
    page: Loaded, fed: Fed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prints what an operator pays to open the page at 200 Nodes: bytes over the wire and time to the first full
    render (Chromium's run on the page minus its run on a static file: start-up left out)."""
    paths = ["/ui", "/ui/app.js", "/ui/style.css", "/api/v1/nodes", "/api/v1/projects"]
    node = fed.fleet.measured
    paths += [f"/api/v1/nodes/{node}/history", f"/api/v1/events?kind=Node&name={node}&limit=15"]
    paths += [f"/api/v1/nodes/{node}/availability"]
    sizes = {path: len(httpx.get(fed.server.url + path, timeout=30).content) for path in paths}
    shot = _screenshot(f"{fed.server.url}/ui#node={node}", tmp_path / "profile", "fleet-200.png")
    rendered = int(_root(page.page)["data-rendered-ms"])
    with capsys.disabled():
        print(
            f"\nfleet page at 200 nodes: {sum(sizes.values()) / 1e6:.2f} MB in {len(sizes)} requests"
            f" (nodes {sizes['/api/v1/nodes'] / 1e6:.2f} MB, page+script+style"
            f" {(sizes['/ui'] + sizes['/ui/app.js'] + sizes['/ui/style.css']) / 1e3:.0f} kB);"
            f" Chromium {page.seconds:.2f} s on the page vs {page.baseline:.2f} s on a static file"
            f" (≈ {page.seconds - page.baseline:.2f} s to load and render; in-page clock {rendered} ms)"
            f"\nscreenshot: {shot}"
        )
    assert sizes["/api/v1/nodes"] > 100_000  # the page did read the fleet it shows


# --- 5,000 Nodes, a seeded store -----------------------------------------------------------------------------

BIG = 5_000


def _seed(path: Path) -> None:
    """_seed writes BIG Ready Nodes with 16 peers each straight into a SQLite store, with fresh leases: a restarted
    control plane keeps them Ready for a grace. Every 250th is NotReady (its facts stale) and every 500th from the
    100th (a Ready one) reports a relayed peer."""
    now = datetime.now(UTC)

    async def run() -> None:
        store = await SqliteStore.open(str(path))
        try:
            leases = {}
            for i in range(1, BIG + 1):
                name = f"n{i:05d}"
                peers = [
                    PeerPath(name=f"n{(i + step - 1) % BIG + 1:05d}", mode=NetworkMode.DIRECT, latency_ms=1.0)
                    for step in range(1, 17)
                ]
                if i % 500 == 100:
                    peers[0] = peers[0].model_copy(
                        update={"mode": NetworkMode.DERP, "derp_region": "headscale", "relay_reason": "UDPBlocked"}
                    )
                down = i % 250 == 0
                conditions = set_condition(
                    None,
                    "Ready",
                    ConditionStatus.FALSE if down else ConditionStatus.TRUE,
                    "HeartbeatTimeout" if down else "AgentReady",
                    "seeded",
                    now,
                )
                status = NodeStatus(
                    state=NodeState.NOT_READY if down else NodeState.READY,
                    network=NodeNetworkStatus(mode=NetworkMode.DIRECT, latency_ms=1.0, peers=peers),
                    conditions=conditions,
                    last_heartbeat=now - timedelta(hours=2) if down else now,
                )
                await store.create_node(Node(metadata=ObjectMeta(name=name), status=status))
                if not down:
                    leases[name] = Lease(now)
            await store.save_leases(leases)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("cara-web-5000")
    _seed(data / "cara.db")
    with _start(data, "--grace", "10m") as server:
        yield server


def test_at_5000_nodes_the_summary_and_problems_stay_and_the_matrix_is_filtered(
    big: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done, seconds = _run_chromium(f"{big.url}/ui", tmp_path / "profile", "--dump-dom", WINDOW)
    page = parse(done.stdout)
    assert not page.by_id("updated").attrs.get("class"), page.by_id("updated").text()  # no refresh error
    found = {e.attrs["data-card"]: e.text() for e in page.by_id("summary").iter() if "data-card" in e.attrs}
    assert found["Nodes Ready"].startswith(f"{BIG - BIG // 250}/{BIG}Nodes Ready")
    assert found["Relayed pairs"].startswith(f"{BIG // 500}Relayed pairs")
    assert found["Relayed control paths"].startswith("0Relayed control paths")
    problems = page.by_id("problems").find_all("li")
    not_ready = [li for li in problems if li.attrs.get("data-kind") == "NotReady"]
    assert len(not_ready) == 20 and not any(li.attrs.get("data-kind") == "more" for li in problems)
    image = page.by_id("matrix").find_all("svg")[0]
    assert int(image.attrs["data-rows"]) == 200  # filtered: the nodes with problems first, then the others
    assert (
        page.by_id("matrix-note").text()
        == f"showing 200 of {BIG} nodes, problems first; type in the filter to see others"
    )
    rows = {r.attrs["data-from"] for r in image.find_all("rect", class_="cell")}
    assert {f"n{i:05d}" for i in range(250, BIG + 1, 250)} <= rows
    assert len(page.by_id("fleet").find_all("tbody")[0].find_all("tr")) == 100
    assert page.by_id("fleet-note").text() == f"100 of {BIG}, problems first"
    root = _root(page)
    assert int(root["data-page-width"]) <= int(root["data-view-width"])
    nodes = len(httpx.get(f"{big.url}/api/v1/nodes", timeout=60).content)
    shot = _screenshot(f"{big.url}/ui", tmp_path / "profile-shot", "fleet-5000.png")
    with capsys.disabled():
        print(
            f"\nfleet page at {BIG} nodes: /api/v1/nodes {nodes / 1e6:.1f} MB; Chromium {seconds:.1f} s;"
            f" in-page clock {root['data-rendered-ms']} ms\nscreenshot: {shot}"
        )
