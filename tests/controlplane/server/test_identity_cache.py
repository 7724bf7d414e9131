"""TailnetIdentity's WhoIs cache, driven by the clock its constructor takes: one WhoIs per address per ttl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from fastapi import Request

from controlplane.server.identity import Role, TailnetIdentity
from controlplane.server.roles import RoleRule, RolesConfig
from mesh import LocalClient, WhoIsResponse

#: The captured WhoIs answer for the operator's machine (login name "ops").
OPERATOR = WhoIsResponse.model_validate(
    json.loads((Path(__file__).parents[2] / "mesh" / "fixtures" / "edge1-whois-operator.json").read_text())
)


class _Local:
    """_Local stands for the LocalAPI client: it answers every WhoIs with OPERATOR and counts the questions."""

    def __init__(self) -> None:
        self.asked = 0

    async def whois(self, address: str) -> WhoIsResponse:
        self.asked += 1
        return OPERATOR


def _request(host: str) -> Request:
    return Request({"type": "http", "client": (host, 40000), "headers": [], "method": "GET", "path": "/"})


async def test_answers_are_cached_for_ttl_seconds_of_the_injected_clock() -> None:
    now = [1000.0]
    local = _Local()
    identity = TailnetIdentity(
        local=cast(LocalClient, local),
        roles=RolesConfig(admin=RoleRule(users=["ops"])),
        ttl=30.0,
        clock=lambda: now[0],
    )
    caller = await identity.identify(_request("100.64.0.2"))
    assert (caller.role, local.asked) == (Role.ADMIN, 1)
    now[0] += 29.9
    await identity.identify(_request("100.64.0.2"))
    assert local.asked == 1, "within the ttl the cached answer is used"
    await identity.identify(_request("100.64.0.3"))
    assert local.asked == 2, "another address is asked about"
    now[0] += 0.2
    await identity.identify(_request("100.64.0.2"))
    assert local.asked == 3, "past the ttl the tailnet is asked again"
