"""What the server adds to liveness on the request path: the served view of a Node's freshness, and the witness
exchange of a heartbeat (recording the witnesses a beat carries, naming the silent Nodes its agent should look at)."""

from __future__ import annotations

from datetime import datetime

from controlplane.api import WITNESS_HEADER, Heartbeat, Node, facts_stale, silent_reason

from .context import ServerContext


def served(node: Node, context: ServerContext) -> Node:
    """served is node as the API shows it: status.lastHeartbeat from the in-memory lease (the stored one lags by a
    flush), and status.factsStale from the freshness rule (`controlplane.api.facts_stale`, with this server's grace)."""
    status = node.status
    confirmed = status.last_heartbeat
    update: dict[str, object] = {}
    lease = context.leases.get(node.name)
    if lease is not None and (confirmed is None or confirmed < lease.renewed_at):
        confirmed = update["last_heartbeat"] = lease.renewed_at
    update["facts_stale"] = facts_stale(confirmed, silent_reason(status), context.now(), context.settings.grace)
    return node.model_copy(update={"status": status.model_copy(update=update)})


def witness_exchange(context: ServerContext, name: str, beat: Heartbeat, now: datetime) -> dict[str, str]:
    """witness_exchange records the witnesses node `name`'s beat carries and returns the response headers asking its
    agent to look at silent Nodes (`Cara-Witness: edge1,edge3`), empty when none is wanted. Only the leader wants
    witnesses, so on other replicas this is a dictionary lookup."""
    network = beat.network
    if network is not None and network.witnessed:
        context.witnesses.record(name, network.witnessed, now)
    asked = context.witnesses.ask(name, now, context.settings.heartbeat_interval)
    return {WITNESS_HEADER: ",".join(asked)} if asked else {}
