"""Caravanserai's own binaries in the lab, started as their systemd units start them: cara-server in the `control`
host on its tailnet address, cara-agent in edges; reading a Node, and polling. The lab tests (tests/lab) and the
lab benchmark (bench/agent.py) share this one copy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lablib.client import Lab
from lablib.units import install_settings, load_unit, localize

#: Where the console scripts are: this Python's venv (the tests' and the benchmarks' own).
BIN = Path(sys.executable).parent
T = TypeVar("T")

#: The lab runs cara-server as its unit does (deploy/systemd/cara-server.service: its ExecStart, with the settings
#: file deploy/server.toml, whose roles the lab's identities fill: the `ops` user (host operator) administers, the
#: control host itself is a viewer (so a test can call as a viewer from there), the edges (tag:cara-node) are nodes.
SERVER_UNIT = "cara-server.service"


@dataclass
class ControlPlane:
    """ControlPlane is a running cara-server in the lab, with ways to call it from any lab host."""

    lab: Lab
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    log_file: BinaryIO

    def call(self, host: str, method: str, path: str, body: Any = None, *, timeout: float = 20) -> tuple[int, Any]:
        """call sends one request from `host` over the tailnet and returns (status, decoded JSON or text)."""
        argv = ["curl", "-sS", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}", "-X", method, f"{self.url}{path}"]
        if body is not None:
            argv += ["-H", "content-type: application/json", "--data-binary", json.dumps(body)]
        result = self.lab.run(host, *argv, check=False, timeout=timeout + 5)
        text, _, code = result.stdout.rpartition("\n")
        try:
            return int(code), json.loads(text) if text.strip().startswith(("{", "[")) else text
        except ValueError:
            raise AssertionError(f"curl from {host} failed: {result.stderr or result.stdout}") from None

    def stop(self) -> None:
        _stop(self.process, self.log_file, grace=15)


def _stop(process: subprocess.Popen[bytes], log_file: BinaryIO, *, grace: float) -> None:
    """_stop sends SIGTERM, kills after `grace` seconds, and closes the log."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log_file.close()


def start_control_plane(
    lab: Lab,
    workdir: Path,
    *extra: str,
    grace: str = "40s",
    heartbeat_interval: str = "2s",
    log_name: str = "cara-server.log",
    bin_dir: Path = BIN,
    wrap: tuple[str, ...] = (),
    command: list[str] | None = None,
) -> ControlPlane:
    """start_control_plane runs cara-server in `control` (tailnet mode) and waits until `operator` reaches it;
    started again on the same `workdir` it finds the same SQLite store (give it another `log_name` to keep logs).
    grace and heartbeat_interval: the --grace and --heartbeat-interval it runs with (short, so tests are quick).
    bin_dir: where the console scripts are (default: this venv's); wrap: a command prefix (e.g. strace); command:
    instead of the unit's command line (a release from before the units)."""
    workdir.mkdir(parents=True, exist_ok=True)
    install_settings(workdir / "etc")
    log = workdir / log_name
    log_file = log.open("wb")
    control = lab.hosts["control"]
    process = lab.popen(
        "control",
        *wrap,
        *(command or localize(load_unit(SERVER_UNIT).exec_start(), bin_dir=bin_dir, etc=workdir / "etc")),
        "--socket",
        control["socket"],
        "--store",
        f"sqlite:///{workdir}/cara.db",
        "--grace",
        grace,
        "--heartbeat-interval",
        heartbeat_interval,
        *extra,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    plane = ControlPlane(lab, process, f"http://{control['ip']}:8080", log, log_file)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_file.close()
            raise AssertionError(f"cara-server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if plane.call("operator", "GET", "/api/healthz", timeout=2)[0] == 200:
                return plane
        except AssertionError:
            pass
        time.sleep(0.3)
    plane.stop()
    raise AssertionError(f"cara-server did not answer within 30 s:\n{log.read_text()}")


@contextmanager
def running_control_plane(
    lab: Lab, workdir: Path, *extra: str, grace: str = "40s", heartbeat_interval: str = "2s"
) -> Iterator[ControlPlane]:
    """running_control_plane starts cara-server for a block (as start_control_plane) and always stops it."""
    plane = start_control_plane(lab, workdir, *extra, grace=grace, heartbeat_interval=heartbeat_interval)
    try:
        yield plane
    finally:
        plane.stop()


@dataclass
class Agent:
    """Agent is one cara-agent process in a lab host."""

    host: str
    process: subprocess.Popen[bytes]
    log: Path
    log_file: BinaryIO

    def signal(self, sig: signal.Signals) -> None:
        """signal sends sig to the agent (SIGTERM: going away; SIGKILL: a crash)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        _stop(self.process, self.log_file, grace=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


#: Agents run as their unit does: its ExecStart, with the settings file deploy/agent.env.
AGENT_UNIT = "cara-agent.service"


def start_agent(
    lab: Lab,
    host: str,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    bin_dir: Path = BIN,
    wrap: tuple[str, ...] = (),
    command: list[str] | None = None,
) -> Agent:
    """start_agent runs cara-agent in `host` with its unit's command line and NODE_NAME=host, finding the server by
    MagicDNS (no SERVER_URL); bin_dir: where the console scripts are; wrap: a command prefix (e.g. strace);
    command: instead of the unit's command line (a release from before the units)."""
    data = workdir / host
    data.mkdir(parents=True, exist_ok=True)
    log = workdir / f"agent-{host}.log"
    log_file = log.open("wb")
    variables = {"NODE_NAME": host, "DATA_DIR": str(data), **(env or {})}
    etc = workdir / "etc"
    install_settings(etc)
    argv = [*wrap, *(command or localize(load_unit(AGENT_UNIT).exec_start(), bin_dir=bin_dir, etc=etc))]
    process = lab.popen(host, *argv, env=variables, stdout=log_file, stderr=subprocess.STDOUT)
    return Agent(host, process, log, log_file)


@contextmanager
def running_agents(
    lab: Lab,
    hosts: list[str],
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    host_env: Mapping[str, dict[str, str]] | None = None,
) -> Iterator[dict[str, Agent]]:
    """running_agents starts an agent in each host for a block (env, plus host_env[host] when given) and always
    stops them."""
    agents: dict[str, Agent] = {}
    try:
        for host in hosts:
            agents[host] = start_agent(lab, host, workdir, env={**(env or {}), **(host_env or {}).get(host, {})})
        yield agents
    finally:
        for agent in agents.values():
            agent.stop()


def node(plane: ControlPlane, name: str) -> dict[str, Any] | None:
    """node returns Node `name` as the operator sees it, or None when it does not exist."""
    code, body = plane.call("operator", "GET", f"/api/v1/nodes/{name}", timeout=5)
    if code == 404:
        return None
    assert code == 200, f"GET node {name}: {code} {body}"
    assert isinstance(body, dict)
    return body


def condition(doc: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    """condition returns the condition of type_ in a Node document ({} when absent)."""
    for item in ((doc or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return {}


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 0.25,
    *,
    every: Callable[[], None] | None = None,
) -> tuple[T, float]:
    """wait_until polls probe (calling `every` first, e.g. to send due heartbeats) until it returns a truthy
    value; returns (value, seconds waited), or fails (AssertionError) naming `what` and the last value."""
    start = time.monotonic()
    last: T | None = None
    while True:
        if every is not None:
            every()
        last = probe()
        elapsed = time.monotonic() - start
        if last:
            return last, elapsed
        if elapsed > timeout:
            raise AssertionError(f"{what}: not within {timeout:g}s (last: {last!r})")
        time.sleep(interval)
