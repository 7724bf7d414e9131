"""FleetCollector: per-node and per-path Prometheus series, built at scrape time from the stored Nodes and leases.

A scrape decodes only the Nodes written since the last one (a `NodeView` of `NodeSeries`, the few numbers
the series need), not every Node: at 20k Nodes a full list took about a second of the event loop.

Series (every label value is a Node name, a peer name, a mode or a direction):

- `cara_node_heartbeat_age_seconds{node}`: seconds since the last heartbeat (the lease, else the stored time).
- `cara_node_ready{node,reason}`: 1 while the Node's Ready condition is True, else 0, labelled with that
  condition's reason (the lifecycle controller's closed set: AgentReady, HeartbeatTimeout, …; `NotReported` when
  the Node has no Ready condition yet).
- `cara_node_facts_stale{node}`: 1 while the Node's reported facts are stale (`controlplane.api.facts_stale`: it
  has not reconfirmed them within the grace), else 0. The path and throughput series of a stale Node are left out:
  its last known modes are not current, and a 0/1 mode series would say they are.
- `cara_node_path_mode{node,peer,mode}`: 1 for the path's current mode, 0 for the other; both 0 when unknown.
- `cara_node_path_latency_seconds{node,peer}`: round trip of the path's last probe.
- `cara_node_throughput_bits_per_second{node,direction}`: the last throughput measurement (download, upload).
- `cara_node_throughput_age_seconds{node}`: seconds since that measurement finished (its lastTestTime).
- `cara_path_changes_total{node,peer}`: path mode changes recorded in the history since this process started.
- `cara_node_path_not_direct{node,peer,reason}`: 1 for each reported path that is not Direct (DERP, peer relay, unknown)
  labelled with why (mesh.RelayReason, a closed set; a value an agent made up reads `Unknown`).
- `cara_metrics_dropped_paths`: node → peer paths left out of the per-pair series by the pair limit.

The path to the control plane is the pair (node, "cara-server") and is always exported. Peer paths are
exported up to `pair_limit` pairs in all (Nodes in name order, each Node's peers in name order), so the
exposition has at most nodes × (5 + 2 + 3) + pair_limit × 5 series whatever the agents report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.api import (
    CONTROL_PLANE_PEER,
    ConditionStatus,
    NetworkMode,
    Node,
    NodeConditionType,
    NodeState,
    facts_stale,
    parse_throughput,
    silent_reason,
)
from controlplane.store.base import NodeView, Store
from controlplane.store.leases import LeaseTable, facts_confirmed_at
from mesh import RelayReason

#: Default of Settings.metrics_pair_limit: node → peer series exported at most.
DEFAULT_PAIR_LIMIT = 10_000
#: The reason label of cara_node_ready for a Node without a Ready condition (registered, never judged).
READY_UNREPORTED = "NotReported"


@dataclass(frozen=True, slots=True)
class _Path:
    node: str
    peer: str
    mode: NetworkMode | None
    latency_ms: float | None
    # reason: why the path is not Direct (a RelayReason value); None when Direct or not reported.
    reason: str | None = None


@dataclass(slots=True)
class _Snapshot:
    """_Snapshot is what the last scrape saw, reduced to the numbers the series need."""

    ages: list[tuple[str, float]] = field(default_factory=list)
    ready: list[tuple[str, str, bool]] = field(default_factory=list)
    stale: list[tuple[str, bool]] = field(default_factory=list)
    tested: list[tuple[str, float]] = field(default_factory=list)
    paths: list[_Path] = field(default_factory=list)
    throughput: list[tuple[str, str, float]] = field(default_factory=list)
    dropped: int = 0


def _paths_of(node: Node) -> tuple[_Path | None, list[_Path]]:
    """_paths_of returns the Node's path to the control plane (None when unreported) and its peer paths by name."""
    network = node.status.network
    if network is None:
        return None, []
    own = None
    if network.mode is not None or network.latency_ms is not None:
        own = _Path(
            node.name,
            CONTROL_PLANE_PEER,
            network.mode,
            network.latency_ms,
            relay_reason(network.mode, network.relay_reason),
        )
    # The own path's series carry peer="cara-server"; a peer entry of that very name would repeat the label set (a
    # broken exposition), so it is left out. This is label hygiene, not how the control host is found: agents leave
    # the control host's entry out of their peers by its tailnet address, whatever its name (TailnetCollector).
    peers = sorted((p for p in network.peers or () if p.name != CONTROL_PLANE_PEER), key=lambda peer: peer.name)
    return own, [
        _Path(node.name, peer.name, peer.mode, peer.latency_ms, relay_reason(peer.mode, peer.relay_reason))
        for peer in peers
    ]


def relay_reason(mode: NetworkMode | None, reported: str | None) -> str | None:
    """relay_reason is the label value of a path's reason: None when Direct or unreported, a RelayReason value
    otherwise (an unknown code reads Unknown, so the label keeps its closed set whatever an agent sends)."""
    if mode is NetworkMode.DIRECT or (reported is None and mode is None):
        return None
    if reported in {reason.value for reason in RelayReason}:
        return str(reported)
    return RelayReason.UNKNOWN.value


def _rates(node: Node) -> list[tuple[str, str, float]]:
    throughput = node.status.network.throughput if node.status.network else None
    rates = []
    for direction, text in (
        ("download", throughput and throughput.download),
        ("upload", throughput and throughput.upload),
    ):
        if text:
            try:
                rates.append((node.name, direction, parse_throughput(text)))
            except ValueError:  # an agent's malformed rate is not a series
                continue
    return rates


@dataclass(frozen=True, slots=True)
class NodeSeries:
    """NodeSeries is what the series need of one stored Node."""

    name: str
    state: NodeState | None
    last_heartbeat: datetime | None
    own: _Path | None
    peers: tuple[_Path, ...]
    rates: tuple[tuple[str, str, float], ...]
    # ready: the Ready condition is True; ready_reason: its reason (READY_UNREPORTED without one).
    ready: bool = False
    ready_reason: str = ""
    # Silent: the Ready reason when the control plane judged the Node silent (`silent_reason`), else None.
    silent: str | None = None
    # Tested: when the last throughput measurement finished; None when never.
    tested: datetime | None = None

    @classmethod
    def of(cls, node: Node) -> NodeSeries:
        """of reduces node to its series' inputs."""
        own, peers = _paths_of(node)
        status = node.status
        throughput = status.network.throughput if status.network is not None else None
        ready = next((c for c in status.conditions or () if c.type == NodeConditionType.READY), None)
        return cls(
            node.name,
            status.state,
            status.last_heartbeat,
            own,
            tuple(peers),
            tuple(_rates(node)),
            ready=ready is not None and ready.status is ConditionStatus.TRUE,
            ready_reason=(ready.reason if ready is not None else None) or READY_UNREPORTED,
            silent=silent_reason(status),
            tested=throughput.last_test_time if throughput is not None else None,
        )


class FleetCollector(Collector):
    """FleetCollector serves the series of the last `observe`; the /metrics route observes right before rendering."""

    def __init__(self, *, pair_limit: int = DEFAULT_PAIR_LIMIT, grace: timedelta | None = None) -> None:
        self.pair_limit = pair_limit
        # Grace: the server's, for the freshness rule (`facts_stale`); None trusts the Ready condition alone.
        self.grace = grace
        self._snapshot = _Snapshot()
        # Path changes counted since start: node → count (path to the control plane), (node, peer) → count.
        self._own_changes: dict[str, int] = {}
        self._peer_changes: dict[tuple[str, str], int] = {}
        self._view: NodeView[NodeSeries] | None = None

    async def scrape(self, store: Store, leases: LeaseTable, now: datetime) -> list[NodeSeries]:
        """scrape observes the stored Nodes (only those written since the last scrape are read) and returns
        their series' inputs in name order."""
        if self._view is None:
            self._view = NodeView(store, NodeSeries.of)
        nodes = sorted((await self._view.refresh()).values(), key=lambda series: series.name)
        self.observe(nodes, leases, now)
        return nodes

    def observe(self, nodes: Iterable[NodeSeries], leases: LeaseTable, now: datetime) -> None:
        """observe replaces the snapshot with nodes (as stored, in name order) and their leases, at now."""
        snapshot = _Snapshot()
        pairs = 0
        known: set[str] = set()
        for node in nodes:
            known.add(node.name)
            lease = leases.get(node.name)
            beat = lease.renewed_at if lease is not None else node.last_heartbeat
            if beat is not None:
                snapshot.ages.append((node.name, max(0.0, (now - beat).total_seconds())))
            snapshot.ready.append((node.name, node.ready_reason, node.ready))
            stale = facts_stale(facts_confirmed_at(lease, node.last_heartbeat), node.silent, now, self.grace)
            snapshot.stale.append((node.name, stale))
            if node.tested is not None:
                snapshot.tested.append((node.name, max(0.0, (now - node.tested).total_seconds())))
            if stale:
                continue  # last known values, not current: only the stale marker and the ages speak for it
            if node.own is not None:
                snapshot.paths.append(node.own)
            kept = node.peers[: max(0, self.pair_limit - pairs)]
            pairs += len(kept)
            snapshot.paths += kept
            snapshot.dropped += len(node.peers) - len(kept)
            snapshot.throughput += node.rates
        self._own_changes = {key: count for key, count in self._own_changes.items() if key in known}
        self._peer_changes = {key: count for key, count in self._peer_changes.items() if key[0] in known}
        self._snapshot = snapshot

    def path_changed(self, node: str, peer: str) -> None:
        """path_changed counts one recorded change of node's path to peer (peer pairs up to the pair limit)."""
        if peer == CONTROL_PLANE_PEER:
            self._own_changes[node] = self._own_changes.get(node, 0) + 1
        elif (node, peer) in self._peer_changes or len(self._peer_changes) < self.pair_limit:
            self._peer_changes[node, peer] = self._peer_changes.get((node, peer), 0) + 1

    def describe(self) -> Iterable[Metric]:
        return self._families(_Snapshot(), {})

    def collect(self) -> Iterable[Metric]:
        changes = {(node, CONTROL_PLANE_PEER): count for node, count in self._own_changes.items()}
        return self._families(self._snapshot, {**changes, **self._peer_changes})

    @staticmethod
    def _families(snapshot: _Snapshot, changes: dict[tuple[str, str], int]) -> list[Metric]:
        age = GaugeMetricFamily(
            "cara_node_heartbeat_age_seconds", "Seconds since the node's last heartbeat.", labels=["node"]
        )
        for node, seconds in snapshot.ages:
            age.add_metric([node], seconds)
        ready = GaugeMetricFamily(
            "cara_node_ready",
            "1 while the node's Ready condition is True, else 0; reason is that condition's reason.",
            labels=["node", "reason"],
        )
        for node, reason, is_ready in snapshot.ready:
            ready.add_metric([node, reason], 1.0 if is_ready else 0.0)
        stale = GaugeMetricFamily(
            "cara_node_facts_stale",
            "1 while the node has not reconfirmed its facts within the grace: its path and throughput series are left"
            " out, since its last known values are not current.",
            labels=["node"],
        )
        for node, is_stale in snapshot.stale:
            stale.add_metric([node], 1.0 if is_stale else 0.0)
        tested = GaugeMetricFamily(
            "cara_node_throughput_age_seconds",
            "Seconds since the last throughput measurement finished.",
            labels=["node"],
        )
        for node, seconds in snapshot.tested:
            tested.add_metric([node], seconds)
        mode = GaugeMetricFamily(
            "cara_node_path_mode",
            'Path from node to peer ("cara-server": the control plane): 1 for its current mode, else 0.',
            labels=["node", "peer", "mode"],
        )
        latency = GaugeMetricFamily(
            "cara_node_path_latency_seconds", "Round trip of the last probe of the path.", labels=["node", "peer"]
        )
        for path in snapshot.paths:
            for each in NetworkMode:
                mode.add_metric([path.node, path.peer, each.value], 1.0 if path.mode is each else 0.0)
            if path.latency_ms is not None:
                latency.add_metric([path.node, path.peer], path.latency_ms / 1000)
        throughput = GaugeMetricFamily(
            "cara_node_throughput_bits_per_second",
            "Last throughput measurement between the node and the control plane.",
            labels=["node", "direction"],
        )
        for node, direction, rate in snapshot.throughput:
            throughput.add_metric([node, direction], rate)
        relayed = GaugeMetricFamily(
            "cara_node_path_not_direct",
            "1 for a path that is not Direct, labelled with why (a closed set of reasons).",
            labels=["node", "peer", "reason"],
        )
        for path in snapshot.paths:
            if path.reason is not None:
                relayed.add_metric([path.node, path.peer, path.reason], 1.0)
        counted = CounterMetricFamily(
            "cara_path_changes", "Path mode changes recorded since the server started.", labels=["node", "peer"]
        )
        for (node, peer), count in sorted(changes.items()):
            counted.add_metric([node, peer], count)
        dropped = GaugeMetricFamily(
            "cara_metrics_dropped_paths", "Peer paths left out of the per-pair series by the pair limit."
        )
        dropped.add_metric([], snapshot.dropped)
        return [age, ready, stale, mode, latency, throughput, tested, relayed, counted, dropped]
