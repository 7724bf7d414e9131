"""Who may use the agent API: the caller's tailnet identity (tailscaled WhoIs) against the agent's admin and
viewer lists. Admins may read logs and port-forward; viewers may read logs only (a forward reaches inside a
container, which is more than viewing); anyone else is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

from mesh import MeshError, WhoIsResponse


class Access(StrEnum):
    """Access is what a caller may do on the agent API."""

    ADMIN = "admin"
    VIEWER = "viewer"


def matches(rules: tuple[str, ...], login_name: str, tags: list[str]) -> bool:
    """matches is whether a caller falls under rules: a login name (`ops` or `ops@example.com`) or a tag."""
    short = login_name.split("@", 1)[0]
    return any(rule in (login_name, short) or rule in tags for rule in rules if rule)


class Authorizer:
    """Authorizer answers what the caller at an address may do, asking tailscaled who owns the address."""

    def __init__(
        self,
        *,
        whois: Callable[[str], Awaitable[WhoIsResponse]],
        admins: tuple[str, ...],
        viewers: tuple[str, ...],
    ) -> None:
        self._whois = whois
        self._admins = admins
        self._viewers = viewers

    async def access(self, peer: str) -> tuple[Access | None, str]:
        """access returns the caller's Access (None: refused) and who it is, for messages and logs."""
        try:
            who = await self._whois(peer)
        except MeshError as exc:
            return None, f"unknown caller {peer} ({exc})"
        login, tags = who.user_profile.login_name, who.node.tags
        name = ",".join(tags) if tags else login or peer
        if matches(self._admins, login, tags):
            return Access.ADMIN, name
        if matches(self._viewers, login, tags):
            return Access.VIEWER, name
        return None, name
