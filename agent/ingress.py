"""The Projects' ingress: an HTTP proxy on the agent's tailnet address (default port 8081) routing by Host header.

Host rules are the Go agent's: the port is stripped; a host with a dot is used as written, a short one `h` means
`h.<project>.local`; an ingress without a host uses its name as the short host. Each route goes to
`http://<containerIP>:<target.port>` on the Project's network, keeps `Host`, and adds `X-Forwarded-For`,
`X-Forwarded-Host` and `X-Forwarded-Proto`. An unknown host or an unreachable backend gets a 502 HTML page.

The proxy forwards the request head (with `Connection: close`, unless it is an upgrade) and then copies bytes both
ways until either side closes, so bodies, chunked answers and WebSocket upgrades pass through unparsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from controlplane.api import Project

from .listener import Listener
from .projects.names import container_name, network_name
from .runtime import RuntimeClient, RuntimeFailure

log = logging.getLogger("cara.agent.ingress")

MAX_HEAD: Final = 16 * 1024
READ_TIMEOUT: Final = 10.0
DIAL_TIMEOUT: Final = 5.0
COPY_SIZE: Final = 64 * 1024
#: Headers the proxy sets itself (dropped from the client's request first).
_HOP: Final = frozenset({"connection", "keep-alive", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"})


@dataclass(frozen=True, slots=True)
class Route:
    """Route is where one host goes: a Project's service and port."""

    project: str
    service: str
    port: int


def full_host(host: str, project: str) -> str:
    """full_host applies the Go rule: a host with a dot is as written, a short `h` is `h.<project>.local`."""
    host = host.strip().lower()
    return host if "." in host else f"{host}.{project}.local"


def build_routes(projects: Iterable[Project]) -> dict[str, Route]:
    """build_routes maps every ingress host of projects to its Route (the first declaration of a host wins)."""
    routes: dict[str, Route] = {}
    for project in projects:
        for ingress in project.spec.ingress or ():
            host = full_host(ingress.host or ingress.name, project.name)
            routes.setdefault(host, Route(project.name, ingress.target.service, ingress.target.port))
    return routes


def request_host(headers: Mapping[str, str]) -> str:
    """request_host is the Host header without its port, lowercased."""
    host = headers.get("host", "").strip().lower()
    if host.startswith("["):  # [v6]:port
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def bad_gateway(why: str) -> bytes:
    """bad_gateway is the complete 502 answer with a small HTML page saying why."""
    # Imported here: `html` loads its entity table (about 0.5 MiB resident) and a 502 is rare (docs/agent.md,
    # Footprint); tests/agent/test_footprint.py keeps it out of the agent's start.
    import html

    body = (
        "<!doctype html><html><head><title>502 Bad Gateway</title></head><body>"
        f"<h1>502 Bad Gateway</h1><p>{html.escape(why)}</p><hr><p>cara-agent ingress</p></body></html>\n"
    ).encode()
    return (
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )


def rewrite_head(head: bytes, client_ip: str, host: str) -> bytes:
    """rewrite_head keeps the request line and headers (Host included) and sets the X-Forwarded-* headers."""
    lines = head.decode("latin-1").split("\r\n")
    kept = [lines[0]]
    upgrade = False
    for line in lines[1:]:
        if not line:
            continue
        name = line.split(":", 1)[0].strip().lower()
        if name == "upgrade":
            upgrade = True
        if name not in _HOP:
            kept.append(line)
    kept += [
        f"X-Forwarded-For: {client_ip}",
        f"X-Forwarded-Host: {host}",
        "X-Forwarded-Proto: http",
        "Connection: Upgrade" if upgrade else "Connection: close",
    ]
    return ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1")


class IngressProxy(Listener):
    """IngressProxy serves the ingress of the Projects `projects()` returns (the reconciler's Running ones)."""

    what = "ingress proxy"
    limit = MAX_HEAD

    def __init__(
        self, *, projects: Callable[[], Iterable[Project]], runtime: Callable[[], RuntimeClient | None]
    ) -> None:
        self._projects = projects
        self._runtime = runtime

    async def _backend(self, route: Route) -> tuple[str | None, str]:
        runtime = self._runtime()
        if runtime is None:
            return None, "no container runtime on this node"
        name = container_name(route.project, route.service)
        try:
            inspected = await runtime.inspect_container(name)
        except RuntimeFailure as exc:
            return None, f"service {route.service} of project {route.project} has no container ({exc})"
        address = inspected.ip_on(network_name(route.project)) if inspected.state.running else None
        if address is None:
            return None, f"service {route.service} of project {route.project} is not running"
        return address, ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            await self._proxy(head, reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _proxy(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        host = request_host(headers)
        route = build_routes(self._projects()).get(host)
        if route is None:
            writer.write(bad_gateway(f"No ingress on this node serves host {host or '(none)'}."))
            await writer.drain()
            return
        address, why = await self._backend(route)
        if address is None:
            writer.write(bad_gateway(why))
            await writer.drain()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(address, route.port), DIAL_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            where = f"service {route.service} of project {route.project} on port {route.port}"
            writer.write(bad_gateway(f"Cannot reach {where}: {exc or 'timed out'}."))
            await writer.drain()
            return
        peer = writer.get_extra_info("peername")
        up_writer.write(rewrite_head(head, str(peer[0]) if peer else "", headers.get("host", host)))
        await _splice(reader, writer, up_reader, up_writer)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await source.read(COPY_SIZE):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """_splice copies both ways; it ends when the backend's answer is done (the client's side may stay half-open)."""
    upstream = asyncio.create_task(_copy(reader, up_writer))
    try:
        await _copy(up_reader, writer)
    finally:
        upstream.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await upstream
        up_writer.close()
        with contextlib.suppress(Exception):
            await up_writer.wait_closed()
