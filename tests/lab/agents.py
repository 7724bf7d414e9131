"""Helpers for agent lab tests: start cara-agent in lab hosts against a running control plane, read Nodes, wait."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from tests.deploy.units import install_settings, load_unit, localize
from tests.lab.conftest import Lab
from tests.lab.control_plane import BIN, ControlPlane

T = TypeVar("T")


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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()

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


def wait_until(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> tuple[T, float]:
    """wait_until polls probe until it returns a truthy value; returns (value, seconds waited) or fails at timeout."""
    start = time.monotonic()
    last: T | None = None
    while True:
        last = probe()
        elapsed = time.monotonic() - start
        if last:
            return last, elapsed
        if elapsed > timeout:
            raise AssertionError(f"{what}: not within {timeout:g}s (last: {last!r})")
        time.sleep(interval)
