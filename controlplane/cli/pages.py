"""describe's pages: every field of a decoded Node or Project, its conditions, a Node's freshness, history and
availability, and the object's Events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from controlplane.api import (
    Condition,
    Event,
    Node,
    NodeAvailability,
    NodeHistory,
    Project,
    fact_freshness,
    format_age,
    format_time,
)

from .printers import NONE, age, cell, milliseconds, table


def _is_scalar(value: object) -> bool:
    return not isinstance(value, dict | list) or (isinstance(value, list) and all(_is_scalar(v) for v in value))


def _scalar(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value) or NONE
    return cell(value)


def _tree(value: Mapping[str, Any], indent: int) -> list[str]:
    """_tree renders a wire mapping as indented `key:  value` lines, keys aligned per level."""
    pad = " " * indent
    width = max((len(key) for key in value), default=0) + 3
    lines: list[str] = []
    for key, item in value.items():
        if _is_scalar(item) or not item:
            lines.append(f"{pad}{key + ':':<{width}}{_scalar(item)}".rstrip())
        elif isinstance(item, dict):
            lines += [f"{pad}{key}:", *_tree(item, indent + 2)]
        else:
            lines.append(f"{pad}{key}:")
            for element in item:
                sub = _tree(element, indent + 4) if isinstance(element, dict) else [f"{pad}    {_scalar(element)}"]
                lines += [pad + "  - " + sub[0].lstrip(), *sub[1:]] if sub else [pad + "  - " + NONE]
    return lines


def _mapping_lines(label: str, mapping: Mapping[str, str] | None) -> list[str]:
    items = [f"{key}={value}" for key, value in sorted((mapping or {}).items())] or [NONE]
    head = f"{label + ':':<14}"
    return [head + items[0], *(" " * 14 + item for item in items[1:])]


def _when(value: datetime | None, now: datetime) -> str:
    return NONE if value is None else f"{format_time(value)} ({age(value, now)} ago)"


def conditions_table(conditions: Sequence[Condition] | None) -> list[str]:
    """conditions_table is the `Conditions:` block of describe: one row per condition, every field."""
    if not conditions:
        return [f"{'Conditions:':<14}{NONE}"]
    rows = [
        [
            c.type,
            str(c.status),
            cell(c.reason),
            cell(c.message),
            NONE if c.last_heartbeat_time is None else format_time(c.last_heartbeat_time),
            NONE if c.last_transition_time is None else format_time(c.last_transition_time),
        ]
        for c in conditions
    ]
    headers = ["TYPE", "STATUS", "REASON", "MESSAGE", "LAST HEARTBEAT", "LAST TRANSITION"]
    return ["Conditions:", *("  " + line for line in table(headers, rows).splitlines())]


def describe(obj: Node | Project, now: datetime) -> str:
    """describe renders every field of a Node or Project for people, with conditions as a table."""
    meta = obj.metadata
    wire = obj.to_wire()
    status = {key: value for key, value in wire.get("status", {}).items() if key != "conditions"}
    lines = [
        f"{'Name:':<14}{meta.name}",
        f"{'Kind:':<14}{obj.kind}",
        *_mapping_lines("Labels", meta.labels),
        *_mapping_lines("Annotations", meta.annotations),
        f"{'Created:':<14}{_when(meta.created_at, now)}",
        f"{'Updated:':<14}{_when(meta.updated_at, now)}",
    ]
    for title, section in (("Spec", wire.get("spec", {})), ("Status", status)):
        lines += [f"{title}:", *_tree(section, 2)] if section else [f"{title + ':':<14}{NONE}"]
    if obj.kind == "Node":
        lines += freshness_lines(obj, now)
    lines += conditions_table(obj.status.conditions)
    return "\n".join(lines)


def freshness_lines(node: Node, now: datetime) -> list[str]:
    """freshness_lines say whether a Node's facts are current (the server's `factsStale`, else `fact_freshness`),
    when it last confirmed them, and how old its throughput measurement is."""
    status = node.status
    freshness = fact_freshness(status, now)
    stale = status.facts_stale if status.facts_stale is not None else freshness.stale
    confirmed = "never" if freshness.age is None else f"{format_age(freshness.age)} ago"
    heard = status.last_heartbeat
    rejected = freshness.confirmed_at is not None and heard is not None and freshness.confirmed_at < heard
    why = f" ({freshness.reason})" if stale and freshness.reason else ""
    if stale and not why and rejected:
        why = " (beats arrive, but their facts were rejected)"
    verdict = "STALE: last known values, not current" if stale else "current"
    lines = [f"{'Facts:':<14}{verdict}{why}; last confirmed {confirmed}"]
    network = status.network
    if network is not None and network.observed_at is not None:
        lines.append(f"{'Observed:':<14}{_when(network.observed_at, now)}")
    throughput = network.throughput if network is not None else None
    if throughput is not None and throughput.last_test_time is not None:
        lines.append(
            f"{'Throughput:':<14}measured {_when(throughput.last_test_time, now)}{' (stale)' if stale else ''}"
        )
    return lines


#: How many of the newest history entries `describe node` shows per list.
HISTORY_SHOWN = 5


def history_lines(history: NodeHistory, shown: int = HISTORY_SHOWN) -> list[str]:
    """history_lines is the history part of `describe node`: the newest throughput samples and path changes."""
    samples = [
        [format_time(s.time) if s.time else NONE, cell(s.download), cell(s.upload), cell(s.bytes_used)]
        for s in history.throughput[-shown:]
    ]
    changes = [
        [
            format_time(c.time) if c.time else NONE,
            c.peer,
            cell(c.from_mode) if c.from_mode else "unknown",
            cell(c.to_mode) + (f"({c.derp_region})" if c.derp_region else ""),
            milliseconds(c.latency_ms),
        ]
        for c in history.paths[-shown:]
    ]
    lines = []
    for title, headers, rows, total in (
        ("Throughput history", ["TIME", "DOWNLOAD", "UPLOAD", "BYTES"], samples, len(history.throughput)),
        ("Path changes", ["TIME", "PEER", "FROM", "TO", "LATENCY"], changes, len(history.paths)),
    ):
        if not rows:
            lines.append(f"{title + ':':<14}{NONE}")
            continue
        lines.append(f"{title} (last {len(rows)} of {total}):")
        lines += ["  " + line for line in table(headers, rows).splitlines()]
    return lines


def _percent(ratio: float | None) -> str:
    return NONE if ratio is None else f"{ratio * 100:.1f}%"


def availability_lines(availability: NodeAvailability) -> list[str]:
    """availability_lines is the `Availability:` block of describe node: Ready and each path's Direct share."""
    names = [w.window for w in availability.ready] or ["24h", "7d"]
    rows = [["Ready", *(_percent(w.ratio) for w in availability.ready)]]
    rows += [[f"Direct to {p.peer}", *(_percent(w.ratio) for w in p.windows)] for p in availability.paths]
    table_text = table(["", *(f"LAST {name.upper()}" for name in names)], rows)
    return ["Availability:", *("  " + line.rstrip() for line in table_text.splitlines())]


def events_lines(events: Sequence[Event], now: datetime) -> list[str]:
    """events_lines is the `Events:` block of describe: kubectl's columns, oldest first."""
    if not events:
        return [f"{'Events:':<14}{NONE}"]
    rows = [
        [
            e.type.value,
            e.reason,
            age(e.last_timestamp or e.metadata.created_at, now),
            e.message + (f" (by {e.actor})" if e.actor else ""),
        ]
        for e in events
    ]
    return ["Events:", *("  " + line for line in table(["TYPE", "REASON", "AGE", "MESSAGE"], rows).splitlines())]
