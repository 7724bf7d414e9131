"""The floors of bench/run: the least a server can do for a heartbeat on this machine, measured in the same run.

`uvicorn`: a bare ASGI endpoint that reads the body and answers 204, served exactly as cara-server serves
(its listening sockets and uvicorn configuration, protocol factory included). `go`: a minimal Go net/http
handler doing the same (bench/floor/main.go), built with the machine's Go into a cache directory outside
the repository. Our CPU per beat divided by a floor's is what carries from one machine to another.

`python -m bench.floor --listen 127.0.0.1:PORT` serves the uvicorn floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import uvicorn
from starlette.types import Receive, Scope, Send

from bench._server import ROOT, BenchServer, free_port, launch
from controlplane.server.binding import dev_addresses, open_sockets
from controlplane.server.serving import uvicorn_config

GO = os.environ.get("CARA_BENCH_GO", "/usr/local/go/bin/go")
GO_SOURCE = ROOT / "bench" / "floor"
FLOORS = ("uvicorn", "go")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """app reads the whole request body and answers 204 (and takes part in the lifespan protocol)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "caravanserai-bench"


def build_go_floor() -> Path:
    """build_go_floor compiles bench/floor with the machine's Go (no modules beyond the standard library)."""
    out = cache_dir() / "go-floor"
    env = {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod",
        "GOCACHE": str(cache_dir() / "go-build"),
        "CGO_ENABLED": "0",
    }
    done = subprocess.run(
        [GO, "-C", str(GO_SOURCE), "build", "-o", str(out), "."], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the Go floor with {GO} failed: {done.stderr[-800:]}")
    return out


def start_floor(which: str, log: Path | None = None) -> BenchServer:
    """start_floor runs one floor server pinned like cara-server and waits until it answers."""
    port = free_port()
    listen = f"127.0.0.1:{port}"
    if which == "go":
        args = [str(build_go_floor()), listen]
    elif which == "uvicorn":
        args = [sys.executable, "-m", "bench.floor", "--listen", listen]
    else:
        raise ValueError(f"unknown floor {which!r}; choose from {', '.join(FLOORS)}")
    return launch(args, f"http://{listen}", probe="/", log=log, what=f"the {which} floor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.floor", description="serve the bare-uvicorn floor")
    parser.add_argument("--listen", required=True, help="loopback HOST:PORT")
    args = parser.parse_args(argv)
    sockets = open_sockets(dev_addresses(args.listen))
    asyncio.run(uvicorn.Server(uvicorn_config(app, "warning")).serve(sockets=sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
