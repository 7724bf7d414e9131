"""The agent's hand-written /metrics: valid Prometheus text with the agent's and the process's figures."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from agent.heartbeat import BeatState
from agent.metrics import CONTENT_TYPE, metrics_handler
from tests.factories import agent_status

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_metrics_parse_and_carry_the_live_state() -> None:
    beats = BeatState(registered=True, server_reachable=True, last_success=NOW, counts={"full": 2, "empty": 7})
    status = agent_status(NOW, ip="100.64.0.3")
    code, ctype, body = metrics_handler(beats, status, started=1.0)()
    assert (code, ctype) == (200, CONTENT_TYPE)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("cara_agent_heartbeats_total", (("result", "empty"),))] == 7
    assert samples[("cara_agent_heartbeats_total", (("result", "full"),))] == 2
    assert samples[("cara_agent_path_direct", ())] == 0
    assert samples[("cara_agent_path_latency_seconds", ())] == 0.0035
    assert samples[("cara_agent_tailscaled_running", ())] == 1
    assert samples[("cara_agent_throughput_bits_per_second", (("direction", "download"),))] == 94.1e6
    assert samples[("cara_agent_last_heartbeat_timestamp_seconds", ())] == NOW.timestamp()
    assert samples[("process_resident_memory_bytes", ())] > 1e6
    assert samples[("process_cpu_seconds_total", ())] > 0
