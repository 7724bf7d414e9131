"""The server's settings: the table of cara-server's settings (flag, variable, TOML key, parser, default, help) and
the Settings the app is built with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from controlplane.api import (
    MAX_BODY_BYTES,
    SERVER_PORT,
    Setting,
    SettingsTable,
    as_duration,
    as_list,
    as_path,
    as_text,
    describe_errors,
    fraction,
    int_range,
    one_of,
)

from .roles import RolesConfig

#: Default TCP port of the API (design §3.1).
DEFAULT_PORT = SERVER_PORT


LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_roles(raw: object) -> RolesConfig:
    """parse_roles reads the [roles] table ({admin,viewer,node,scraper} = {users = [...], tags = [...]})."""
    if not isinstance(raw, dict):
        raise ValueError(f"{raw!r} is not a table of admin, viewer, node and scraper")
    try:
        return RolesConfig.model_validate(raw)
    except ValidationError as exc:
        raise ValueError("; ".join(describe_errors(exc))) from None


def _positive(raw: object) -> timedelta:
    return timedelta(seconds=as_duration(raw))


#: Every setting of cara-server, in the order `--help` and docs/server.md list them; the file is
#: `--config /etc/caravanserai/server.toml` (keys are the names below).
TABLE: Final = SettingsTable(
    Setting(
        "listen",
        "CARA_LISTEN",
        as_list,
        (),
        "HOST:PORT to listen on (a flag per address; comma-separated in the variable).",
        shown=f"this machine's tailnet IPs, port {SERVER_PORT}",
        multiple=True,
    ),
    Setting(
        "socket", "TS_SOCKET", as_text, None, "tailscaled LocalAPI socket.", shown="/var/run/tailscale/tailscaled.sock"
    ),
    Setting("store", "CARA_STORE", as_text, None, "sqlite:///PATH or postgresql://...", shown="SQLite in data_dir"),
    Setting(
        "data_dir",
        "CARA_DATA_DIR",
        as_path,
        Path("~/.local/share/caravanserai"),
        "Where the default SQLite store lives (the unit: /var/lib/caravanserai, its StateDirectory).",
    ),
    Setting(
        "heartbeat_interval",
        "CARA_HEARTBEAT_INTERVAL",
        _positive,
        timedelta(seconds=10),
        "How often agents beat.",
        shown="10s",
    ),
    Setting(
        "grace", "CARA_GRACE", _positive, timedelta(seconds=40), "Silence after which a node is NotReady.", shown="40s"
    ),
    Setting(
        "reschedule_after",
        "CARA_RESCHEDULE_AFTER",
        _positive,
        timedelta(minutes=3),
        "A NotReady node's projects go back to Pending after this long (docs/lifecycle.md).",
        shown="3m",
    ),
    Setting(
        "control_link_limit",
        "CARA_CONTROL_LINK_LIMIT",
        _positive,
        timedelta(hours=1),
        "A ControlLinkDown node (silent to us, reached by a fellow agent) keeps its projects this long at most.",
        shown="1h",
    ),
    Setting(
        "isolation_fraction",
        "CARA_ISOLATION_FRACTION",
        fraction,
        0.5,
        "More than this fraction of the nodes (at least 3) silent at once: the control plane is the one cut off.",
    ),
    Setting(
        "replica_id",
        "CARA_REPLICA_ID",
        as_text,
        None,
        "This replica's name in the leader lease.",
        shown="hostname-pid",
    ),
    Setting(
        "leader_ttl",
        "CARA_LEADER_TTL",
        _positive,
        timedelta(seconds=10),
        "Leader lease lifetime, renewed every third of it; a dead leader is replaced within TTL + TTL/3.",
        shown="10s",
    ),
    Setting(
        "history_limit",
        "CARA_HISTORY_LIMIT",
        int_range(1, 10_000),
        50,
        "Throughput samples and path changes kept per node (each).",
    ),
    Setting(
        "metrics_pair_limit",
        "CARA_METRICS_PAIR_LIMIT",
        int_range(0, 1_000_000),
        10_000,
        "Most node → peer paths exported as /metrics series.",
    ),
    Setting(
        "roles",
        None,
        parse_roles,
        RolesConfig(),
        "Roles of tailnet users and tags: [roles.admin], [roles.viewer], [roles.node], [roles.scraper].",
        shown="node: tag:cara-node; nobody else",
        flag=False,
    ),
    Setting("log_level", "CARA_LOG_LEVEL", one_of(*LOG_LEVELS), "info", "debug, info, warning or error."),
)


def _default(name: str) -> Any:
    return TABLE[name].default


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings holds everything the app needs to know that is not a collaborator."""

    # Dev: loopback binding, every caller an administrator (design §5.5).
    dev: bool = False
    # DataDir: where the default SQLite store lives.
    data_dir: Path = field(default_factory=lambda: Path(_default("data_dir")).expanduser())
    # HeartbeatInterval: how often agents beat; documented to agents, used for lease flushing.
    heartbeat_interval: timedelta = _default("heartbeat_interval")
    # Grace: silence after which a node turns NotReady (design §4: 40 s).
    grace: timedelta = _default("grace")
    # RescheduleAfter: the Projects of a Node NotReady (HeartbeatTimeout) this long go back to Pending.
    reschedule_after: timedelta = _default("reschedule_after")
    # ControlLinkLimit: ... and those of a ControlLinkDown Node (witnessed by a fellow agent) after this long.
    control_link_limit: timedelta = _default("control_link_limit")
    # IsolationFraction: more than this fraction of the Nodes (at least 3) silent at once is our own isolation.
    isolation_fraction: float = _default("isolation_fraction")
    # MaxBodyBytes: requests with a larger body get 413; manifests are small, and a bound keeps a hostile
    # client from filling memory.
    max_body_bytes: int = MAX_BODY_BYTES
    # LeaseFlushInterval: how often renewed leases are persisted in one batch. Shorter than the grace, so a
    # restart loses at most this much lease history (and the restart rule covers that gap).
    lease_flush_interval: timedelta = timedelta(seconds=5)
    # HistoryLimit: throughput samples and path changes kept per Node (each list); older entries are dropped.
    history_limit: int = _default("history_limit")
    # MetricsPairLimit: the most node → peer paths exported as per-pair metric series; bounds /metrics cardinality
    # (the path to the control plane of every Node is always exported).
    metrics_pair_limit: int = _default("metrics_pair_limit")
    # EventLimit: events kept in all (the oldest go first); a transition of a Node or Project writes one or two.
    event_limit: int = 10_000
    # TransitionRetention: how long Ready and Direct transitions are kept for availability (its longest window
    # is 7 days; each subject's last transition is kept whatever its age, as the state its window starts in).
    transition_retention: timedelta = timedelta(days=8)
