"""NodeHistory (extension): the last throughput samples and path changes the control plane kept for one Node."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, StrictInt, StrictStr

from controlplane.defaults import SERVER_NAME

from ._meta import API_VERSION, Timestamp, WireModel
from ._node import LatencyMs, NetworkMode

#: The peer name a PathChange uses for the Node's own path to the control plane.
CONTROL_PLANE_PEER: Final = SERVER_NAME


class ThroughputSample(WireModel):
    """ThroughputSample is one throughput measurement as the Node reported it."""

    # Time: when the measurement finished (the reported lastTestTime).
    time: Timestamp
    # Download: control plane → node, e.g. "94.1Mbps"; unset when not measured.
    download: StrictStr | None = None
    # Upload: node → control plane, e.g. "41.0Mbps".
    upload: StrictStr | None = None
    # BytesUsed: bytes the measurement sent and received.
    bytes_used: StrictInt | None = Field(default=None, alias="bytesUsed", ge=0)


class PathChange(WireModel):
    """PathChange is a path of the Node changing mode: to a peer, or to the control plane (peer "cara-server")."""

    # Time: when the control plane received the beat reporting the change (its own clock).
    time: Timestamp
    # Peer: the peer's name, or CONTROL_PLANE_PEER for the path to the control plane.
    peer: StrictStr
    # From: the mode before; unset when it was unknown (first report, or the path was idle).
    from_mode: NetworkMode | None = Field(default=None, alias="from")
    # To: the mode now.
    to_mode: NetworkMode | None = Field(default=None, alias="to")
    # DerpRegion: the DERP region carrying the path now, when To is DERP.
    derp_region: StrictStr | None = Field(default=None, alias="derpRegion")
    # LatencyMs: the round trip reported with the change, in milliseconds.
    latency_ms: LatencyMs | None = Field(default=None, alias="latencyMs")


class NodeHistory(WireModel):
    """NodeHistory is the answer of GET /api/v1/nodes/{name}/history; both lists are oldest first, never null."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["NodeHistory"] = "NodeHistory"
    # Name: the Node's name.
    name: StrictStr
    # Throughput: the last samples, at most the server's history limit.
    throughput: list[ThroughputSample] = Field(default_factory=list)
    # Paths: the last path changes, at most the server's history limit.
    paths: list[PathChange] = Field(default_factory=list)
