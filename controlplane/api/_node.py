"""The Node kind: a machine on the tailnet, its declared spec and its observed status."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from ._conditions import Condition
from ._meta import API_VERSION, ObjectMeta, Timestamp, WireModel

#: Milliseconds of latency: finite (an infinite value could not be written back as JSON) and never negative.
LatencyMs = Annotated[float, Field(ge=0, allow_inf_nan=False)]

#: A resource list: name → quantity string ("cpu": "4000m", "memory": "7823Mi", "disk": "118Gi").
ResourceList = dict[StrictStr, StrictStr]


class NodeState(StrEnum):
    """NodeState is the summary the control plane computes; agents never set it."""

    READY = "Ready"
    NOT_READY = "NotReady"
    DRAINING = "Draining"


class NetworkMode(StrEnum):
    """NetworkMode is how a path crosses the tailnet: peer-to-peer, or relayed through DERP."""

    DIRECT = "Direct"
    DERP = "DERP"


class NodeSpec(WireModel):
    """NodeSpec is what the operator declares about a Node."""

    # Hostname: the machine's OS hostname; empty when unknown.
    hostname: StrictStr | None = None
    # Unschedulable: true when cordoned; no new Projects go to the Node.
    unschedulable: StrictBool = False


class NodeThroughput(WireModel):
    """NodeThroughput is the last throughput measurement between the Node and the control plane."""

    # Download: control plane → node, e.g. "94.1Mbps"; empty when never measured.
    download: StrictStr | None = None
    # Upload: node → control plane, e.g. "41.0Mbps".
    upload: StrictStr | None = None
    # LastTestTime: when the measurement finished; unset means never.
    last_test_time: Timestamp = Field(default=None, alias="lastTestTime")
    # BytesUsed (extension): bytes sent and received by the measurement.
    bytes_used: StrictInt | None = Field(default=None, alias="bytesUsed", ge=0)


class PeerPath(WireModel):
    """PeerPath (extension) is the path from this Node to one peer it talks to."""

    # Name: the peer's Node name (or tailnet host name when it is not a Node).
    name: StrictStr
    # IP: the peer's tailnet IPv4 address.
    ip: StrictStr | None = None
    # Mode: Direct or DERP; unset when unknown (idle path).
    mode: NetworkMode | None = None
    # DerpRegion: the DERP region code carrying the path when mode is DERP.
    derp_region: StrictStr | None = Field(default=None, alias="derpRegion")
    # LatencyMs: round-trip time of the last probe, in milliseconds.
    latency_ms: LatencyMs | None = Field(default=None, alias="latencyMs")
    # LastSeen: when the path was last probed successfully.
    last_seen: Timestamp = Field(default=None, alias="lastSeen")
    # RelayReason (extension): why the path is not Direct, a CamelCase code of a closed set (mesh.RelayReason:
    # PeerRelay, NoEndpoints, UDPBlocked, NoDirectPaths, TailscaledHealth, NoAnswer, NotProbed, Unknown);
    # unset when Direct or when the agent predates it.
    relay_reason: StrictStr | None = Field(default=None, alias="relayReason", max_length=64)
    # RelayMessage (extension): the reason as a sentence, from what the agent observed.
    relay_message: StrictStr | None = Field(default=None, alias="relayMessage", max_length=1024)
    # Since (extension): when the path took its current mode (Direct, DERP or unknown) as the agent saw it.
    since: Timestamp = None


class WitnessReport(WireModel):
    """WitnessReport (extension) says this Node's agent reached a fellow agent's HTTP endpoint over the tailnet."""

    # Name: the Node whose agent answered (its /healthz, not only its tailscaled).
    name: StrictStr
    # At: when the answer came (the witnessing agent's clock).
    at: Timestamp = None
    # Mode: Direct or DERP: how the path to it crossed the tailnet then; unset when the probe did not tell.
    mode: NetworkMode | None = None
    # LatencyMs: round trip of the HTTP check, in milliseconds.
    latency_ms: LatencyMs | None = Field(default=None, alias="latencyMs")


class NodeTailnet(WireModel):
    """NodeTailnet (extension) is how the tailnet itself sees the Node."""

    # NodeID: the stable tailnet node ID (e.g. "nXXXX" or headscale's numeric ID as text).
    node_id: StrictStr | None = Field(default=None, alias="nodeID")
    # User: the tailnet login name owning the node ("tagged-devices" for tagged nodes).
    user: StrictStr | None = None
    # Tags: ACL tags of the node, e.g. ["tag:cara-node"].
    tags: list[StrictStr] | None = None
    # Online: whether the coordination server says the node is connected.
    online: StrictBool | None = None


class NodeNetworkStatus(WireModel):
    """NodeNetworkStatus is the Node's place on the overlay network."""

    # IP: the tailnet IPv4 address, e.g. "100.64.0.5".
    ip: StrictStr | None = None
    # DNSName: the MagicDNS name without the trailing dot, e.g. "edge1.tailnet.test".
    dns_name: StrictStr | None = Field(default=None, alias="dnsName")
    # Mode: the path to the control plane, Direct or DERP.
    mode: NetworkMode | None = None
    # AgentPort: the TCP port of the agent's HTTP server.
    agent_port: StrictInt | None = Field(default=None, alias="agentPort", ge=0, le=65535)
    # Throughput: the last measurement against the control plane.
    throughput: NodeThroughput | None = None
    # DerpRegion (extension): home or in-use DERP region code.
    derp_region: StrictStr | None = Field(default=None, alias="derpRegion")
    # LatencyMs (extension): round trip to the control plane in milliseconds.
    latency_ms: LatencyMs | None = Field(default=None, alias="latencyMs")
    # RelayReason (extension): why the path to the control plane is not Direct, the peer paths' closed set of codes
    # (PeerPath.relay_reason); unset when Direct, unknown to the agent, or the agent predates it.
    relay_reason: StrictStr | None = Field(default=None, alias="relayReason", max_length=64)
    # RelayMessage (extension): that reason as a sentence, from what the agent observed.
    relay_message: StrictStr | None = Field(default=None, alias="relayMessage", max_length=1024)
    # Peers (extension): paths to the peers this Node talks to; bounded by the agent.
    peers: list[PeerPath] | None = Field(default=None, max_length=256)
    # Tailnet (extension): the tailnet's own view of the Node.
    tailnet: NodeTailnet | None = None
    # ObservedAt (extension): when the agent collected these facts; each later beat reconfirms them (design §4).
    observed_at: Timestamp = Field(default=None, alias="observedAt")
    # Witnessed (extension): fellow agents this Node's agent reached lately; bounded by the agent.
    witnessed: list[WitnessReport] | None = Field(default=None, max_length=64)


class NodeInfo(WireModel):
    """NodeInfo is static system information reported by the agent."""

    kernel_version: StrictStr | None = Field(default=None, alias="kernelVersion")
    os_image: StrictStr | None = Field(default=None, alias="osImage")
    agent_version: StrictStr | None = Field(default=None, alias="agentVersion")


class NodeBinding(WireModel):
    """NodeBinding (extension) ties a Node to the tailnet machine allowed to write it (design §5.4)."""

    # NodeID: the stable tailnet node ID bound at the agent's first contact.
    node_id: StrictStr = Field(alias="nodeID")
    # Name: the tailnet host name of that machine when it was bound (for people).
    name: StrictStr | None = None
    # BoundAt: when the binding was made.
    bound_at: Timestamp = Field(default=None, alias="boundAt")


class NodeStatus(WireModel):
    """NodeStatus is observed: facts from the agent, state and conditions from the control plane."""

    # State: Ready, NotReady or Draining, computed by the control plane.
    state: NodeState | None = None
    network: NodeNetworkStatus | None = None
    # Capacity: the machine's totals.
    capacity: ResourceList | None = None
    # Allocatable: capacity minus the system reservation; what Projects may use.
    allocatable: ResourceList | None = None
    # Available (extension): free memory and disk now, for MemoryPressure and DiskPressure.
    available: ResourceList | None = None
    info: NodeInfo | None = None
    # Binding (extension): the tailnet machine that may heartbeat and write this status; set by the server.
    binding: NodeBinding | None = None
    # LastHeartbeat: when the control plane last received a beat (its own clock); unset means never.
    last_heartbeat: Timestamp = Field(default=None, alias="lastHeartbeat")
    conditions: list[Condition] | None = None
    # FactsStale (extension, served, never stored): true when the Node has not reconfirmed its facts within the
    # grace, so network, throughput and peers are its last known values, not current (`fact_freshness`).
    facts_stale: StrictBool | None = Field(default=None, alias="factsStale")
    # FactsConfirmedAt (extension, served, never stored): when the Node last reconfirmed its facts (an accepted
    # beat); older than lastHeartbeat when a beat since was rejected (invalid facts renew only the lease).
    facts_confirmed_at: Timestamp = Field(default=None, alias="factsConfirmedAt")


class Node(WireModel):
    """Node is a machine managed by a cara-agent."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Node"] = "Node"
    metadata: ObjectMeta
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    @property
    def name(self) -> str:
        """name is metadata.name."""
        return self.metadata.name


class NodeList(WireModel):
    """NodeList is the answer to listing Nodes; items is never null."""

    api_version: Literal["caravanserai/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["NodeList"] = "NodeList"
    items: list[Node] = Field(default_factory=list)


class Heartbeat(WireModel):
    """Heartbeat is the body of POST /nodes/{name}/heartbeat; every field is optional.

    An empty body renews the lease only. A non-empty field replaces the stored one. `state` is
    advisory: NotReady means the agent is going away; any other value is ignored.
    """

    state: NodeState | None = None
    network: NodeNetworkStatus | None = None
    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None
    available: ResourceList | None = None
    info: NodeInfo | None = None
    conditions: list[Condition] | None = None

    def is_empty(self) -> bool:
        """is_empty reports whether the beat carries nothing at all (a lease renewal)."""
        return self.state is None and not self.has_facts()

    def has_facts(self) -> bool:
        """has_facts reports whether the beat carries facts to store (a beat of only `state` carries none)."""
        return any((self.network, self.capacity, self.allocatable, self.available, self.info, self.conditions))
