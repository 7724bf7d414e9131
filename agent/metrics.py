"""The agent's Prometheus metrics, read from its live state at scrape time (no bookkeeping on the beat path)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .heartbeat import BeatState
from .status import AgentStatus


class AgentCollector(Collector):
    """AgentCollector exposes heartbeat outcomes, the path to the control plane and the last throughput."""

    def __init__(self, beats: BeatState, status: AgentStatus) -> None:
        self._beats, self._status = beats, status

    def collect(self) -> Iterator[Metric]:
        beats = CounterMetricFamily("cara_agent_heartbeats", "Heartbeat passes by outcome.", labels=["result"])
        for result, count in sorted(self._beats.counts.items()):
            beats.add_metric([result], count)
        yield beats
        yield GaugeMetricFamily(
            "cara_agent_registered", "1 when the Node is registered.", value=int(self._beats.registered)
        )
        yield GaugeMetricFamily(
            "cara_agent_server_reachable",
            "1 when the last beat reached the control plane.",
            value=int(self._beats.server_reachable),
        )
        if self._beats.last_success is not None:
            yield GaugeMetricFamily(
                "cara_agent_last_heartbeat_timestamp_seconds",
                "Unix time of the last accepted beat.",
                value=self._beats.last_success.timestamp(),
            )
        network = self._status.last_network
        mode = GaugeMetricFamily("cara_agent_path_direct", "1 when the path to the control plane is Direct, 0 on DERP.")
        if network is not None and network.mode is not None:
            mode.add_metric([], 1 if network.mode == "Direct" else 0)
        yield mode
        if network is not None and network.latency_ms is not None:
            yield GaugeMetricFamily(
                "cara_agent_path_latency_ms", "Round trip to the control plane.", value=network.latency_ms
            )
        view = self._status.last_view
        yield GaugeMetricFamily(
            "cara_agent_tailscaled_running",
            "1 when tailscaled is Running.",
            value=int(view is not None and view.backend_state == "Running"),
        )
        measurement = self._status.measurement
        if measurement is not None:
            rate = GaugeMetricFamily("cara_agent_throughput_bps", "Last measured throughput.", labels=["direction"])
            rate.add_metric(["download"], measurement.download_bps)
            rate.add_metric(["upload"], measurement.upload_bps)
            yield rate
            yield GaugeMetricFamily(
                "cara_agent_throughput_bytes_used", "Bytes the last test moved.", value=measurement.bytes_used
            )


def make_registry(beats: BeatState, status: AgentStatus) -> CollectorRegistry:
    """make_registry returns a registry of the agent's and its process's metrics (not the process-global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(beats, status))
    ProcessCollector(registry=registry)  # RSS and CPU seconds of this process (process_resident_memory_bytes ...)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """render is the Prometheus text exposition of registry."""
    return generate_latest(registry)
