"""Status: assembles one Snapshot (the full heartbeat and its change signature) from the collectors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from controlplane.api import Heartbeat, NodeInfo, NodeNetworkStatus, NodeState

from .collectors.peers import PeerProber, merge_peers
from .collectors.resources import ResourceSource, collect_resources
from .collectors.tailnet import TailnetCollector, TailnetView
from .collectors.witness import WitnessChecker
from .heartbeat import Snapshot
from .settings import Reservation
from .throughput import Measurement

log = logging.getLogger("cara.agent")


@dataclass(slots=True)
class AgentStatus:
    """AgentStatus builds snapshots; it remembers the last good network facts and the last measurement."""

    tailnet: TailnetCollector
    resources: ResourceSource
    info: NodeInfo
    data_dir: Path
    reserved: Reservation
    now: Callable[[], datetime]
    measurement: Measurement | None = None
    # peers: probes the paths to fellow agents once per snapshot; None reports the passive view only.
    peers: PeerProber | None = None
    last_view: TailnetView | None = None
    last_network: NodeNetworkStatus | None = None
    # witness: checks fellow agents when the control plane asks; its reports go out as network.witnessed.
    witness: WitnessChecker | None = None

    async def snapshot(self) -> Snapshot:
        """snapshot collects everything now; while tailscaled is down the last known network facts are kept."""
        now = self.now()
        view = await self.tailnet.collect(now)
        if self.last_view is None or view.backend_state != self.last_view.backend_state:
            log.log(
                logging.INFO if view.backend_state == "Running" else logging.WARNING,
                "tailscaled is %s: %s",
                view.backend_state,
                view.condition.message,
            )
        self.last_view = view
        if view.network is not None and view.status is not None and self.peers is not None:
            probed = await self.peers.round(view.status)
            merged = merge_peers(probed, view.network.peers or (), self.peers.config.max_peers)
            self.last_network = view.network.model_copy(update={"peers": merged, "observed_at": now})
        elif view.network is not None:
            self.last_network = view.network.model_copy(update={"observed_at": now})
        network = self.last_network
        if network is not None and self.measurement is not None:
            network = network.model_copy(update={"throughput": self.measurement.to_status()})
        if network is not None and self.witness is not None:
            network = network.model_copy(update={"witnessed": self.witness.reports()})
        resources = collect_resources(self.resources, self.data_dir, self.reserved)
        # state Ready as the Go agent sends it: the Go server takes a Node's state from its beats and keeps one
        # that never says Ready NotReady; our server computes the state itself and ignores this (a goodbye's
        # NotReady aside).
        beat = Heartbeat(
            state=NodeState.READY,
            network=network,
            capacity=resources.capacity,
            allocatable=resources.allocatable,
            available=resources.available,
            info=self.info,
            conditions=[view.condition],
        )
        return Snapshot(
            beat=beat,
            signature=signature(network, resources.capacity, view, resources.pressure_buckets, self.measurement),
            tailnet_running=view.backend_state == "Running",
        )


def signature(
    network: NodeNetworkStatus | None,
    capacity: dict[str, str],
    view: TailnetView,
    pressure: tuple[int, int],
    measurement: Measurement | None,
) -> tuple[object, ...]:
    """signature is what must change for a full beat: identity, path modes and relay reasons, capacity, pressure
    steps, condition."""
    net: tuple[object, ...] = ()
    if network is not None:
        peers = tuple((p.name, p.mode, p.relay_reason) for p in network.peers or ())
        witnessed = tuple((w.name, w.at) for w in network.witnessed or ())
        own = (network.mode, network.derp_region, network.relay_reason)
        net = (network.ip, network.dns_name, own, peers, witnessed)
    return (
        net,
        tuple(sorted(capacity.items())),
        pressure,
        (view.condition.status, view.condition.reason),
        measurement.finished_at if measurement else None,
    )
