"""Finding tailscaled's LocalAPI socket and building the httpx transport that speaks HTTP over it."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

#: The environment variable that names the socket when no path is passed (as the tailscale CLI's tests use it).
SOCKET_ENV = "TS_SOCKET"

#: Where tailscaled listens on Linux when started without --socket (paths.DefaultTailscaledSocket).
DEFAULT_SOCKET = "/var/run/tailscale/tailscaled.sock"


def socket_path(socket: str | None, environ: Mapping[str, str]) -> str:
    """socket_path returns the socket to use: the argument, else $TS_SOCKET, else tailscaled's default path.

    Like tailscaled, the default is `tailscaled.sock` in the working directory on systems without /var/run.
    """
    if socket:
        return socket
    if environ.get(SOCKET_ENV):
        return environ[SOCKET_ENV]
    return DEFAULT_SOCKET if os.path.isdir("/var/run") else "tailscaled.sock"


def uds_transport(path: str) -> httpx.AsyncHTTPTransport:
    """uds_transport returns an HTTP/1.1 transport whose every connection goes to the unix socket at path."""
    return httpx.AsyncHTTPTransport(uds=path)
