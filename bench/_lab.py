"""The lab pieces bench/agent.py drives: a real cara-server in the lab's `control` host and a cara-agent in an
edge, on the tailnet (the lab handle itself is headscale-dev/lablib/client.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from bench._server import ROOT

sys.path.insert(0, str(ROOT / "headscale-dev"))

from lablib.client import Lab, using_lab

__all__ = ["Lab", "using_lab"]

BIN = Path(sys.executable).parent
#: The deployment's settings file (its roles fit the lab: the `ops` user administers, tag:cara-node are nodes).
SERVER_TOML = ROOT / "deploy" / "server.toml"
T = TypeVar("T")


@dataclass
class LabProcess:
    """LabProcess is a process started in a lab host, with its log."""

    process: subprocess.Popen[bytes]
    log_file: BinaryIO

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


@dataclass
class ControlPlane:
    """ControlPlane is cara-server running in the lab's `control` host on its tailnet address."""

    lab: Lab
    server: LabProcess
    url: str

    def call(self, host: str, method: str, path: str, body: Any = None, *, timeout: float = 20) -> tuple[int, Any]:
        """call sends one request (with `body` as JSON, if given) from `host` over the tailnet; returns (status,
        decoded JSON or text)."""
        argv = ["curl", "-sS", "-m", str(timeout), "-o", "-", "-w", "\n%{http_code}", "-X", method, f"{self.url}{path}"]
        if body is not None:
            argv += ["-H", "content-type: application/json", "--data-binary", json.dumps(body)]
        result = self.lab.run(host, *argv, check=False, timeout=timeout + 5)
        text, _, code = result.stdout.rpartition("\n")
        if not code.isdigit():
            raise RuntimeError(f"curl from {host} failed: {result.stderr or result.stdout}")
        return int(code), json.loads(text) if text.strip().startswith(("{", "[")) else text


@contextmanager
def running_control_plane(lab: Lab, workdir: Path, *extra: str) -> Iterator[ControlPlane]:
    """running_control_plane runs cara-server in `control` until `operator` reaches it, and always stops it;
    `extra` flags go after the lab's (e.g. --listen)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = (workdir / "cara-server.log").open("wb")
    control = lab.hosts["control"]
    args = ["--socket", control["socket"], "--config", str(SERVER_TOML)]
    process = lab.popen(
        "control",
        str(BIN / "cara-server"),
        *args,
        "--store",
        f"sqlite:///{workdir}/cara.db",
        *extra,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    plane = ControlPlane(lab, LabProcess(process, log_file), f"http://{control['ip']}:8080")
    try:
        wait_until("cara-server answering", lambda: _answers(plane), 30)
        yield plane
    finally:
        plane.server.stop()


def _answers(plane: ControlPlane) -> bool:
    if plane.server.process.poll() is not None:
        raise RuntimeError(f"cara-server exited with {plane.server.process.returncode}")
    try:
        return plane.call("operator", "GET", "/api/healthz", timeout=2)[0] == 200
    except RuntimeError:
        return False


def start_agent(lab: Lab, host: str, workdir: Path, *, env: dict[str, str] | None = None) -> LabProcess:
    """start_agent runs cara-agent in `host` with NODE_NAME=host, finding the server by MagicDNS."""
    data = workdir / host
    data.mkdir(parents=True, exist_ok=True)
    log_file = (workdir / f"agent-{host}.log").open("wb")
    variables = {"NODE_NAME": host, "DATA_DIR": str(data), **(env or {})}
    process = lab.popen(host, str(BIN / "cara-agent"), env=variables, stdout=log_file, stderr=subprocess.STDOUT)
    return LabProcess(process, log_file)


def node(plane: ControlPlane, name: str) -> dict[str, Any] | None:
    """node returns Node `name` as the operator sees it, or None when it does not exist."""
    code, body = plane.call("operator", "GET", f"/api/v1/nodes/{name}", timeout=5)
    if code == 404:
        return None
    if code != 200 or not isinstance(body, dict):
        raise RuntimeError(f"GET node {name}: {code} {body}")
    return body


def wait_until(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """wait_until polls probe until it returns a truthy value, or raises naming `what` at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g}s (last: {value!r})")
        time.sleep(interval)
