"""Env, click's context `obj`: what a caractrl run reads from its process (or a test gives it).

It is the one thing the root needs from the verbs' side, so it imports no client: `caractrl -h` loads neither
httpx nor asyncio. The client's type is named for the type checker only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.client import Client

#: Builds the client for a base URL; tests replace it with one over an in-process transport.
ClientFactory = Callable[[str], "Client"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Env:
    """Env is click's context `obj`: built once in `main()` from the process, or by a test."""

    # Environ: the process environment (CARA_SERVER, XDG_CONFIG_HOME, HOME), read only through here.
    environ: Mapping[str, str]
    # Client_factory: None means the real `Client` (context.run builds it).
    client_factory: ClientFactory | None = None
    now: Callable[[], datetime] = field(default=_utcnow)
    # Server: the --server option; None means "look it up" (resolve_server).
    server: str | None = None
    # Socket: the --socket option (tailscaled's LocalAPI), used to find the server by MagicDNS.
    socket: str | None = None
    # Verbose: -v; say which server is used and log every request.
    verbose: bool = False
