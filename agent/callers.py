"""Who may read the agent's /metrics: the tailnet machines whose tag or login METRICS_CALLERS names, asked of the
local tailscaled (LocalAPI WhoIs of the peer address); /healthz stays open to any caller."""

from __future__ import annotations

import time

from mesh import LocalClient, MeshError, PeerNotFound


class MetricsCallers:
    """MetricsCallers answers, per peer address, why it may not read /metrics (None: it may). Answers are cached
    `ttl` seconds per address, so a scrape every 15 s costs one WhoIs now and then."""

    def __init__(self, *, local: LocalClient, allowed: tuple[str, ...], ttl: float = 30.0) -> None:
        self._local, self._allowed, self._ttl = local, frozenset(allowed), ttl
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def refusal(self, address: str) -> str | None:
        """refusal is None when the machine at `address` may read /metrics, else a one-line reason."""
        cached = self._cache.get(address)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        try:
            answer = await self._local.whois(address)
        except PeerNotFound:
            return f"{address} is not a machine of this tailnet"
        except MeshError as exc:
            return f"cannot ask the tailnet who {address} is: {exc}"
        login = answer.user_profile.login_name
        names = {*answer.node.tags, login, login.split("@", 1)[0]}
        reason = None if names & self._allowed else f"{address} (user {login or '-'}) may not read /metrics"
        if len(self._cache) > 1_000:
            self._cache.clear()
        self._cache[address] = (time.monotonic(), reason)
        return reason
