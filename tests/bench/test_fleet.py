"""A tiny run of the fleet simulator through the code bench/fleet uses, so the simulator cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fleet import FleetConfig, run_fleet, summary


@pytest.mark.slow
def test_a_small_fleet_beats_lists_and_reports(tmp_path: Path) -> None:
    config = FleetConfig(nodes=20, seconds=5, heartbeat_interval=1, status_interval=3, discovery_period=2)
    figures = run_fleet(config, tmp_path, f"sqlite://{tmp_path}/fleet.db", progress=lambda _: None)
    assert figures["errors"] == 0, figures["error_kinds"]
    assert figures["achieved_share"] == 1.0 and not figures["fell_behind"]
    requests = figures["requests"]
    assert requests["full"] >= 20 and requests["empty"] >= 20 and requests["discovery"] >= 20, requests
    # Each agent keeps its connection alive: about one connection per agent, not one per request.
    assert figures["connections_opened"] <= 2 * config.nodes < sum(requests.values()) / 3, figures
    assert figures["connections_not_kept_for_the_fd_limit"] == 0
    assert figures["offered_rps"] == pytest.approx(sum(requests.values()) / 5)
    assert len(figures["rss_mib"]) >= 2 and all(rss > 10 for _, rss in figures["rss_mib"])
    assert figures["bytes_per_agent_per_period"]["received"] > 0
    assert "fleet 20 nodes, 5s, sqlite" in summary(figures)
