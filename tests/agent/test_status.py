"""The change signature: what makes a full beat, and what only rides along with the next one."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.collectors.tailnet import TailnetView, network_condition
from agent.status import signature
from agent.throughput import Measurement
from controlplane.api import ConditionStatus, NetworkMode, NodeNetworkStatus, PeerPath, WitnessReport

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CAPACITY = {"cpu": "2000m", "memory": "1024Mi", "disk": "10Gi"}


def view(status: ConditionStatus = ConditionStatus.FALSE, reason: str = "TailscaledRunning") -> TailnetView:
    return TailnetView(None, network_condition(status, reason, "m", NOW), "100.64.0.3", "Running")


def net(**kw: object) -> NodeNetworkStatus:
    base: dict[str, object] = {
        "ip": "100.64.0.3",
        "dns_name": "edge1.tailnet.test",
        "mode": NetworkMode.DIRECT,
        "latency_ms": 1.0,
    }
    return NodeNetworkStatus(**{**base, **kw})


def sig(network: NodeNetworkStatus, **kw: object) -> tuple[object, ...]:
    args: dict[str, object] = {"capacity": CAPACITY, "view": view(), "pressure": (5, 5), "measurement": None}
    args.update(kw)
    return signature(network, **args)  # type: ignore[arg-type]


def test_latency_and_other_wobble_do_not_count() -> None:
    assert sig(net()) == sig(net(latency_ms=7.5))


def test_mode_ip_peers_condition_pressure_and_measurement_count() -> None:
    base = sig(net())
    assert sig(net(mode=NetworkMode.DERP)) != base
    assert sig(net(ip="100.64.0.9")) != base
    assert sig(net(peers=[PeerPath(name="edge2", mode=NetworkMode.DERP)])) != base
    assert sig(net(), view=view(ConditionStatus.TRUE, "TailscaledNotRunning")) != base
    assert sig(net(), pressure=(1, 5)) != base
    assert sig(net(), measurement=Measurement(1.0, 1.0, 1, NOW)) != base
    assert sig(net(), capacity={**CAPACITY, "memory": "2048Mi"}) != base


def test_a_new_witness_counts_and_the_observation_time_does_not() -> None:
    base = sig(net())
    assert sig(net(observed_at=NOW)) == base, "observedAt changes every collection: it rides along"
    witnessed = [WitnessReport(name="edge2", at=NOW, mode=NetworkMode.DIRECT, latency_ms=3.0)]
    assert sig(net(witnessed=witnessed)) != base
    again = [WitnessReport(name="edge2", at=NOW.replace(second=5), mode=NetworkMode.DIRECT, latency_ms=3.0)]
    assert sig(net(witnessed=again)) != sig(net(witnessed=witnessed)), "a witness renewed is reported at once"
