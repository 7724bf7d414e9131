"""LocalClient: the async client of tailscaled's LocalAPI, one small method per endpoint."""

from __future__ import annotations

import os
from enum import StrEnum
from types import TracebackType
from typing import Any, Final

import httpx

from ._exceptions import LocalAPIError, PeerNotFound, error_from_response, map_httpx_errors
from ._models import IPAddress, PingResult, Status, WhoIsResponse
from ._transports import socket_path, uds_transport

#: The only Host the daemon accepts (apitype.LocalAPIHost); "localhost" gets 403 "invalid localapi request".
BASE_URL: Final = "http://local-tailscaled.sock"

#: tailcfg.CurrentCapabilityVersion of the tailscale release we test against (v1.98.x); sent for parity with Go.
CAPABILITY_VERSION: Final = 138

#: Default timeout for ordinary requests, in seconds.
DEFAULT_TIMEOUT: Final = 5.0

#: Default ping timeout: magicsock's pingTimeoutDuration (5 s), after which a pong will not come.
PING_TIMEOUT: Final = 5.0


class PingType(StrEnum):
    """PingType is the kind of ping (tailcfg.PingType)."""

    # DISCO: magicsock's path-discovery ping; the pong names the path (Endpoint, PeerRelay or DERP region).
    DISCO = "disco"
    # TSMP: a ping inside WireGuard, answered by the peer's tailscaled; proves the data path, names no path.
    TSMP = "TSMP"
    # ICMP: an ICMP echo over the tunnel, answered by the peer's kernel.
    ICMP = "ICMP"
    # PEERAPI: an HTTP hit on the peer's PeerAPI.
    PEERAPI = "peerapi"


class LocalClient:
    """LocalClient talks to one tailscaled over its LocalAPI.

    The socket is `socket`, else $TS_SOCKET, else tailscaled's default path. Pass `transport` to replace the
    unix-socket transport (tests pass httpx.MockTransport). Use it as an async context manager, or call aclose().
    """

    def __init__(self, socket: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.socket = socket_path(socket, os.environ)
        self._http = httpx.AsyncClient(
            transport=transport if transport is not None else uds_transport(self.socket),
            base_url=BASE_URL,
            headers={"Tailscale-Cap": str(CAPABILITY_VERSION)},
            timeout=DEFAULT_TIMEOUT,
        )

    async def __aenter__(self) -> LocalClient:
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
        want_status: int,
        params: dict[str, str] | None = None,
        json: Any = None,
        request_timeout: float | None = None,
    ) -> bytes:
        """_send is the one request path: it maps transport failures and every unexpected status to mesh errors."""
        extra: dict[str, Any] = {} if request_timeout is None else {"timeout": request_timeout}
        with map_httpx_errors(self.socket):
            response = await self._http.request(method, f"/localapi/v0/{path}", params=params, json=json, **extra)
        if response.status_code != want_status:
            raise error_from_response(response.status_code, response.content)
        return response.content

    async def status(self) -> Status:
        """status returns the daemon's full status, peers included (`tailscale status --json`)."""
        return Status.model_validate_json(await self._send("GET", "status", want_status=200))

    async def status_without_peers(self) -> Status:
        """status_without_peers returns the status with an empty peer map; cheap on big tailnets."""
        body = await self._send("GET", "status", want_status=200, params={"peers": "false"})
        return Status.model_validate_json(body)

    async def whois(self, addr: str | IPAddress) -> WhoIsResponse:
        """whois returns the node and user owning a tailnet IP or IP:port; raises PeerNotFound when none does."""
        return await self._whois({"addr": str(addr)})

    async def _whois(self, params: dict[str, str]) -> WhoIsResponse:
        try:
            body = await self._send("GET", "whois", want_status=200, params=params)
        except LocalAPIError as exc:
            if exc.status == 404:
                raise PeerNotFound(exc.status, exc.message) from exc
            raise
        return WhoIsResponse.model_validate_json(body)

    async def ping(
        self,
        ip: str | IPAddress,
        kind: PingType = PingType.DISCO,
        # The daemon holds a ping open until the client hangs up, so the bound has to be ours.
        timeout: float = PING_TIMEOUT,  # noqa: ASYNC109
    ) -> PingResult:
        """ping sends one ping of `kind` to a tailnet IP and returns the result; raises RequestTimeout without pong.

        The daemon waits for the pong as long as the request lives, so `timeout` (seconds) bounds it.
        """
        params = {"ip": str(ip), "type": str(kind)}
        body = await self._send("POST", "ping", want_status=200, params=params, request_timeout=timeout)
        return PingResult.model_validate_json(body)
