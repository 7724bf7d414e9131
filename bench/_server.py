"""Start and stop a cara-server for benchmarks: a dev-mode process on loopback, pinned to one core."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
SERVER = str(Path(sys.executable).with_name("cara-server"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchServer:
    """BenchServer is a running cara-server process with its URL."""

    process: subprocess.Popen[bytes]
    url: str

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def rss_mib(self) -> float:
        return float(self.ps.memory_info().rss) / 2**20

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        """stop ends the server with SIGTERM (it flushes its leases) and waits for it."""
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_server(
    store_url: str, *, cpu: int | None = 0, extra: tuple[str, ...] = (), log: Path | None = None
) -> BenchServer:
    """start_server runs `cara-server --dev` on a free loopback port and waits until it answers."""
    port = free_port()
    args = [SERVER, "--dev", "--listen", f"127.0.0.1:{port}", "--store", store_url, "--log-level", "warning", *extra]
    if cpu is not None and (os.cpu_count() or 1) > 1:
        args = ["taskset", "-c", str(cpu), *args]
    out = open(log, "wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cara-server exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/api/healthz", timeout=1).status_code == 200:
                return BenchServer(process, url)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("cara-server did not answer within 30 s")
