"""`caractrl mesh`: the fleet's paths at a glance: a one-line summary and the paths that are not Direct (with the
agent's reason and since when); `--matrix` for a grid of one-character cells; `-o json` for tools."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import click

from controlplane.api import (
    CONTROL_PLANE_PEER,
    Node,
    NodeList,
    PeerPath,
    fact_freshness,
    format_time,
    node_facts_stale,
    path_counts,
    path_kind,
)
from controlplane.client import Client

from . import printers
from .context import Env, run
from .get import label_selector

#: One-character cells of `--matrix`, and what each means (the legend prints them in this order).
CELLS: Final = {
    "Direct": ("·", "Direct"),
    "DERP": ("D", "DERP"),
    "relay": ("R", "peer relay"),
    "unknown": ("?", "unknown (probed, no answer, or idle)"),
    "notprobed": (" ", "not probed (no agent reported the pair)"),
    "stale": ("s", "stale (the Node's last known path, not current)"),
    "self": ("\\", "self"),
}
#: ANSI styles of the cells and the list's PATH column.
STYLES: Final[Mapping[str, Mapping[str, Any]]] = {
    "Direct": {"fg": "green"},
    "DERP": {"fg": "yellow"},
    "relay": {"fg": "magenta"},
    "unknown": {"dim": True},
    "stale": {"dim": True},
    "self": {"dim": True},
}
#: The column of each Node's own path to the control plane (the peer name the server's history uses).
CONTROL_PLANE: Final = CONTROL_PLANE_PEER
#: The REASON of a stale Node's path that had none of its own.
STALE: Final = "Stale"
#: The sentence of a reason is cut to this many characters in the list (`-o wide` prints it whole).
WHY_WIDTH: Final = 60


@dataclass(frozen=True, slots=True)
class Row:
    """Row is one path that is not Direct, as the default output lists it."""

    source: str
    target: str
    kind: str
    text: str
    reason: str
    since: datetime | None
    message: str
    # stale: the reporting Node has not reconfirmed its facts within the grace: a last known path, not current.
    stale: bool = False


def _path_text(mode: str | None, region: str | None) -> str:
    if mode == "Direct":
        return "Direct"
    return f"DERP({region})" if mode == "DERP" and region else (mode or "unknown")


def _peers(node: Node) -> dict[str, PeerPath]:
    network = node.status.network
    return {peer.name: peer for peer in (network.peers or [])} if network else {}


def paths(nodes: Sequence[Node], now: datetime) -> list[dict[str, Any]]:
    """paths lists every path a Node reports to another Node, ordered by from then to (the `-o json` entries);
    `stale` is true when the reporting Node has not reconfirmed it within the grace."""
    names = {node.name for node in nodes}
    found = []
    for node in sorted(nodes, key=lambda n: n.name):
        stale = node_facts_stale(node, now)
        for peer in sorted(_peers(node).values(), key=lambda p: p.name):
            if peer.name in names and peer.name != node.name:
                found.append(
                    {
                        "from": node.name,
                        "to": peer.name,
                        "mode": peer.mode.value if peer.mode else None,
                        "derpRegion": peer.derp_region,
                        "latencyMs": peer.latency_ms,
                        "lastSeen": format_time(peer.last_seen) if peer.last_seen else None,
                        "stale": stale,
                        "relayReason": peer.relay_reason,
                        "relayMessage": peer.relay_message,
                        "since": format_time(peer.since) if peer.since else None,
                    }
                )
    return found


def not_direct(nodes: Sequence[Node], now: datetime) -> list[Row]:
    """not_direct lists each path (to another Node, or to the control plane) that is not Direct, or not known to be
    now: relayed first, then unknown, then every path of a Node whose facts are stale (its last known mode with `?`,
    SINCE its last confirmation), each by from then to."""
    names = {node.name for node in nodes}
    rows = []
    for node in nodes:
        network = node.status.network
        if node_facts_stale(node, now):
            confirmed = fact_freshness(node.status, now).confirmed_at
            why = "the Node's facts are stale: last known, not current"
            if network is not None and network.mode is not None:
                text = _path_text(network.mode.value, network.derp_region) + "?"
                reason = network.relay_reason or STALE
                rows.append(Row(node.name, CONTROL_PLANE, "stale", text, reason, confirmed, why, True))
            for peer in _peers(node).values():
                if peer.name in names and peer.name != node.name:
                    mode = peer.mode.value if peer.mode else None
                    text = _path_text(mode, peer.derp_region) + ("?" if mode else "")
                    rows.append(
                        Row(node.name, peer.name, "stale", text, peer.relay_reason or STALE, confirmed, why, True)
                    )
            continue
        if network is not None and network.mode is not None and network.mode.value != "Direct":
            kind = path_kind(network.mode, network.relay_reason)
            text = _path_text(network.mode.value, network.derp_region)
            reason, message = network.relay_reason or "", network.relay_message or ""
            rows.append(Row(node.name, CONTROL_PLANE, kind, text, reason, None, message))
        for peer in _peers(node).values():
            if peer.name not in names or peer.name == node.name:
                continue
            mode = peer.mode.value if peer.mode else None
            kind = path_kind(peer.mode, peer.relay_reason)
            if kind != "Direct":
                since = peer.since or peer.last_seen
                text = _path_text(mode, peer.derp_region)
                rows.append(
                    Row(node.name, peer.name, kind, text, peer.relay_reason or "", since, peer.relay_message or "")
                )
    return sorted(rows, key=lambda r: (r.stale, r.kind == "unknown", r.source, r.target))


def summary(nodes: Sequence[Node], now: datetime) -> dict[str, int]:
    """summary is the `-o json` summary and the summary line's counts: api.path_counts, the rule the fleet page's
    card applies too (pairs between Nodes, and relayedControl: Nodes whose own path to the control plane is
    relayed)."""
    return path_counts(nodes, now)


def summary_line(counts: Mapping[str, int]) -> str:
    """summary_line is the one-line summary of the default output."""
    reported = counts["direct"] + counts["relayed"] + counts["unknown"] + counts["stale"]
    control = counts["relayedControl"]
    return (
        f"{counts['nodes']} nodes ({counts['notReady']} NotReady) · {reported} pairs reported:"
        f" {counts['direct']} Direct, {counts['relayed']} relayed, {counts['unknown']} unknown, {counts['stale']} stale"
        f" · {counts['notProbed']} pairs not probed · {control} relayed control path{'' if control == 1 else 's'}"
    )


def list_lines(rows: Sequence[Row], now: datetime, *, wide: bool, color: bool) -> list[str]:
    """list_lines is the table of the paths that are not Direct: FROM TO PATH REASON SINCE WHY."""
    if not rows:
        return ["Every reported path is Direct."]
    cells = []
    for row in rows:
        why = row.message if wide or len(row.message) <= WHY_WIDTH else row.message[: WHY_WIDTH - 1].rstrip() + "…"
        since = printers.age(row.since, now) if row.since else printers.NONE
        cells.append([row.source, row.target, row.text, row.reason or printers.NONE, since, why or printers.NONE])
    lines = printers.table(["FROM", "TO", "PATH", "REASON", "SINCE", "WHY"], cells).splitlines()
    if not color:
        return lines
    start = lines[0].index("PATH")
    styled = [lines[0]]
    for line, row in zip(lines[1:], rows, strict=True):
        end = start + len(row.text)
        styled.append(line[:start] + click.style(line[start:end], **STYLES.get(row.kind, {})) + line[end:])
    return styled


def matrix_lines(nodes: Sequence[Node], now: datetime, *, color: bool) -> list[str]:
    """matrix_lines is the `--matrix` grid: a legend, column numbers stacked vertically, then one row per Node
    (its number, its name, its path to the control plane, then one character per Node), in name order."""
    ordered = sorted(nodes, key=lambda n: n.name)
    width = len(str(len(ordered)))
    name_width = max(len(n.name) for n in ordered)

    def cell(kind: str) -> str:
        char = CELLS[kind][0]
        return click.style(char, **STYLES[kind]) if color and kind in STYLES else char

    legend = "Legend: " + "  ".join(
        f"{'(blank)' if char == ' ' else char} {meaning}" for char, meaning in CELLS.values()
    )
    lines = [
        legend,
        f"Column C is each Node's path to the control plane ({CONTROL_PLANE}); columns are the rows' numbers.",
    ]
    pad = " " * (width + 1 + name_width + 1)
    numbers = [str(i).rjust(width) for i in range(1, len(ordered) + 1)]
    for digit in range(width):
        lines.append((pad + ("C " if digit == width - 1 else "  ") + "".join(n[digit] for n in numbers)).rstrip())
    for i, node in enumerate(ordered, start=1):
        network = node.status.network
        own = path_kind(network.mode, network.relay_reason) if network is not None else "unknown"
        reported = _peers(node)
        stale = node_facts_stale(node, now)
        if stale and own != "unknown":
            own = "stale"
        row = []
        for other in ordered:
            if other.name == node.name:
                row.append(cell("self"))
            elif other.name not in reported:
                row.append(cell("notprobed"))
            else:
                peer = reported[other.name]
                kind = path_kind(peer.mode, peer.relay_reason)
                row.append(cell("stale" if stale and kind != "unknown" else kind))
        lines.append(f"{str(i).rjust(width)} {node.name:<{name_width}} {cell(own)} {''.join(row)}".rstrip())
    return lines


def _use_color(choice: str, environ: Mapping[str, str]) -> bool:
    if choice != "auto":
        return choice == "always"
    return "NO_COLOR" not in environ and sys.stdout.isatty()


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Choice(["json", "wide"]),
    help='json: {"nodes", "paths", "summary"}; wide: whole reasons.',
)
@click.option("-l", "--selector", multiple=True, help="Only Nodes with these labels: key=value[,key=value].")
@click.option("--matrix", "as_matrix", is_flag=True, help="A grid of one-character cells, with a legend.")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="auto: colour only on a terminal and without $NO_COLOR.",
)
@click.pass_obj
def mesh(env: Env, output: str | None, selector: tuple[str, ...], as_matrix: bool, color: str) -> None:
    """Show which paths between Nodes are not Direct, and why (a summary line, then the list; --matrix: the grid)."""
    selector_text = label_selector(selector)

    async def fetch(client: Client) -> NodeList:
        return await client.list_nodes(label_selector=selector_text)

    nodes = run(env, fetch).items
    if output == "json":
        names = sorted(node.name for node in nodes)
        now = env.now()
        click.echo(json.dumps({"nodes": names, "paths": paths(nodes, now), "summary": summary(nodes, now)}, indent=2))
        return
    if not nodes:
        click.echo("No resources found", err=True)
        return
    colored = _use_color(color, env.environ)
    if as_matrix:
        click.echo("\n".join(matrix_lines(nodes, env.now(), color=colored)), color=True)
        return
    now = env.now()
    rows = not_direct(nodes, now)
    lines = [summary_line(summary(nodes, now)), *list_lines(rows, now, wide=output == "wide", color=colored)]
    click.echo("\n".join(lines), color=True)
