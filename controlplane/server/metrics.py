"""Prometheus metrics of the control plane, on a registry of the app's own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .fleet_metrics import DEFAULT_PAIR_LIMIT, FleetCollector


class Metrics:
    """Metrics holds the app's collectors; one instance per app, so tests never share counters."""

    def __init__(self, *, pair_limit: int = DEFAULT_PAIR_LIMIT, grace: timedelta | None = None) -> None:
        self.registry = CollectorRegistry()
        self.heartbeats = Counter(
            "cara_heartbeats_total",
            "Heartbeats received, by kind (empty or full).",
            ["kind"],
            registry=self.registry,
        )
        self.requests = Counter(
            "cara_http_requests_total",
            "HTTP requests answered, by method and status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "cara_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.nodes = Gauge(
            "cara_nodes", "Nodes known to the control plane, by state.", ["state"], registry=self.registry
        )
        self.projects = Gauge(
            "cara_projects", "Projects known to the control plane, by phase.", ["phase"], registry=self.registry
        )
        self.ready_ratio = Gauge(
            "cara_node_ready_ratio",
            "Share (0-1) of the window the node's Ready condition was True, over the time its state was known.",
            ["node", "window"],
            registry=self.registry,
        )
        self.direct_ratio = Gauge(
            "cara_node_path_direct_ratio",
            "Share (0-1) of the window the path from node to peer was Direct, over the time its mode was known.",
            ["node", "peer", "window"],
            registry=self.registry,
        )
        self.isolated = Gauge(
            "cara_control_plane_isolated",
            "1 while the leader judges the control plane itself cut off (most Nodes went silent within one grace"
            " window): rescheduling and drain moves are suspended.",
            registry=self.registry,
        )
        self.loop_restarts = Counter(
            "cara_loop_restarts_total",
            "Restarts of a supervised loop (http, lease-flush, controllers) after it raised.",
            ["loop"],
            registry=self.registry,
        )
        # Fleet: per-node and per-path series, observed from the store at each scrape.
        self.fleet = FleetCollector(pair_limit=pair_limit, grace=grace)
        self.registry.register(self.fleet)
        # The children of the per-request series, by label values: prometheus_client's labels() takes a lock and
        # builds a key each call, a few microseconds on every request.
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def count_heartbeat(self, full: bool) -> None:
        """count_heartbeat counts one applied beat."""
        self._child(self.heartbeats, "full" if full else "empty").inc()

    def count_request(self, method: str, status: int, seconds: float) -> None:
        """count_request counts and times one answered HTTP request (methods and codes are few: the children are
        kept)."""
        self._child(self.requests, method, str(status)).inc()
        self._child(self.request_seconds, method).observe(seconds)

    def render(self) -> bytes:
        """render returns the Prometheus text exposition."""
        return generate_latest(self.registry)
