"""How caractrl shows the server's JSON: aligned tables for people, wire JSON and YAML for tools (describe's pages,
which read the models, are in `pages`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

#: One object as the server sends it (`Client.get_raw`): tables read these directly, since decoding 1,000 Nodes
#: into models takes about 200 ms and a table needs a dozen fields.
JSONObject = Mapping[str, Any]

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


def cell(value: object) -> str:
    """cell is how a table or page shows one value: <none> for nothing, true/false for booleans."""
    if value is None or value == "" or value == [] or value == {}:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field(obj: JSONObject, *path: str) -> Any:
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


def ready_reason(node: JSONObject) -> str | None:
    """ready_reason is the reason of the Node's Ready condition, or None."""
    for condition in _field(node, "status", "conditions") or ():
        if _field(condition, "type") == "Ready":
            reason = _field(condition, "reason")
            return reason if isinstance(reason, str) and reason else None
    return None


def node_state(node: JSONObject) -> str:
    """node_state is the STATE cell: the state, for NotReady why (`NotReady(ControlLinkDown)`), then, as kubectl's
    STATUS, `,SchedulingDisabled` for a cordoned Node; a draining one shows its readiness then `,Draining`
    (`Ready,Draining`, `NotReady(HeartbeatTimeout),Draining`)."""
    state = _field(node, "status", "state")
    reason = ready_reason(node)
    if state == "Draining":
        conditions = _field(node, "status", "conditions")
        ready = any(_field(c, "type") == "Ready" and _field(c, "status") == "True" for c in conditions or [])
        readiness = "Ready" if ready else f"NotReady({reason})" if reason else "NotReady"
        return f"{readiness},Draining"
    text = f"NotReady({reason})" if state == "NotReady" and reason else cell(state)
    return f"{text},SchedulingDisabled" if _field(node, "spec", "unschedulable") is True else text


def facts_stale(node: JSONObject) -> bool:
    """facts_stale is the server's verdict (`status.factsStale`, from `controlplane.api.facts_stale`): the Node has
    not reconfirmed its facts within the grace, so its modes, latencies and throughput are last known values."""
    return _field(node, "status", "factsStale") is True


def confirmed_age(node: JSONObject, now: datetime) -> str:
    """confirmed_age is how long ago the Node last confirmed its facts (the served factsConfirmedAt, else its last
    heartbeat), e.g. `6m`."""
    confirmed = _field(node, "status", "factsConfirmedAt") or _field(node, "status", "lastHeartbeat")
    return age(wire_time(confirmed), now)


def latency_text(node: JSONObject, latency: object, now: datetime, *, stale: bool) -> str:
    """latency_text is the LATENCY cell: `0.35ms`; `stale 6m` (since the facts were last confirmed) when the Node
    is stale; `<none>` when the Node never confirmed any fact (no fact is not a stale fact)."""
    if not stale:
        return milliseconds(latency if isinstance(latency, int | float) else None)
    confirmed = confirmed_age(node, now)
    return NONE if confirmed == NONE else f"stale {confirmed}"


def throughput_text(network: JSONObject, now: datetime, *, stale: bool) -> str:
    """throughput_text is `down/up` with the measurement's age (`94.1Mbps/41.0Mbps 3m ago`); `?` after the rates
    when the Node is stale (the measurement is not known to hold any more)."""
    throughput = _field(network, "throughput")
    if not throughput or not (throughput.get("download") or throughput.get("upload")):
        return NONE
    rate = f"{throughput.get('download') or '?'}/{throughput.get('upload') or '?'}" + ("?" if stale else "")
    tested = wire_time(throughput.get("lastTestTime"))
    return rate if tested is None else f"{rate} {age(tested, now)} ago"


def node_row(node: JSONObject, now: datetime, *, wide: bool = False) -> list[str]:
    """node_row is one line of `get nodes`; a stale Node's mode reads `Direct?` and its latency `stale 6m`."""
    network = _field(node, "status", "network") or {}
    stale = facts_stale(node)
    mode = _field(network, "mode")
    row = [
        str(_field(node, "metadata", "name")),
        node_state(node),
        cell(_field(network, "ip")),
        f"{mode}?" if stale and mode else cell(mode),
        age(wire_time(_field(node, "metadata", "createdAt")), now),
    ]
    if wide:
        latency = _field(network, "latencyMs")
        row += [
            cell(_field(network, "dnsName")),
            cell(_field(network, "derpRegion") if mode == "DERP" else None),  # the relay; a Direct path has none
            latency_text(node, latency, now, stale=stale),
            throughput_text(network, now, stale=stale),
            cell(bool(_field(node, "spec", "unschedulable"))),
        ]
    return row


def conditions_summary(conditions: object) -> str:
    """conditions_summary renders wire conditions as `Type=Status,...` for one table cell."""
    items = conditions if isinstance(conditions, list) else []
    return ",".join(f"{_field(c, 'type')}={_field(c, 'status')}" for c in items) or NONE


#: Phases in which a Project sits on its Node: on a Node that is not Ready, the phase is not the whole truth.
ON_NODE_PHASES = ("Scheduled", "Running")


def node_states(node_list: JSONObject | None) -> dict[str, str]:
    """node_states maps each Node of a wire NodeList to its state ("Unknown" when unset)."""
    items = _field(node_list, "items") if node_list is not None else None
    return {
        str(_field(node, "metadata", "name")): str(_field(node, "status", "state") or "Unknown")
        for node in items or ()
        if isinstance(node, Mapping)
    }


def project_phase(project: JSONObject, node_states: Mapping[str, str] | None) -> str:
    """project_phase is the PHASE cell: `Running(NodeNotReady)` when the Project's Node is not Ready (its last
    reported phase may no longer hold), `Running(NodeMissing)` when the Node is gone; else the phase."""
    phase = _field(project, "status", "phase")
    node = _field(project, "status", "nodeRef")
    if node_states is None or phase not in ON_NODE_PHASES or not node:
        return cell(phase)
    state = node_states.get(node)
    if state is None:
        return f"{phase}(NodeMissing)"
    return f"{phase}(Node{state})" if state != "Ready" else str(phase)


def project_row(
    project: JSONObject, now: datetime, *, wide: bool = False, node_states: Mapping[str, str] | None = None
) -> list[str]:
    """project_row is one line of `get projects`; node_states (Node name → state) marks Projects on unready Nodes."""
    row = [
        str(_field(project, "metadata", "name")),
        project_phase(project, node_states),
        cell(_field(project, "status", "nodeRef")),
        conditions_summary(_field(project, "status", "conditions")),
        age(wire_time(_field(project, "metadata", "createdAt")), now),
    ]
    if wide:
        services = _field(project, "spec", "services")
        row += [
            ",".join(str(_field(service, "name")) for service in services or ()) or NONE,
            cell(_field(project, "spec", "resources", "cpu")),
            cell(_field(project, "spec", "resources", "memory")),
        ]
    return row


def nodes_table(nodes: Sequence[JSONObject], now: datetime, *, wide: bool = False) -> str:
    """nodes_table is the output of `get nodes`, from the wire objects.

    With `-o wide` it adds DNS, the path to the control plane (DERP: the relay region of a relayed path, LATENCY),
    THROUGHPUT down/up and UNSCHEDULABLE.
    """
    return table(NODE_WIDE_COLUMNS if wide else NODE_COLUMNS, [node_row(n, now, wide=wide) for n in nodes])


def projects_table(
    projects: Sequence[JSONObject], now: datetime, *, wide: bool = False, node_states: Mapping[str, str] | None = None
) -> str:
    """projects_table is the output of `get projects` (with `-o wide`: SERVICES, CPU, MEMORY), from the wire objects."""
    headers = PROJECT_WIDE_COLUMNS if wide else PROJECT_COLUMNS
    return table(headers, [project_row(p, now, wide=wide, node_states=node_states) for p in projects])


def to_json(wire: JSONObject) -> str:
    """to_json is exactly the wire JSON, indented."""
    return json.dumps(wire, indent=2)


def to_yaml(wire: JSONObject) -> str:
    """to_yaml is the wire JSON as block YAML, keys in wire order."""
    import yaml  # about 15 ms, for -o yaml only

    return yaml.safe_dump(dict(wire), sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip("\n")
