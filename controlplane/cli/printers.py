"""How caractrl shows objects: aligned tables and describe pages for people, wire JSON and YAML for tools."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controlplane.api import Condition, Node, NodeHistory, Project

#: One object as the server sends it (`Client.wire`): tables read these directly, since decoding 1,000 Nodes
#: into models takes about 200 ms and a table needs a dozen fields.
Wire = Mapping[str, Any]

NONE = "<none>"
COLUMN_GAP = "   "

NODE_COLUMNS = ["NAME", "STATE", "IP", "MODE", "AGE"]
NODE_WIDE_COLUMNS = [*NODE_COLUMNS, "DNS", "DERP", "LATENCY", "THROUGHPUT", "UNSCHEDULABLE"]
PROJECT_COLUMNS = ["NAME", "PHASE", "NODE", "CONDITIONS", "AGE"]
PROJECT_WIDE_COLUMNS = [*PROJECT_COLUMNS, "SERVICES", "CPU", "MEMORY"]


def age(then: datetime | None, now: datetime) -> str:
    """age renders the time since then as kubectl does in its AGE column: `42s`, `5m`, `3h`, `2d`, `1y`."""
    if then is None:
        return NONE
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def wire_time(value: object) -> datetime | None:
    """wire_time reads an RFC 3339 timestamp of the wire; None when unset, Go's zero time, naive or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if parsed.year == 1 or parsed.tzinfo is None else parsed


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """table aligns headers and rows in columns separated by three spaces (no trailing blanks)."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        COLUMN_GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def _text(value: object) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field(obj: Wire, *path: str) -> Any:
    """_field is obj[path[0]][path[1]]...; None where a level is missing or not an object."""
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def milliseconds(value: float | None) -> str:
    """milliseconds renders a latency as `2.5ms`, or <none> when unknown."""
    return NONE if value is None else f"{value:g}ms"


def node_state(node: Wire) -> str:
    """node_state is the STATE cell as kubectl's STATUS: readiness, then `,Draining` or `,SchedulingDisabled`
    (`Ready,SchedulingDisabled` for a cordoned Node, `NotReady,Draining` for a draining one whose agent is gone)."""
    state = _field(node, "status", "state")
    if state == "Draining":
        conditions = _field(node, "status", "conditions")
        ready = any(_field(c, "type") == "Ready" and _field(c, "status") == "True" for c in conditions or [])
        return f"{'Ready' if ready else 'NotReady'},Draining"
    text = _text(state)
    return f"{text},SchedulingDisabled" if _field(node, "spec", "unschedulable") is True else text


def node_row(node: Wire, now: datetime, *, wide: bool = False) -> list[str]:
    """node_row is one line of `get nodes`."""
    network = _field(node, "status", "network") or {}
    row = [
        str(_field(node, "metadata", "name")),
        node_state(node),
        _text(_field(network, "ip")),
        _text(_field(network, "mode")),
        age(wire_time(_field(node, "metadata", "createdAt")), now),
    ]
    if wide:
        throughput = _field(network, "throughput")
        rate = f"{throughput.get('download') or '?'}/{throughput.get('upload') or '?'}" if throughput else None
        latency = _field(network, "latencyMs")
        row += [
            _text(_field(network, "dnsName")),
            _text(_field(network, "derpRegion")),
            milliseconds(latency if isinstance(latency, int | float) else None),
            _text(rate),
            _text(bool(_field(node, "spec", "unschedulable"))),
        ]
    return row


def conditions_summary(conditions: object) -> str:
    """conditions_summary renders wire conditions as `Type=Status,...` for one table cell."""
    items = conditions if isinstance(conditions, list) else []
    return ",".join(f"{_field(c, 'type')}={_field(c, 'status')}" for c in items) or NONE


def project_row(project: Wire, now: datetime, *, wide: bool = False) -> list[str]:
    """project_row is one line of `get projects`."""
    row = [
        str(_field(project, "metadata", "name")),
        _text(_field(project, "status", "phase")),
        _text(_field(project, "status", "nodeRef")),
        conditions_summary(_field(project, "status", "conditions")),
        age(wire_time(_field(project, "metadata", "createdAt")), now),
    ]
    if wide:
        services = _field(project, "spec", "services")
        row += [
            ",".join(str(_field(service, "name")) for service in services or ()) or NONE,
            _text(_field(project, "spec", "resources", "cpu")),
            _text(_field(project, "spec", "resources", "memory")),
        ]
    return row


def nodes_table(nodes: Sequence[Wire], now: datetime, *, wide: bool = False) -> str:
    """nodes_table is the output of `get nodes`, from the wire objects.

    With `-o wide` it adds DNS, the path to the control plane (MODE, DERP region, LATENCY), THROUGHPUT down/up and
    UNSCHEDULABLE.
    """
    return table(NODE_WIDE_COLUMNS if wide else NODE_COLUMNS, [node_row(n, now, wide=wide) for n in nodes])


def projects_table(projects: Sequence[Wire], now: datetime, *, wide: bool = False) -> str:
    """projects_table is the output of `get projects` (with `-o wide`: SERVICES, CPU, MEMORY), from the wire objects."""
    headers = PROJECT_WIDE_COLUMNS if wide else PROJECT_COLUMNS
    return table(headers, [project_row(p, now, wide=wide) for p in projects])


def to_json(wire: Wire) -> str:
    """to_json is exactly the wire JSON, indented."""
    return json.dumps(wire, indent=2)


def to_yaml(wire: Wire) -> str:
    """to_yaml is the wire JSON as block YAML, keys in wire order."""
    import yaml  # about 15 ms, for -o yaml only

    return yaml.safe_dump(dict(wire), sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip("\n")


# --- describe -----------------------------------------------------------------------------------


def _is_scalar(value: object) -> bool:
    return not isinstance(value, dict | list) or (isinstance(value, list) and all(_is_scalar(v) for v in value))


def _scalar(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or NONE
    return _text(value)


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


def format_time(value: datetime) -> str:
    """format_time is controlplane.api's, imported when a describe page is printed (the models are loaded then)."""
    from controlplane.api import format_time

    return format_time(value)


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
            _text(c.reason),
            _text(c.message),
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
    lines += conditions_table(obj.status.conditions)
    return "\n".join(lines)


#: How many of the newest history entries `describe node` shows per list.
HISTORY_SHOWN = 5


def history_lines(history: NodeHistory, shown: int = HISTORY_SHOWN) -> list[str]:
    """history_lines is the history part of `describe node`: the newest throughput samples and path changes."""
    samples = [
        [format_time(s.time) if s.time else NONE, _text(s.download), _text(s.upload), _text(s.bytes_used)]
        for s in history.throughput[-shown:]
    ]
    changes = [
        [
            format_time(c.time) if c.time else NONE,
            c.peer,
            _text(c.from_mode) if c.from_mode else "unknown",
            _text(c.to_mode) + (f"({c.derp_region})" if c.derp_region else ""),
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
