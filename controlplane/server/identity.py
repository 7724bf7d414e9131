"""Who is calling: the Caller, the Identity seam of the request pipeline, and role checks.

The server asks an Identity for every request's caller. In development mode every caller is an
administrator (DevIdentity); the tailnet identity (LocalAPI WhoIs) plugs in here as another Identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fastapi import Request


class Role(StrEnum):
    """Role is what a caller may do: admin writes anything, viewer reads, node writes only its own Node."""

    ADMIN = "admin"
    VIEWER = "viewer"
    NODE = "node"


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


def require_writer(caller: Caller) -> None:
    """require_writer raises Forbidden unless the caller may change specs (admin)."""
    if caller.role is not Role.ADMIN:
        raise Forbidden(f"{caller.role} {caller.name!r} may not change specs; an admin role is needed")


def require_reader(caller: Caller) -> None:
    """require_reader raises Forbidden unless the caller may read the fleet (admin, viewer, node)."""
    if caller.role not in (Role.ADMIN, Role.VIEWER, Role.NODE):
        raise Forbidden(f"{caller.name!r} may not read")
