"""The composition root: a whole agent against the in-process API and a fake tailscaled; the CLI; SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from agent.collectors.resources import Usage
from agent.heartbeat import Backoff
from agent.main import discover_server, main, measure_forever, run_agent
from agent.settings import TABLE, Reservation, Settings
from agent.status import AgentStatus
from agent.throughput import Measurement, ThroughputError
from controlplane.api import NetworkMode, NodeInfo, Project, ProjectPhase
from controlplane.store.base import Store
from controlplane.store.leases import LeaseTable
from controlplane.supervision import Supervisor
from mesh import LocalClient
from tests.conftest import API_URL, FakeClock
from tests.mesh.captured import FakeDaemon

GRACE = timedelta(seconds=40)


class Machine:
    def cpu_count(self) -> int:
        return 2

    def memory(self) -> Usage:
        return Usage(4 * 2**30, 2 * 2**30)

    def disk(self, path: Path) -> Usage:
        return Usage(100 * 2**30, 50 * 2**30)


class FixedMeter:
    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.calls = clock, 0

    async def measure(self) -> Measurement:
        self.calls += 1
        return Measurement(94.1e6, 41.0e6, 12_345_678, self.clock.now())


class BeatWatcher(httpx.AsyncBaseTransport):
    """BeatWatcher forwards to the app and sets `seen` once a heartbeat carrying a throughput was accepted."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.seen = inner, asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/heartbeat") and response.status_code == 204 and b"94.1Mbps" in body:
            self.seen.set()
        return response


async def test_agent_registers_reports_and_says_goodbye(
    api_transport: httpx.ASGITransport, clock: FakeClock, memory_store: Store, leases: LeaseTable
) -> None:
    daemon = FakeDaemon(
        {"GET status": (200, "edge1-status-direct.json"), "POST ping": (200, "edge1-ping-edge2-direct.json")}
    )
    settings = Settings(
        node_name="edge1",
        hostname="edge1",
        server_url="http://100.64.0.4:8080",  # edge2 plays the control plane: its path is the direct one captured
        heartbeat_interval=0.01,
        status_interval=60,
        listen_address="127.0.0.1",
        listen_port=0,
        runtime_socket="",  # no container runtime on this node
        ingress_port=0,
    )
    await memory_store.create_project(
        Project.model_validate(
            {
                "metadata": {"name": "bound"},
                "spec": {"services": [{"name": "web", "image": "x"}]},
                "status": {"phase": "Scheduled", "nodeRef": "edge1"},
            }
        )
    )
    supervisor = Supervisor()
    watcher = BeatWatcher(api_transport)
    stop = asyncio.Event()
    meter = FixedMeter(clock)

    class ToApp(httpx.AsyncBaseTransport):  # the agent dials 100.64.0.4; the app answers in-process
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            request.url = request.url.copy_with(scheme="http", host="cara-server.test", port=None)
            return await watcher.handle_async_request(request)

    task = asyncio.create_task(
        run_agent(
            settings,
            stop=stop,
            local=LocalClient("/x.sock", transport=httpx.MockTransport(daemon)),
            transport=ToApp(),
            resources=Machine(),
            meter=meter,
            now=clock.now,
            supervisor=supervisor,
        )
    )
    await asyncio.wait_for(watcher.seen.wait(), 10)
    assert set(supervisor.loops) == {"heartbeat", "http", "throughput", "projects"}
    for _ in range(100):  # the projects loop reports the bound Project Failed: beats go on regardless
        bound = await memory_store.get_project("bound")
        if bound.status.phase == ProjectPhase.FAILED:
            break
        await asyncio.sleep(0.05)
    phase = next(c for c in bound.status.conditions or () if c.type == "Phase")
    assert (bound.status.phase, phase.reason) == (ProjectPhase.FAILED, "ReconcileError")
    assert "container runtime (none configured" in (phase.message or "")
    node = await memory_store.get_node("edge1")
    net = node.status.network
    assert net is not None and (net.ip, net.dns_name, net.mode) == (
        "100.64.0.3",
        "edge1.tailnet.test",
        NetworkMode.DIRECT,
    )
    assert net.throughput is not None and (net.throughput.download, net.throughput.upload) == ("94.1Mbps", "41.0Mbps")
    assert node.status.capacity == {"cpu": "2000m", "memory": "4096Mi", "disk": "100Gi"}
    lease = leases.get("edge1")
    assert lease is not None and lease.is_fresh(clock.now(), GRACE)

    stop.set()  # what SIGTERM does
    assert await asyncio.wait_for(task, 5) == 0
    lease = leases.get("edge1")
    assert lease is not None and lease.released
    assert meter.calls == 1
    assert API_URL  # the in-process app's base URL is what ToApp rewrites to


def test_a_bad_setting_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NODE_NAME", "Not_A_Name")
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1
    assert lines[0].startswith("Error: NODE_NAME: 'Not_A_Name' is not a valid Node name")


def test_every_setting_is_a_flag_and_a_flag_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NODE_NAME", "from-env")
    main(["--node-name", "from-flag", "--check-config"])
    assert capsys.readouterr().out == "cara-agent: settings valid; node from-flag\n"
    with pytest.raises(SystemExit) as exited:
        main(["--no-such-flag"])
    assert exited.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert all(setting.flag_name in shown for setting in TABLE)


def test_sigterm_exits_0_promptly(tmp_path: Path) -> None:
    """A real cara-agent process whose server is down still stops at once, with exit 0, on SIGTERM."""
    env = dict(
        os.environ,
        NODE_NAME="sigterm-test",
        SERVER_URL="http://127.0.0.1:9",  # discard port: nothing listens, connection refused
        TS_SOCKET=str(tmp_path / "no.sock"),
        THROUGHPUT_BACKEND="off",
        AGENT_LISTEN_ADDRESS="127.0.0.1",
        AGENT_LISTEN_PORT="1",  # cannot bind as non-root; as root it binds: either way the agent runs on
        DATA_DIR=str(tmp_path),
    )
    agent = Path(sys.executable).parent / "cara-agent"
    process = subprocess.Popen([str(agent)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        for line in process.stderr:  # wait until the loop runs (handlers are installed before it starts)
            if "heartbeat failed" in line:
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=3) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


EXIT_NOW = """
import atexit, logging, sys
from agent.main import exit_now
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
atexit.register(lambda: print("finalized", file=sys.stderr))
sys.stdout.write("buffered, no newline")
logging.getLogger("cara.agent").info("stopping; the control plane was told")
exit_now(3)
"""


def test_exit_now_flushes_output_and_skips_the_interpreters_finalization() -> None:
    """After the goodbye the agent ends at once: its code, its last lines written, no atexit/teardown run."""
    result = subprocess.run([sys.executable, "-c", EXIT_NOW], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "buffered, no newline"
    assert "stopping; the control plane was told" in result.stderr
    assert "finalized" not in result.stderr


async def test_discovery_resolves_cara_server_from_the_peer_list_once_tailscaled_runs() -> None:
    daemon = FakeDaemon({"GET status": [(200, "fresh-status-needslogin.json"), (200, "edge1-status.json")]})
    local = LocalClient("/x.sock", transport=httpx.MockTransport(daemon))
    settings = Settings(node_name="edge1", hostname="edge1")
    url = await discover_server(local, settings, asyncio.Event(), Backoff(base=0.001, cap=0.001))
    assert url == "http://100.64.0.1:8080"
    assert len(daemon.requests) == 2  # NeedsLogin first: retried


async def test_discovery_gives_up_when_stopped() -> None:
    local = LocalClient(
        "/x.sock", transport=httpx.MockTransport(FakeDaemon({"GET status": (200, "fresh-status-needslogin.json")}))
    )
    stop = asyncio.Event()
    stop.set()
    assert await discover_server(local, Settings(node_name="e", hostname="e"), stop, Backoff()) is None


async def test_measuring_keeps_going_after_a_failure_and_keeps_the_result(clock: FakeClock) -> None:
    stop = asyncio.Event()

    class Flaky:
        calls = 0

        async def measure(self) -> Measurement:
            self.calls += 1
            if self.calls == 1:
                raise ThroughputError("server unreachable")
            stop.set()
            return Measurement(1e6, 2e6, 3, clock.now())

    status = AgentStatus(
        tailnet=None,  # type: ignore[arg-type]
        resources=Machine(),
        info=NodeInfo(),
        data_dir=Path("/"),
        reserved=Reservation(),
        now=clock.now,
    )
    meter = Flaky()
    settings = Settings(node_name="e", hostname="e")
    await asyncio.wait_for(measure_forever(meter, status, settings, stop, Backoff(base=0.001, cap=0.001)), 5)
    assert meter.calls == 2
    assert status.measurement == Measurement(1e6, 2e6, 3, clock.now())
