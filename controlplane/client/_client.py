"""The Client: one method per API call, each "path + expected status + decode" over the one private `_send`."""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator, Collection, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx

from ._exceptions import InvalidResponse, map_transport_errors, raise_for_problem
from ._transport import default_transport
from ._wire import KINDS, Resource, wire_errors
from ._witness import witness_names

if TYPE_CHECKING:
    from pydantic import BaseModel

    from controlplane import api as _api
else:

    class _LazyApi:
        """_LazyApi stands for `controlplane.api` and imports it on first use: pydantic and every model cost
        about 100 ms, which `caractrl get` (it reads the wire JSON) never needs to pay."""

        def __getattr__(self, name: str) -> Any:
            import controlplane.api

            return getattr(controlplane.api, name)

    _api = _LazyApi()


#: Seconds to wait for connect, read and write; the server answers in milliseconds, so 10 s means "it is not there".
DEFAULT_TIMEOUT: Final = 10.0

_M = TypeVar("_M", bound="BaseModel")


def _decode(model: type[_M], response: httpx.Response) -> _M:
    what = model.__name__
    try:
        return _api.decode(model, response.json())
    except ValueError as exc:  # InvalidObject is a ValueError; so is a body that is not JSON
        raise InvalidResponse(what, exc.errors if isinstance(exc, _api.InvalidObject) else [str(exc)]) from None


_DRY_RUN: Final = {"dryRun": "All"}


def _name(name: str) -> str:
    return quote(name, safe="")


class Client:
    """Client talks to one control plane at base_url, e.g. `http://cara-server:8080`.

    Use it as `async with Client(url) as client:`; tests pass `transport=httpx.MockTransport(...)`
    or an `httpx.ASGITransport` over the app. Every method raises ServerUnreachable when the server
    cannot be reached and an ApiError subclass when it answers with a problem document.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        transport = transport or default_transport(self.base_url)
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """aclose closes the connection pool."""
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        want_status: int | Collection[int],
        json: Any = None,
        params: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """_send makes one request and returns the response if its status is wanted; raises otherwise."""
        wanted = {want_status} if isinstance(want_status, int) else set(want_status)
        with map_transport_errors(self.base_url):
            response = await self._http.request(method, path, json=json, params=params, headers=headers)
        if response.status_code not in wanted:
            raise_for_problem(response)
        return response

    # --- health -------------------------------------------------------------------------------

    async def healthz(self) -> str:
        """healthz returns the body of GET /api/healthz ("OK" when the server is up)."""
        return (await self._send("GET", "/api/healthz", want_status=200)).text.strip()

    async def version(self) -> dict[str, Any]:
        """version returns GET /api/version ({"version": ...}); raises NotFound from a server older than it."""
        try:
            body = (await self._send("GET", "/api/version", want_status=200)).json()
        except ValueError as exc:
            raise InvalidResponse("version", [str(exc)]) from None
        if not isinstance(body, dict):
            raise InvalidResponse("version", ["must be an object"])
        return body

    async def watch(
        self, resource: Resource, *, label_selector: str | None = None, timeout_s: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """watch yields the events of GET /api/v1/{resource}?watch=true, one dict per line: `{"type": ADDED |
        MODIFIED | DELETED | BOOKMARK, "object": ...}`, until the server ends the stream (after timeout_s)."""
        params = {"labelSelector": label_selector} if label_selector else {}
        async for event in self._watch(f"/api/v1/{resource}", params, timeout_s):
            yield event

    async def watch_events(
        self,
        *,
        kind: str | None = None,
        name: str | None = None,
        limit: int | None = None,
        timeout_s: float | None = None,
    ) -> AsyncIterator[tuple[str, _api.Event | None]]:
        """watch_events yields GET /api/v1/events?watch=true as (type, Event): the newest `limit` kept Events
        (about kind/name when given) ADDED, then ("BOOKMARK", None), then each new Event ADDED as it is stored,
        until the server ends the stream (after timeout_s)."""
        params = {key: str(value) for key, value in (("kind", kind), ("name", name), ("limit", limit)) if value}
        async for event in self._watch("/api/v1/events", params, timeout_s):
            if event["type"] == "BOOKMARK":
                yield "BOOKMARK", None
                continue
            try:
                decoded = _api.decode(_api.Event, event.get("object"))
            except ValueError as exc:  # InvalidObject is a ValueError
                raise InvalidResponse(
                    "Event", exc.errors if isinstance(exc, _api.InvalidObject) else [str(exc)]
                ) from None
            yield event["type"], decoded

    async def _watch(self, path: str, params: dict[str, str], timeout_s: float | None) -> AsyncIterator[dict[str, Any]]:
        """_watch yields the lines of path?watch=true as dicts, each with a type."""
        params = {"watch": "true", **params}
        if timeout_s is not None:
            params["timeoutSeconds"] = str(max(1, int(timeout_s)))
        with map_transport_errors(self.base_url):
            async with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(DEFAULT_TIMEOUT, read=None)
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise_for_problem(response)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = jsonlib.loads(line)
                    except ValueError as exc:
                        raise InvalidResponse("watch event", [str(exc)]) from None
                    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                        raise InvalidResponse("watch event", ["must be an object with a type"])
                    yield event

    # --- nodes --------------------------------------------------------------------------------

    async def create_node(self, node: _api.Node, *, dry_run: bool = False) -> _api.Node:
        """create_node POSTs node and returns it as stored; raises Conflict when the name is taken.

        dry_run asks the server to validate and answer without storing (`dryRun=All`)."""
        params = _DRY_RUN if dry_run else None
        response = await self._send("POST", "/api/v1/nodes", want_status=201, json=node.to_wire(), params=params)
        return _decode(_api.Node, response)

    async def replace_node(self, node: _api.Node, *, dry_run: bool = False) -> _api.Node:
        """replace_node PUTs node's spec, labels and annotations (status is kept); raises NotFound."""
        path = f"/api/v1/nodes/{_name(node.name)}"
        params = _DRY_RUN if dry_run else None
        return _decode(_api.Node, await self._send("PUT", path, want_status=200, json=node.to_wire(), params=params))

    async def get_node(self, name: str) -> _api.Node:
        """get_node returns the Node; raises NotFound."""
        return _decode(_api.Node, await self._send("GET", f"/api/v1/nodes/{_name(name)}", want_status=200))

    async def list_nodes(self, *, label_selector: str | None = None) -> _api.NodeList:
        """list_nodes returns the Nodes, asking the server for those matching `key=value[,key=value]`."""
        params = {"labelSelector": label_selector} if label_selector else None
        return _decode(_api.NodeList, await self._send("GET", "/api/v1/nodes", want_status=200, params=params))

    async def peer_assignment(self, name: str, *, etag: str | None = None) -> tuple[_api.PeerAssignment | None, str]:
        """peer_assignment returns the fellows Node name's agent probes and witnesses, and the answer's ETag;
        with the ETag of the last answer it returns (None, etag) while nothing changed (304). Raises NotFound."""
        headers = {"if-none-match": etag} if etag else None
        path = f"/api/v1/nodes/{_name(name)}/peers"
        response = await self._send("GET", path, want_status=(200, 304), headers=headers)
        etag = response.headers.get("etag", "")
        if response.status_code == 304:
            return None, etag
        return _decode(_api.PeerAssignment, response), etag

    async def history(self, name: str) -> _api.NodeHistory:
        """history returns the Node's last throughput samples and path changes, oldest first; raises NotFound."""
        return _decode(
            _api.NodeHistory, await self._send("GET", f"/api/v1/nodes/{_name(name)}/history", want_status=200)
        )

    async def availability(self, name: str) -> _api.NodeAvailability:
        """availability returns the share of the last 24 h / 7 d the Node was Ready and each path Direct."""
        path = f"/api/v1/nodes/{_name(name)}/availability"
        return _decode(_api.NodeAvailability, await self._send("GET", path, want_status=200))

    async def list_events(
        self, *, kind: str | None = None, name: str | None = None, limit: int | None = None
    ) -> _api.EventList:
        """list_events returns the newest kept Events (about kind/name when given), oldest first."""
        params = {key: str(value) for key, value in (("kind", kind), ("name", name), ("limit", limit)) if value}
        return _decode(_api.EventList, await self._send("GET", "/api/v1/events", want_status=200, params=params))

    async def delete_node(self, name: str) -> None:
        """delete_node deletes the Node; raises NotFound, or Conflict while projects are assigned to it (there is
        no force: drain the Node and wait for its Projects to leave)."""
        await self._send("DELETE", f"/api/v1/nodes/{_name(name)}", want_status=204)

    async def heartbeat(self, name: str, body: _api.Heartbeat) -> list[str]:
        """heartbeat renews the Node's lease and replaces the status fields body carries; raises NotFound.

        Returns the silent Nodes the control plane asks this agent to look at (the `Cara-Witness` response header,
        comma-separated names), [] when it asks for none."""
        path = f"/api/v1/nodes/{_name(name)}/heartbeat"
        response = await self._send("POST", path, want_status=204, json=body.to_wire())
        return witness_names(response.headers.get(_api.WITNESS_HEADER, ""))

    async def cordon(self, name: str) -> _api.Node:
        """cordon marks the Node unschedulable (one server-side action, POST .../cordon) and returns it."""
        return _decode(_api.Node, await self._send("POST", f"/api/v1/nodes/{_name(name)}/cordon", want_status=200))

    async def uncordon(self, name: str) -> _api.Node:
        """uncordon makes the Node schedulable again and ends Draining; returns the Node."""
        return _decode(_api.Node, await self._send("POST", f"/api/v1/nodes/{_name(name)}/uncordon", want_status=200))

    async def drain(self, name: str) -> _api.Node:
        """drain cordons the Node, sets it Draining and sends its projects back to Pending; returns the Node."""
        return _decode(_api.Node, await self._send("POST", f"/api/v1/nodes/{_name(name)}/drain", want_status=200))

    # --- projects -----------------------------------------------------------------------------

    async def create_project(self, project: _api.Project, *, dry_run: bool = False) -> _api.Project:
        """create_project POSTs project and returns it as stored; raises Conflict when the name is taken."""
        params = _DRY_RUN if dry_run else None
        response = await self._send("POST", "/api/v1/projects", want_status=201, json=project.to_wire(), params=params)
        return _decode(_api.Project, response)

    async def replace_project(self, project: _api.Project, *, dry_run: bool = False) -> _api.Project:
        """replace_project PUTs project's spec, labels and annotations; a placed Project takes label and annotation
        changes only (Conflict for a spec change unless Pending or Failed)."""
        path = f"/api/v1/projects/{_name(project.name)}"
        params = _DRY_RUN if dry_run else None
        return _decode(
            _api.Project, await self._send("PUT", path, want_status=200, json=project.to_wire(), params=params)
        )

    async def get_project(self, name: str) -> _api.Project:
        """get_project returns the Project; raises NotFound."""
        return _decode(_api.Project, await self._send("GET", f"/api/v1/projects/{_name(name)}", want_status=200))

    async def list_projects(
        self,
        *,
        phases: Collection[_api.ProjectPhase] = (),
        node_ref: str | None = None,
        label_selector: str | None = None,
    ) -> _api.ProjectList:
        """list_projects returns the Projects in any of phases (all when empty), on node_ref when given."""
        params: dict[str, str | list[str]] = {}
        if phases:
            params["phase"] = [str(phase) for phase in phases]
        if node_ref:
            params["nodeRef"] = node_ref
        if label_selector:
            params["labelSelector"] = label_selector
        return _decode(_api.ProjectList, await self._send("GET", "/api/v1/projects", want_status=200, params=params))

    async def delete_project(self, name: str, *, force: bool = False) -> bool:
        """delete_project deletes the Project; returns True if it is gone now, False if it went Terminating."""
        params = {"force": "true"} if force else None
        path = f"/api/v1/projects/{_name(name)}"
        return (await self._send("DELETE", path, want_status=(202, 204), params=params)).status_code == 204

    async def patch_project_status(self, name: str, patch: _api.ProjectStatusPatch) -> None:
        """patch_project_status sets the Project's phase (with reason and message); raises ValidationProblem."""
        path = f"/api/v1/projects/{_name(name)}/status"
        await self._send("PATCH", path, want_status=204, json=patch.to_wire())

    # --- undecoded reads ----------------------------------------------------------------------

    async def get_raw(
        self, resource: Resource, name: str | None = None, *, label_selector: str | None = None
    ) -> dict[str, Any]:
        """get_raw returns GET /api/v1/{resource}[/{name}] exactly as the server sent it, without building models.

        It is for printing: `caractrl get` shows 1,000 Nodes in a few ms this way, where decoding them takes about
        200 ms. Only the shape is checked (an object of the right kind with `metadata.name`, or a list of such);
        raises InvalidResponse otherwise, NotFound when name does not exist.
        """
        kind, list_kind = KINDS[resource]
        path = f"/api/v1/{resource}/{_name(name)}" if name else f"/api/v1/{resource}"
        params = {"labelSelector": label_selector} if label_selector and not name else None
        response = await self._send("GET", path, want_status=200, params=params)
        expected = kind if name else list_kind
        try:
            body = response.json()
        except ValueError as exc:
            raise InvalidResponse(expected, [str(exc)]) from None
        errors = wire_errors(body, expected)
        if errors:
            raise InvalidResponse(expected, errors)
        return dict(body)
