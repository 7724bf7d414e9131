"""A real cara-server in the lab's `control` host, on its tailnet address, for end-to-end lab tests."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tests.deploy.units import install_settings, load_unit, localize
from tests.lab.conftest import Lab

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def start_control_plane(
    lab: Lab,
    workdir: Path,
    *extra: str,
    grace: str = "40s",
    log_name: str = "cara-server.log",
    bin_dir: Path = BIN,
    wrap: tuple[str, ...] = (),
    command: list[str] | None = None,
) -> ControlPlane:
    """start_control_plane runs cara-server in `control` (tailnet mode) and waits until `operator` reaches it;
    started again on the same `workdir` it finds the same SQLite store (give it another `log_name` to keep logs).
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
        "2s",
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
def running_control_plane(lab: Lab, workdir: Path, *extra: str, grace: str = "40s") -> Iterator[ControlPlane]:
    """running_control_plane starts cara-server for a block and always stops it."""
    plane = start_control_plane(lab, workdir, *extra, grace=grace)
    try:
        yield plane
    finally:
        plane.stop()
