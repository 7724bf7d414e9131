"""Start and stop the processes benchmarks drive: a dev-mode cara-server, or a floor server, on loopback,
pinned to one core."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from bench import _proc

ROOT = Path(__file__).resolve().parent.parent
SERVER = str(Path(sys.executable).with_name("cara-server"))
#: The core the server under test (and its database) runs on; load tools and clients run on LOAD_CPU.
SERVER_CPU = 0
LOAD_CPU = 1


class CpuSource(Protocol):
    """CpuSource is something whose CPU counts with the server's, such as its PostgreSQL cluster."""

    def cpu_seconds(self) -> float: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(args: list[str], cpu: int | None) -> list[str]:
    """pinned prefixes `taskset -c cpu` (which execs, so the pid stays the command's) on a multi-core machine."""
    if cpu is not None and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *args]
    return args


@dataclass
class BenchServer:
    """BenchServer is a running server process with its URL and, when it has one, its database."""

    process: subprocess.Popen[bytes]
    url: str
    db: CpuSource | None = None

    def rss_mib(self) -> float:
        return _proc.rss_mib(self.process.pid)

    def cpu_seconds(self) -> float:
        """cpu_seconds is the server's user + system CPU plus its database's."""
        own = _proc.cpu_seconds(self.process.pid)
        return own + (self.db.cpu_seconds() if self.db is not None else 0.0)

    def stop(self) -> None:
        """stop ends the server with SIGTERM (cara-server flushes its leases) and waits for it."""
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def launch(
    args: list[str], url: str, *, probe: str, log: Path | None, cpu: int | None = SERVER_CPU, what: str = "server"
) -> BenchServer:
    """launch starts `args` pinned to `cpu` and waits until GET url+probe answers without a server error."""
    if log is None:
        process = subprocess.Popen(pinned(args, cpu), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    else:
        with open(log, "wb") as out:  # the child keeps its own descriptor
            process = subprocess.Popen(pinned(args, cpu), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log}")
        try:
            if httpx.get(f"{url}{probe}", timeout=1).status_code < 500:
                return BenchServer(process, url)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    process.wait(10)
    raise RuntimeError(f"{what} did not answer within 30 s")


def start_server(
    store_url: str,
    *,
    cpu: int | None = SERVER_CPU,
    extra: tuple[str, ...] = (),
    log: Path | None = None,
    db: CpuSource | None = None,
) -> BenchServer:
    """start_server runs `cara-server --dev` on a free loopback port and waits until it answers."""
    port = free_port()
    args = [SERVER, "--dev", "--listen", f"127.0.0.1:{port}", "--store", store_url, "--log-level", "warning", *extra]
    server = launch(args, f"http://127.0.0.1:{port}", probe="/api/healthz", log=log, cpu=cpu, what="cara-server")
    server.db = db
    return server
