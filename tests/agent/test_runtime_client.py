"""RuntimeClient against answers recorded from real dockerd 20.10 and podman 4.3 (tests/agent/runtime_fixtures)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.runtime import (
    ImagePullFailed,
    NoSuchObject,
    RuntimeAPIError,
    RuntimeClient,
    RuntimeUnreachable,
    demux,
    split_image,
)

from .runtime_fixtures.capture import spec

HERE = Path(__file__).parent / "runtime_fixtures"
ENGINES = ["dockerd-20.10", "podman-4.3"]


class Replay:
    """Replay answers each request with the next recorded exchange, after checking it is the recorded request."""

    def __init__(self, engine: str) -> None:
        self.records = [json.loads(path.read_text()) for path in sorted((HERE / engine).glob("*.json"))]
        self.index = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        record = self.records[self.index]
        self.index += 1
        want = record["request"]
        assert (request.method, request.url.path) == (want["method"], want["path"])
        assert sorted(request.url.params.multi_items()) == [tuple(pair) for pair in want["query"]]
        body = request.read()
        assert (json.loads(body) if body else None) == want["body"]
        raw = base64.b64decode(record["body"]) if record["encoding"] == "base64" else record["body"].encode()
        return httpx.Response(record["status"], headers={"content-type": record["contentType"]}, content=raw)


@pytest.mark.parametrize("engine", ENGINES)
async def test_replays_a_whole_lifecycle(engine: str) -> None:
    replay = Replay(engine)
    labels = {"cara.project": "fixture"}
    async with RuntimeClient("/nowhere.sock", transport=httpx.MockTransport(replay)) as rt:
        await rt.ping()
        version = await rt.version()
        assert version.api_version.startswith("1.4") or version.version.startswith("4.3")
        assert await rt.has_image("localhost/busybox:1")
        assert not await rt.has_image("localhost/nothing:1")
        with pytest.raises(ImagePullFailed, match=r"pull of image 127\.0\.0\.1:9/nothing:1 failed: .*refused"):
            await rt.pull_image("127.0.0.1:9/nothing:1")
        await rt.create_network("cara-fixture", labels)
        assert (await rt.inspect_network("cara-fixture")).name == "cara-fixture"
        await rt.create_volume("cara-fixture-data", labels)
        assert await rt.create_container("fixture-web", spec(["httpd", "-f", "-p", "80", "-h", "/"]))
        with pytest.raises(RuntimeAPIError, match="already in use"):
            await rt.create_container("fixture-web", spec(["true"]))
        await rt.start_container("fixture-web")
        running = await rt.inspect_container("fixture-web")
        assert running.state.running and running.state.status == "running"
        assert running.ip_on("cara-fixture") is not None and running.ip_on("other") is None
        assert running.config.labels == {"cara.project": "fixture", "cara.service": "web"}
        assert "web" in ((running.network_settings.networks or {})["cara-fixture"].aliases or [])
        listed = await rt.list_containers(labels)
        assert [c.names for c in listed] == [["/fixture-web"]]
        await rt.create_container("fixture-echo", spec(["sh", "-c", "echo out-line; echo err-line >&2; exit 3"]))
        await rt.start_container("fixture-echo")
        exited = await rt.inspect_container("fixture-echo")
        assert (exited.state.status, exited.state.running, exited.state.exit_code) == ("exited", False, 3)
        # stdout and stderr are separate pipes: their relative order is the engine's to choose.
        logged = b"".join([chunk async for chunk in rt.logs("fixture-echo", tail=10)])
        assert sorted(logged.splitlines()) == [b"err-line", b"out-line"]
        with pytest.raises(NoSuchObject, match="fixture-nothing"):
            await rt.inspect_container("fixture-nothing")
        await rt.stop_container("fixture-web", grace=1)
        await rt.remove_container("fixture-web")
        await rt.remove_container("fixture-echo")
        await rt.remove_container("fixture-web")  # already gone: not an error
        assert await rt.list_volumes(labels) == ["cara-fixture-data"]
        await rt.remove_volume("cara-fixture-data")
        await rt.remove_network("cara-fixture")
        with pytest.raises(NoSuchObject):
            await rt.inspect_network("cara-fixture")
    assert replay.index == len(replay.records)


async def test_unreachable_socket_names_it(tmp_path: Path) -> None:
    async with RuntimeClient(str(tmp_path / "none.sock")) as rt:
        with pytest.raises(RuntimeUnreachable, match=r"none\.sock is unreachable"):
            await rt.version()


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_demux_joins_frames_split_anywhere() -> None:
    frames = b"\x01\x00\x00\x00\x00\x00\x00\x03abc" + b"\x02\x00\x00\x00\x00\x00\x00\x02de"
    for cut in range(len(frames)):
        got: list[tuple[int, bytes]] = [item async for item in demux(_chunks([frames[:cut], frames[cut:]]))]
        assert got == [(1, b"abc"), (2, b"de")]


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("busybox", ("busybox", "latest")),
        ("lab-registry:5000/web:1", ("lab-registry:5000/web", "1")),
        ("lab-registry:5000/web", ("lab-registry:5000/web", "latest")),
        ("web@sha256:ab", ("web@sha256:ab", "")),
    ],
    ids=["bare", "registry-port-tag", "registry-port-no-tag", "digest"],
)
def test_split_image(image: str, parts: Any) -> None:
    assert split_image(image) == parts
