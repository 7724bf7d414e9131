"""Real `cara-server --dev` processes on loopback for the replica and crash tests: start, ask, kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port

SERVER = str(Path(sys.executable).with_name("cara-server"))
#: How long a server may take to answer /api/healthz after it is started (a loaded 2-core machine).
START_TIMEOUT_S = 30.0


@dataclass
class ServerProcess:
    """ServerProcess is one running cara-server with its URL and log file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    client: httpx.Client

    def kill(self) -> None:
        """kill sends SIGKILL (no shutdown: nothing is flushed) and reaps the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """stop ends the process gently if it is still running, then closes the client."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.client.close()

    def leads(self) -> bool:
        """leads reads cara_leader from /metrics."""
        text = self.client.get("/metrics").text
        return any(line.split()[1] == "1.0" for line in text.splitlines() if line.startswith("cara_leader "))

    def states(self) -> dict[str, str]:
        """states returns every Node's state as this replica serves it."""
        answer = self.client.get("/api/v1/nodes")
        answer.raise_for_status()
        return {item["metadata"]["name"]: item["status"].get("state", "") for item in answer.json()["items"]}

    def beat(self, name: str, body: dict[str, Any] | None = None) -> None:
        """beat posts one heartbeat (empty unless body is given) and requires 204."""
        answer = self.client.post(f"/api/v1/nodes/{name}/heartbeat", json=body)
        assert answer.status_code == 204, answer.text


def start_server(store_url: str, log: Path, *args: str, port: int | None = None) -> ServerProcess:
    """start_server runs cara-server --dev on a loopback port and waits until it answers /api/healthz."""
    port = port or free_port()
    command = [SERVER, "--dev", "--listen", f"127.0.0.1:{port}", "--store", store_url, *args]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=10)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cara-server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if client.get("/api/healthz").status_code == 200:
                return ServerProcess(process, url, log, client)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"cara-server did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
