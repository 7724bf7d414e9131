"""Who is calling: the Caller, the Identity seam of the request pipeline, and role checks.

The server asks an Identity for every request's caller. In development mode every caller is an
administrator (DevIdentity); the tailnet identity (LocalAPI WhoIs) plugs in here as another Identity.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from fastapi import Request

from mesh import LocalClient, MeshError, PeerNotFound, WhoIsResponse

if TYPE_CHECKING:
    from .roles import RolesConfig


class Role(StrEnum):
    """Role is what a caller may do: admin writes anything, viewer reads, node writes only its own Node, scraper
    reads /metrics only."""

    ADMIN = "admin"
    VIEWER = "viewer"
    NODE = "node"
    SCRAPER = "scraper"


@dataclass(frozen=True, slots=True)
class Caller:
    """Caller is the authenticated peer of one request."""

    # Name: a login name, tag or node name, for logs and messages.
    name: str
    role: Role
    # NodeID: the stable tailnet node ID of the calling machine; None in development mode.
    node_id: str | None = None


class Unauthorized(Exception):
    """Unauthorized is raised when the caller cannot be identified."""


class Forbidden(Exception):
    """Forbidden is raised when the caller is known but its role does not allow the action."""


class Identity(Protocol):
    """Identity tells who sent a request; raises Unauthorized when it cannot."""

    async def identify(self, request: Request) -> Caller: ...


class DevIdentity:
    """DevIdentity treats every caller as an administrator (development mode only)."""

    async def identify(self, request: Request) -> Caller:
        return Caller(name="dev", role=Role.ADMIN)


class TailnetIdentity:
    """TailnetIdentity asks the server's own tailscaled who owns the caller's address (LocalAPI WhoIs).

    Answers are cached for `ttl` seconds per address (measured by `clock`, monotonic seconds), so a burst of
    heartbeats costs one WhoIs; an address the tailnet no longer knows is dropped from the cache at once.
    """

    def __init__(
        self, *, local: LocalClient, roles: RolesConfig, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._local, self._roles, self._ttl, self._clock = local, roles, ttl, clock
        self._cache: dict[str, tuple[float, WhoIsResponse]] = {}

    async def _whois(self, address: str) -> WhoIsResponse:
        cached = self._cache.get(address)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        try:
            answer = await self._local.whois(address)
        except PeerNotFound:
            self._cache.pop(address, None)
            raise Unauthorized(f"{address} is not a machine of this tailnet") from None
        except MeshError as exc:
            raise Unauthorized(f"cannot ask the tailnet who {address} is: {exc}") from None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[address] = (self._clock(), answer)
        return answer

    async def identify(self, request: Request) -> Caller:
        if request.client is None:
            raise Unauthorized("the request has no peer address")
        answer = await self._whois(request.client.host)
        node, login = answer.node, answer.user_profile.login_name
        name = node.name.rstrip(".") or node.hostinfo.hostname or request.client.host
        role = self._roles.role_of(login, node.tags)
        if role is None:
            tags = ", ".join(node.tags) or "none"
            raise Forbidden(f"tailnet machine {name} (user {login or '-'}, tags {tags}) has no role on this server")
        return Caller(name=name, role=role, node_id=node.stable_id or str(node.id))


def require_writer(caller: Caller) -> None:
    """require_writer raises Forbidden unless the caller may change specs (admin)."""
    if caller.role is not Role.ADMIN:
        raise Forbidden(f"{caller.role} {caller.name!r} may not change specs; an admin role is needed")


def require_metrics_reader(caller: Caller) -> None:
    """require_metrics_reader raises Forbidden unless the caller may read /metrics (admin, viewer, scraper): the
    page names every Node, its paths and throughput, so a node's machine may not read the fleet's metrics."""
    if caller.role not in (Role.ADMIN, Role.VIEWER, Role.SCRAPER):
        raise Forbidden(
            f"{caller.role} {caller.name!r} may not read /metrics; an admin, viewer or scraper role is needed"
        )


def require_reader(caller: Caller) -> None:
    """require_reader raises Forbidden unless the caller may read the fleet (admin, viewer, node)."""
    if caller.role not in (Role.ADMIN, Role.VIEWER, Role.NODE):
        raise Forbidden(f"{caller.name!r} may not read")
