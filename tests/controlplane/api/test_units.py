"""Quantities, durations and the condition upsert rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controlplane.api import (
    ConditionStatus,
    cpu_millis,
    find_condition,
    format_cpu,
    format_gibibytes,
    format_mebibytes,
    format_throughput,
    parse_duration,
    parse_throughput,
    quantity_bytes,
    set_condition,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "millis"), [("4000m", 4000), ("4", 4000), ("0.5", 500), ("250m", 250)])
def test_cpu(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "n_bytes"), [("1Ki", 1024), ("7823Mi", 7823 * 2**20), ("1G", 10**9), ("512", 512), ("1e3", 1000)]
)
def test_bytes(text: str, n_bytes: int) -> None:
    assert quantity_bytes(text) == n_bytes


@pytest.mark.parametrize("text", ["", "lots", "1.2.3", "-1", "5 Mi", "1Qi"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="must be a quantity"):
        quantity_bytes(text)


def test_formats() -> None:
    assert format_cpu(4000) == "4000m"
    assert format_mebibytes(7823 * 2**20 + 5) == "7823Mi"
    assert format_gibibytes(118 * 2**30) == "118Gi"
    assert format_throughput(94_100_000) == "94.1Mbps"
    assert parse_throughput("94.1Mbps") == pytest.approx(94.1e6)
    assert parse_throughput("1Gbps") == 1e9


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("30", 30)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "-5", "0s", "5d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_transition_time_moves_only_when_status_changes() -> None:
    first = set_condition(None, "Ready", ConditionStatus.TRUE, "AgentReady", "", T0)
    later = T0 + timedelta(seconds=10)
    same = set_condition(first, "Ready", ConditionStatus.TRUE, "AgentReady", "still", later)
    ready = find_condition(same, "Ready")
    assert ready is not None
    assert (ready.last_transition_time, ready.last_heartbeat_time, ready.message) == (T0, later, "still")
    flipped = find_condition(
        set_condition(same, "Ready", ConditionStatus.FALSE, "HeartbeatTimeout", "", later), "Ready"
    )
    assert flipped is not None and flipped.last_transition_time == later


def test_upsert_keeps_order_and_other_types() -> None:
    conditions = set_condition(None, "A", ConditionStatus.TRUE, "R", "", T0)
    conditions = set_condition(conditions, "B", ConditionStatus.FALSE, "R", "", T0)
    conditions = set_condition(conditions, "A", ConditionStatus.FALSE, "R", "", T0)
    assert [(c.type, c.status) for c in conditions] == [("A", "False"), ("B", "False")]
