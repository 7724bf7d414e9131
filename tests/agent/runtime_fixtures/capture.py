"""Records what a real Docker Engine API (dockerd, or podman's service) answers to RuntimeClient, for replay tests.

Run as root against a running engine whose storage holds `localhost/busybox:1` (a busybox-static rootfs imported
with `docker import` / `podman import`):

    .venv/bin/python tests/agent/runtime_fixtures/capture.py SOCKET DIR

Each exchange is saved as DIR/NN-what.json: the request RuntimeClient sent (method, path, query, body) and the
engine's answer (status, content type, body; base64 when not UTF-8 text). Nothing is written by hand.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from agent.runtime import (
    ContainerCreate,
    EndpointConfig,
    HostConfig,
    LogConfig,
    Mount,
    NetworkingConfig,
    RuntimeClient,
    RuntimeFailure,
)

IMAGE = "localhost/busybox:1"


class Recorder(httpx.AsyncBaseTransport):
    """Recorder forwards to the real socket and keeps every exchange under the name set before it."""

    def __init__(self, socket: str, out: Path) -> None:
        self._inner = httpx.AsyncHTTPTransport(uds=socket)
        self._out = out
        self._count = 0
        self.what = ""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        self._count += 1
        try:
            text, encoding = content.decode("utf-8"), "text"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(content).decode(), "base64"
        record: dict[str, Any] = {
            "request": {
                "method": request.method,
                "path": request.url.path,
                "query": sorted(request.url.params.multi_items()),
                "body": json.loads(body) if body else None,
            },
            "status": response.status_code,
            "contentType": response.headers.get("content-type", ""),
            "encoding": encoding,
            "body": text,
        }
        name = f"{self._count:02d}-{self.what}.json"
        (self._out / name).write_text(json.dumps(record, indent=2) + "\n")
        return httpx.Response(response.status_code, headers=response.headers, content=content)


def spec(command: list[str]) -> ContainerCreate:
    return ContainerCreate.model_validate(
        {
            "Image": IMAGE,
            "Cmd": command,
            "Env": ["GREETING=hello"],
            "Labels": {"cara.project": "fixture", "cara.service": "web"},
            "HostConfig": HostConfig(
                network_mode="cara-fixture",
                mounts=[Mount(source="cara-fixture-data", target="/data")],
                nano_cpus=500_000_000,
                memory=64 * 2**20,
                log_config=LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
            ),
            "NetworkingConfig": NetworkingConfig(endpoints_config={"cara-fixture": EndpointConfig(aliases=["web"])}),
        }
    )


async def capture(socket: str, out: Path) -> None:
    recorder = Recorder(socket, out)
    labels = {"cara.project": "fixture"}
    async with RuntimeClient(socket, transport=recorder) as rt:

        async def step(what: str, call: Any) -> Any:
            recorder.what = what
            try:
                return await call
            except RuntimeFailure as exc:
                return exc

        await step("ping", rt.ping())
        await step("version", rt.version())
        await step("has-image-present", rt.has_image(IMAGE))
        await step("has-image-missing", rt.has_image("localhost/nothing:1"))
        await step("pull-unreachable-registry", rt.pull_image("127.0.0.1:9/nothing:1"))
        await step("create-network", rt.create_network("cara-fixture", labels))
        await step("inspect-network", rt.inspect_network("cara-fixture"))
        await step("create-volume", rt.create_volume("cara-fixture-data", labels))
        await step("create-container", rt.create_container("fixture-web", spec(["httpd", "-f", "-p", "80", "-h", "/"])))
        await step("create-container-taken", rt.create_container("fixture-web", spec(["true"])))
        await step("start-container", rt.start_container("fixture-web"))
        await step("inspect-running", rt.inspect_container("fixture-web"))
        await step("list-containers", rt.list_containers(labels))
        await step(
            "create-echo",
            rt.create_container("fixture-echo", spec(["sh", "-c", "echo out-line; echo err-line >&2; exit 3"])),
        )
        await step("start-echo", rt.start_container("fixture-echo"))
        await asyncio.sleep(2)
        await step("inspect-exited", rt.inspect_container("fixture-echo"))
        recorder.what = "logs"
        chunks = [chunk async for chunk in rt.logs("fixture-echo", tail=10)]
        print("logs:", b"".join(chunks))
        await step("inspect-missing", rt.inspect_container("fixture-nothing"))
        await step("stop-container", rt.stop_container("fixture-web", grace=1))
        await step("remove-container", rt.remove_container("fixture-web"))
        await step("remove-echo", rt.remove_container("fixture-echo"))
        await step("remove-missing", rt.remove_container("fixture-web"))
        await step("list-volumes", rt.list_volumes(labels))
        await step("remove-volume", rt.remove_volume("cara-fixture-data"))
        await step("remove-network", rt.remove_network("cara-fixture"))
        await step("inspect-network-missing", rt.inspect_network("cara-fixture"))


def main(socket: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    asyncio.run(capture(socket, out))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
