"""Peer discovery (extension): the bounded set of fellow agents the control plane asks one agent to probe."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, StrictStr

from ._meta import API_VERSION, WireModel


class ProbeTarget(WireModel):
    """ProbeTarget is one fellow agent to probe: its Node name, tailnet address and agent port, nothing more."""

    name: StrictStr
    ip: StrictStr
    # Agent port: where its agent listens (witnesses ask its /healthz there); unset when it reported none.
    agent_port: StrictInt | None = Field(default=None, alias="agentPort")


class PeerAssignment(WireModel):
    """PeerAssignment answers `GET /api/v1/nodes/{name}/peers`: the fellows this Node's agent probes (a stable,
    bounded share of the fleet) and the Nodes the control plane asks it to witness. It comes with an ETag, so an
    agent asking again with If-None-Match gets 304 while nothing changed."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["PeerAssignment"] = "PeerAssignment"
    peers: list[ProbeTarget] = Field(default_factory=list)
    witness: list[ProbeTarget] = Field(default_factory=list)
