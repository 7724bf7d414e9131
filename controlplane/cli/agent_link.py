"""Finding a Project's agent, as the Go caractl does: Project → status.nodeRef → that Node's status.network.

`--node NAME` skips the Project lookup and `--node HOST:PORT` skips both. The agent's address is the Node's
tailnet IP, else its MagicDNS name resolved through the local tailscaled (never OS DNS); its port is
`agentPort`, or 9090 with a warning when the Node never reported one.
"""

from __future__ import annotations

import json
from typing import Final

import click

from controlplane.api import Node
from controlplane.client import Client
from mesh import LocalClient, MeshError, resolve

from .context import fail

#: The agent port the Go caractl assumes when a Node reports none.
DEFAULT_AGENT_PORT: Final = 9090


def split_target(target: str) -> tuple[str, str]:
    """split_target reads PROJECT/SERVICE; raises Failure naming the argument."""
    project, sep, service = target.partition("/")
    if not sep or not project or not service or "/" in service:
        raise fail(f'invalid target "{target}": expected PROJECT/SERVICE')
    return project, service


async def agent_address(client: Client, project: str, node: str | None, *, socket: str | None = None) -> str:
    """agent_address returns `host:port` of the agent running project (or of node, or node itself if host:port)."""
    if node and ":" in node:
        return node
    if not node:
        bound = await client.get_project(project)
        node = bound.status.node_ref
        if not node:
            raise fail(f"project {project} is not bound to a node (phase {bound.status.phase})")
    return await _node_address(await client.get_node(node), socket)


async def _node_address(node: Node, socket: str | None) -> str:
    network = node.status.network
    port = network.agent_port if network is not None and network.agent_port else 0
    if not port:
        click.echo(f"Warning: node {node.name} reports no agentPort; trying {DEFAULT_AGENT_PORT}", err=True)
        port = DEFAULT_AGENT_PORT
    if network is not None and network.ip:
        return f"{network.ip}:{port}"
    if network is not None and network.dns_name:
        try:
            async with LocalClient(socket) as local:
                ip = resolve(await local.status(), network.dns_name)[0]
        except MeshError as exc:
            raise fail(f"cannot resolve node {node.name}'s name {network.dns_name}: {exc}") from None
        return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    raise fail(f"node {node.name} reports no network address (status.network.ip / dnsName)")


def agent_error(status: int, body: bytes) -> str:
    """agent_error renders an agent's error answer like the rest of caractrl: `<title>: <detail>`, else the body."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("title"):
        detail = doc.get("detail") or "; ".join(str(e) for e in doc.get("errors") or ())
        return f"{doc['title']}: {detail}" if detail else str(doc["title"])
    return f"agent returned {status}: {body.decode('utf-8', 'replace').strip()}"
