"""Network-aware placement: which Nodes meet a Project's `spec.placement`, and the words for those that do not.

A Project without `spec.placement` asks nothing here, so it is placed exactly as before. `pathToControlPlane:
Direct` needs the Node's reported path to the control plane to be Direct (DERP, or no report, does not qualify);
`minThroughput` needs the Node's last download measurement to be fresh (younger than `throughput_max_age`) and at
least that rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from controlplane.api import NetworkMode, Node, PathRequirement, ProjectPlacement, parse_throughput

# How a Node misses, as counted in the Unschedulable message ("0/3 nodes are available: 2 relayed through DERP").
RELAYED: Final = "relayed through DERP"
PATH_UNKNOWN: Final = "without a known path to the control plane"
NO_MEASUREMENT: Final = "without a fresh throughput measurement"


def below(minimum: str) -> str:
    """below is the label of Nodes whose download is under minimum: `below 50Mbps`."""
    return f"below {minimum}"


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """NetworkFacts is what placement reads of a Node: its path mode and its fresh download rate, if any."""

    # mode: Direct or DERP; None when the Node never reported one.
    mode: NetworkMode | None = None
    # download: bits per second of the last measurement; None when never measured or stale.
    download: float | None = None


def facts_of(node: Node, now: datetime, max_age: timedelta) -> NetworkFacts:
    """facts_of reads node's network facts; a measurement older than max_age (or unreadable) counts as none."""
    network = node.status.network
    if network is None:
        return NetworkFacts()
    download: float | None = None
    throughput = network.throughput
    if throughput is not None and throughput.download and throughput.last_test_time is not None:
        fresh = throughput.last_test_time.year > 1 and now - throughput.last_test_time <= max_age
        if fresh:
            try:
                download = parse_throughput(throughput.download)
            except ValueError:
                download = None
    return NetworkFacts(mode=network.mode, download=download)


def misses(placement: ProjectPlacement | None, facts: NetworkFacts) -> list[str]:
    """misses lists how a Node with facts fails placement (empty when it qualifies, or placement asks nothing)."""
    if placement is None:
        return []
    found: list[str] = []
    if placement.path_to_control_plane == PathRequirement.DIRECT and facts.mode != NetworkMode.DIRECT:
        found.append(RELAYED if facts.mode == NetworkMode.DERP else PATH_UNKNOWN)
    if placement.min_throughput:
        if facts.download is None:
            found.append(NO_MEASUREMENT)
        elif facts.download < parse_throughput(placement.min_throughput):
            found.append(below(placement.min_throughput))
    return found


def label_order(placement: ProjectPlacement | None) -> tuple[str, ...]:
    """label_order is the order placement labels are printed in, after the Node-state ones."""
    if placement is None:
        return ()
    minimum = (below(placement.min_throughput),) if placement.min_throughput else ()
    return (RELAYED, PATH_UNKNOWN, *minimum, NO_MEASUREMENT)
