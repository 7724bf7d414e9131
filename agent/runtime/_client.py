"""RuntimeClient: a thin async client of the Docker Engine API over its Unix socket (dockerd, or podman's service).

Why our own and not a library: `aiodocker` brings aiohttp, a second HTTP stack in an agent that already has httpx
(several MiB of RSS on an edge box) and hands back untyped dicts; `docker` (docker-py) is synchronous and built on
requests; `python-on-whales` drives the CLI. The agent needs about fifteen endpoints, and httpx's UDS transport
already serves the tailscaled LocalAPI client, so this is the same shape: one private request path, one small
method per endpoint, pydantic models for what it reads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Final

import httpx
from pydantic import BaseModel

from ._exceptions import ImagePullFailed, NoSuchObject, RuntimeUnreachable, error_for, map_httpx_errors, message_of
from ._logs import demux
from ._models import (
    ContainerCreate,
    ContainerInspect,
    ContainerSummary,
    CreatedId,
    Network,
    Version,
    VolumeList,
)

#: The API version we speak: dockerd 20.10+ and podman 4.x both answer it.
API_VERSION: Final = "v1.41"
BASE_URL: Final = "http://docker"
#: Ordinary requests; a pull or a followed log stream has no read timeout.
DEFAULT_TIMEOUT: Final = 30.0
#: What `docker stop` waits before SIGKILL, as the Go agent does.
STOP_TIMEOUT: Final = 10


def _filters(labels: Mapping[str, str]) -> str:
    """_filters is the `filters` query selecting labels; an empty value selects on the label's presence."""
    return json.dumps({"label": [f"{key}={value}" if value else key for key, value in labels.items()]})


class RuntimeClient:
    """RuntimeClient talks to one container runtime on `socket`; `transport` replaces the socket in tests.

    Every method raises RuntimeUnreachable when the socket cannot be reached and a RuntimeAPIError subclass
    (NoSuchObject, ObjectConflict, ImagePullFailed) when the runtime refuses.
    """

    def __init__(self, socket: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.socket = socket
        self._http = httpx.AsyncClient(
            transport=transport if transport is not None else httpx.AsyncHTTPTransport(uds=socket, verify=False),
            base_url=f"{BASE_URL}/{API_VERSION}",
            timeout=DEFAULT_TIMEOUT,
        )

    async def __aenter__(self) -> RuntimeClient:
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        want: tuple[int, ...],
        params: Mapping[str, str] | None = None,
        body: BaseModel | dict[str, Any] | None = None,
    ) -> httpx.Response:
        payload = body.model_dump(by_alias=True, exclude_none=True) if isinstance(body, BaseModel) else body
        with map_httpx_errors(self.socket):
            response = await self._http.request(method, path, params=params, json=payload)
        if response.status_code not in want:
            raise error_for(response.status_code, response.content)
        return response

    # --- system -----------------------------------------------------------------------------------

    async def ping(self) -> None:
        """ping checks that the engine answers (GET /_ping, "OK"): the cheap liveness probe. /version is not one:
        podman gathers its whole host info for it (about 1 s on a loaded edge)."""
        await self._send("GET", "/_ping", want=(200,))

    async def version(self) -> Version:
        """version returns who answers on the socket (GET /version)."""
        return Version.model_validate((await self._send("GET", "/version", want=(200,))).json())

    # --- containers -------------------------------------------------------------------------------

    async def list_containers(self, labels: Mapping[str, str]) -> list[ContainerSummary]:
        """list_containers returns every container, running or not, carrying all of labels ("" value: any)."""
        params = {"all": "1", "filters": _filters(labels)}
        answer = (await self._send("GET", "/containers/json", want=(200,), params=params)).json()
        return [ContainerSummary.model_validate(item) for item in answer or ()]

    async def inspect_container(self, name: str) -> ContainerInspect:
        """inspect_container returns the container; raises NoSuchObject."""
        return ContainerInspect.model_validate(
            (await self._send("GET", f"/containers/{name}/json", want=(200,))).json()
        )

    async def create_container(self, name: str, spec: ContainerCreate) -> str:
        """create_container creates (does not start) the container `name`; returns its ID; ObjectConflict if taken."""
        answer = await self._send("POST", "/containers/create", want=(201,), params={"name": name}, body=spec)
        return CreatedId.model_validate(answer.json()).id

    async def start_container(self, name: str) -> None:
        """start_container starts it (204; 304 when it already runs)."""
        await self._send("POST", f"/containers/{name}/start", want=(204, 304))

    async def stop_container(self, name: str, *, grace: int = STOP_TIMEOUT) -> None:
        """stop_container sends SIGTERM, then SIGKILL after grace seconds (204; 304 when already stopped)."""
        with map_httpx_errors(self.socket):
            response = await self._http.post(
                f"/containers/{name}/stop", params={"t": str(grace)}, timeout=DEFAULT_TIMEOUT + grace
            )
        if response.status_code not in (204, 304):
            raise error_for(response.status_code, response.content)

    async def remove_container(self, name: str) -> None:
        """remove_container force-removes it (its anonymous volumes too); a missing one is not an error."""
        try:
            await self._send("DELETE", f"/containers/{name}", want=(204,), params={"force": "1", "v": "1"})
        except NoSuchObject:
            return

    async def logs(
        self, name: str, *, follow: bool = False, tail: int | None = None, timestamps: bool = False
    ) -> AsyncIterator[bytes]:
        """logs yields the container's stdout and stderr, de-multiplexed, as the runtime sends them.

        It inspects first (NoSuchObject when missing) to learn whether the stream is multiplexed (non-TTY).
        """
        tty = (await self.inspect_container(name)).config.tty
        params = {
            "stdout": "1",
            "stderr": "1",
            "follow": "1" if follow else "0",
            "timestamps": "1" if timestamps else "0",
            "tail": "all" if tail is None else str(tail),
        }
        with map_httpx_errors(self.socket):
            async with self._http.stream(
                "GET", f"/containers/{name}/logs", params=params, timeout=httpx.Timeout(DEFAULT_TIMEOUT, read=None)
            ) as response:
                if response.status_code != 200:
                    raise error_for(response.status_code, await response.aread())
                chunks = response.aiter_bytes()
                if tty:
                    async for chunk in chunks:
                        yield chunk
                else:
                    async for _stream, payload in demux(chunks):
                        yield payload

    # --- images -----------------------------------------------------------------------------------

    async def has_image(self, image: str) -> bool:
        """has_image is whether the image is in the runtime's local storage."""
        try:
            await self._send("GET", f"/images/{image}/json", want=(200,))
        except NoSuchObject:
            return False
        return True

    async def pull_image(self, image: str) -> None:
        """pull_image pulls image (tag "latest" when it names none); raises ImagePullFailed naming it.

        The API answers 200 at once and reports failure inside the JSON progress stream, so every line is read.
        """
        ref, tag = split_image(image)
        params = {"fromImage": ref, "tag": tag}
        with map_httpx_errors(self.socket):
            async with self._http.stream(
                "POST", "/images/create", params=params, timeout=httpx.Timeout(DEFAULT_TIMEOUT, read=300.0)
            ) as response:
                if response.status_code != 200:
                    raise ImagePullFailed(image, message_of(await response.aread()))
                async for line in response.aiter_lines():
                    error = _pull_error(line)
                    if error:
                        raise ImagePullFailed(image, error)

    # --- networks and volumes ---------------------------------------------------------------------

    async def inspect_network(self, name: str) -> Network:
        """inspect_network returns the network; raises NoSuchObject."""
        return Network.model_validate((await self._send("GET", f"/networks/{name}", want=(200,))).json())

    async def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        """create_network creates a bridge network with DNS for its containers' aliases; ObjectConflict if taken."""
        body = {"Name": name, "Driver": "bridge", "CheckDuplicate": True, "Labels": dict(labels)}
        await self._send("POST", "/networks/create", want=(200, 201), body=body)

    async def remove_network(self, name: str) -> None:
        """remove_network removes it; a missing one is not an error."""
        try:
            await self._send("DELETE", f"/networks/{name}", want=(200, 204))
        except NoSuchObject:
            return

    async def list_volumes(self, labels: Mapping[str, str]) -> list[str]:
        """list_volumes returns the names of the volumes carrying all of labels."""
        answer = await self._send("GET", "/volumes", want=(200,), params={"filters": _filters(labels)})
        return [volume.name for volume in VolumeList.model_validate(answer.json()).volumes or ()]

    async def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        """create_volume creates a named local volume (an existing one of that name is returned as is)."""
        await self._send("POST", "/volumes/create", want=(200, 201), body={"Name": name, "Labels": dict(labels)})

    async def remove_volume(self, name: str) -> None:
        """remove_volume removes it; a missing one is not an error."""
        try:
            await self._send("DELETE", f"/volumes/{name}", want=(204,), params={"force": "1"})
        except NoSuchObject:
            return


def split_image(image: str) -> tuple[str, str]:
    """split_image splits `host:port/name:tag` into (`host:port/name`, `tag`); the tag defaults to latest.

    A digest reference (`name@sha256:...`) is passed whole with an empty tag.
    """
    if "@" in image:
        return image, ""
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


def _pull_error(line: str) -> str:
    if not line.strip():
        return ""
    try:
        doc = json.loads(line)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    detail = doc.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"])
    error = doc.get("error")
    return str(error) if error else ""


def unreachable_without_socket() -> RuntimeUnreachable:
    """unreachable_without_socket is the error every Project gets on a Node with no runtime configured."""
    return RuntimeUnreachable("", "no socket configured")
