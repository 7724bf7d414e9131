"""`caractrl mesh`: the fleet's path matrix (Direct / DERP(region) / unknown, with latency) from every Node's peers."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import click

from .context import Env, run

if TYPE_CHECKING:
    from controlplane.api import NetworkMode, Node, NodeList
    from controlplane.client import Client

CORNER: Final = "FROM \\ TO"
SELF: Final = "-"
UNKNOWN: Final = "unknown"
#: The style key of a path reported by a Node whose facts are stale (`controlplane.api.fact_freshness`).
STALE: Final = "stale"
GAP: Final = "   "
#: ANSI styles per cell kind: green Direct, yellow DERP, dim unknown.
STYLES: Final[Mapping[str, Mapping[str, Any]]] = {
    "Direct": {"fg": "green"},
    "DERP": {"fg": "yellow"},
    UNKNOWN: {"dim": True},
    SELF: {"dim": True},
    STALE: {"dim": True},
}


def _path_fields(mode: NetworkMode | None, region: str | None, latency: float | None) -> tuple[str, str]:
    """_path_fields returns (style key, cell text) of one path."""
    if mode is None:
        return UNKNOWN, UNKNOWN
    label = "Direct" if mode.value == "Direct" else f"DERP({region or '?'})"  # the STYLES key
    if latency is not None:
        label += f" {latency:.1f}ms" if latency < 10 else f" {latency:.0f}ms"
    return mode.value, label


def is_stale(node: Node, now: datetime) -> bool:
    """is_stale is the server's verdict on the Node's facts (`status.factsStale`), else the freshness rule's."""
    from controlplane.api import fact_freshness

    served = node.status.facts_stale
    return served if served is not None else fact_freshness(node.status, now).stale


def _stale_fields(mode: NetworkMode | None, region: str | None, age: str) -> tuple[str, str]:
    """_stale_fields is a stale path's cell: its last known mode with `?`, never a latency (it is not current)."""
    if mode is None:
        return UNKNOWN, UNKNOWN
    label = "Direct?" if mode.value == "Direct" else f"DERP({region or '?'})?"
    return STALE, f"{label} stale {age}" if age else label


def paths(nodes: Sequence[Node], now: datetime) -> list[dict[str, Any]]:
    """paths lists every path a Node reports to another Node, ordered by from then to (the `-o json` entries);
    `stale` is true when the reporting Node has not reconfirmed it within the grace."""
    from controlplane.api import format_time  # the models are loaded by now: these are decoded Nodes

    names = {node.name for node in nodes}
    found = []
    for node in sorted(nodes, key=lambda n: n.name):
        stale = is_stale(node, now)
        network = node.status.network
        for peer in sorted((network.peers or []) if network else [], key=lambda p: p.name):
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
                    }
                )
    return found


def matrix(nodes: Sequence[Node], now: datetime) -> list[list[tuple[str, str]]]:
    """matrix is the table as (style key, text) cells: a header row, then one row per Node in name order. The row of
    a Node whose facts are stale shows its last known modes as `Direct?` / `DERP(r)?`, its own path with the age."""
    ordered = sorted(nodes, key=lambda n: n.name)
    names = [node.name for node in ordered]
    # The first column: each Node's own path to the control plane (the peer name the server's history uses).
    from controlplane.api import CONTROL_PLANE_PEER, fact_freshness, format_age

    rows = [[("", CORNER), ("", CONTROL_PLANE_PEER), *(("", name) for name in names)]]
    for node in ordered:
        network = node.status.network
        stale = is_stale(node, now)
        if stale:
            age = format_age(fact_freshness(node.status, now).age)
            own = _stale_fields(network.mode if network else None, network.derp_region if network else None, age)
        else:
            own = _path_fields(network.mode, network.derp_region, network.latency_ms) if network else (UNKNOWN, UNKNOWN)
        reported = {peer.name: peer for peer in (network.peers or [])} if network else {}
        row = [("", node.name), own]
        for name in names:
            peer = reported.get(name)
            if name == node.name:
                row.append((SELF, SELF))
            elif peer is None:
                row.append((UNKNOWN, UNKNOWN))
            elif stale:
                row.append(_stale_fields(peer.mode, peer.derp_region, ""))
            else:
                row.append(_path_fields(peer.mode, peer.derp_region, peer.latency_ms))
        rows.append(row)
    return rows


def render(rows: Sequence[Sequence[tuple[str, str]]], *, color: bool) -> str:
    """render aligns the cells in columns; with color, each path cell is styled after its mode."""
    widths = [max(len(row[i][1]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = []
        for (style, text), width in zip(row, widths, strict=True):
            padded = text.ljust(width)
            cells.append(click.style(padded, **STYLES[style]) if color and style in STYLES else padded)
        lines.append(GAP.join(cells).rstrip())
    return "\n".join(lines)


def _use_color(choice: str, environ: Mapping[str, str]) -> bool:
    if choice != "auto":
        return choice == "always"
    return "NO_COLOR" not in environ and sys.stdout.isatty()


@click.command()
@click.option("-o", "--output", type=click.Choice(["json"]), help='json: {"nodes": [...], "paths": [...]}.')
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="auto: colour only on a terminal and without $NO_COLOR.",
)
@click.pass_obj
def mesh(env: Env, output: str | None, color: str) -> None:
    """Show which Nodes reach each other Direct or through DERP, and how fast (a row per Node, from → to)."""

    async def fetch(client: Client) -> NodeList:
        return await client.list_nodes()

    nodes = run(env, fetch).items
    if output == "json":
        names = sorted(node.name for node in nodes)
        click.echo(json.dumps({"nodes": names, "paths": paths(nodes, env.now())}, indent=2))
        return
    if not nodes:
        click.echo("No resources found", err=True)
        return
    click.echo(render(matrix(nodes, env.now()), color=_use_color(color, env.environ)), color=True)
