"""The agent's Prometheus metrics, rendered from its live state at scrape time (no bookkeeping on the beat path).

Every series is in base units (seconds, bytes, bits per second), as Prometheus asks and as the server's are. The
text exposition format is written here by hand: prometheus_client would cost the agent more resident memory
than all of its own metrics put together, and the edge budget is 40 MiB (issue 5).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from .heartbeat import BeatState
from .status import AgentStatus

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class Exposition:
    """Exposition accumulates metric families in the Prometheus text format."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Sequence[tuple[dict[str, str], float]]) -> None:
        """family adds one metric family (HELP, TYPE and its samples); a family without samples is still declared."""
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        sample_name = f"{name}_total" if kind == "counter" else name
        for labels, value in samples:
            text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            self.lines.append(
                f"{sample_name}{{{text}}} {float(value)!r}" if text else f"{sample_name} {float(value)!r}"
            )

    def render(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def _process_rss_bytes(status_path: Path = Path("/proc/self/status")) -> float | None:
    try:
        for line in status_path.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def process_families(out: Exposition, started: float) -> None:
    """process_families adds the standard process_* metrics (CPU seconds, resident memory, start time)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.family(
        "process_cpu_seconds",
        "counter",
        "User and system CPU time spent, in seconds.",
        [({}, usage.ru_utime + usage.ru_stime)],
    )
    rss = _process_rss_bytes()
    if rss is not None:
        out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [({}, rss)])
    out.family(
        "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.", [({}, started)]
    )
    try:
        fds = len(os.listdir("/proc/self/fd"))
        out.family("process_open_fds", "gauge", "Number of open file descriptors.", [({}, fds)])
    except OSError:
        pass


def agent_families(out: Exposition, beats: BeatState, status: AgentStatus) -> None:
    """agent_families adds heartbeat outcomes, the path to the control plane and the last throughput."""
    out.family(
        "cara_agent_heartbeats",
        "counter",
        "Heartbeat passes by outcome.",
        [({"result": k}, v) for k, v in sorted(beats.counts.items())],
    )
    out.family("cara_agent_registered", "gauge", "1 when the Node is registered.", [({}, int(beats.registered))])
    out.family(
        "cara_agent_server_reachable",
        "gauge",
        "1 when the last beat reached the control plane.",
        [({}, int(beats.server_reachable))],
    )
    if beats.last_success is not None:
        out.family(
            "cara_agent_last_heartbeat_timestamp_seconds",
            "gauge",
            "Unix time of the last accepted beat.",
            [({}, beats.last_success.timestamp())],
        )
    network = status.last_network
    mode: list[tuple[dict[str, str], float]] = (
        [({}, 1 if network.mode == "Direct" else 0)] if network is not None and network.mode is not None else []
    )
    out.family("cara_agent_path_direct", "gauge", "1 when the path to the control plane is Direct, 0 on DERP.", mode)
    if network is not None and network.latency_ms is not None:
        out.family(
            "cara_agent_path_latency_seconds",
            "gauge",
            "Round trip to the control plane in seconds.",
            [({}, network.latency_ms / 1000)],
        )
    view = status.last_view
    running = int(view is not None and view.backend_state == "Running")
    out.family("cara_agent_tailscaled_running", "gauge", "1 when tailscaled is Running.", [({}, running)])
    m = status.measurement
    if m is not None:
        rates = [({"direction": "download"}, m.download_bps), ({"direction": "upload"}, m.upload_bps)]
        out.family(
            "cara_agent_throughput_bits_per_second", "gauge", "Last measured throughput in bits per second.", rates
        )
        out.family(
            "cara_agent_throughput_test_bytes", "gauge", "Bytes the last throughput test moved.", [({}, m.bytes_used)]
        )


def loop_families(out: Exposition, restarts: Mapping[str, int]) -> None:
    """loop_families adds how often each supervised loop was restarted after raising."""
    out.family(
        "cara_agent_loop_restarts",
        "counter",
        "Restarts of a supervised loop (heartbeat, throughput, http) after it raised.",
        [({"loop": name}, count) for name, count in sorted(restarts.items())],
    )


def metrics_handler(
    beats: BeatState,
    status: AgentStatus,
    started: float | None = None,
    *,
    restarts: Callable[[], Mapping[str, int]] | None = None,
) -> Callable[[], tuple[int, str, bytes]]:
    """metrics_handler returns the /metrics handler of the agent's HTTP server."""
    start = time.time() if started is None else started

    def handler() -> tuple[int, str, bytes]:
        out = Exposition()
        agent_families(out, beats, status)
        if restarts is not None:
            loop_families(out, restarts())
        process_families(out, start)
        return 200, CONTENT_TYPE, out.render()

    return handler
