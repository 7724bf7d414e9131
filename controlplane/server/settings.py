"""The server's settings, read once at start and passed to create_app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from controlplane.api import MAX_BODY_BYTES, SERVER_PORT

#: Default TCP port of the API (design §3.1).
DEFAULT_PORT = SERVER_PORT


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings holds everything the app needs to know that is not a collaborator."""

    # Dev: loopback binding, every caller an administrator (design §5.5).
    dev: bool = False
    # DataDir: where the default SQLite store lives.
    data_dir: Path = field(default_factory=lambda: Path("~/.local/share/caravanserai").expanduser())
    # HeartbeatInterval: how often agents beat; documented to agents, used for lease flushing.
    heartbeat_interval: timedelta = timedelta(seconds=10)
    # Grace: silence after which a node turns NotReady (design §4: 40 s).
    grace: timedelta = timedelta(seconds=40)
    # RescheduleAfter: the Projects of a Node NotReady (HeartbeatTimeout) this long go back to Pending.
    reschedule_after: timedelta = timedelta(minutes=3)
    # ControlLinkLimit: ... and those of a ControlLinkDown Node (witnessed by a fellow agent) after this long.
    control_link_limit: timedelta = timedelta(hours=1)
    # IsolationFraction: more than this fraction of the Nodes (at least 3) silent at once is our own isolation.
    isolation_fraction: float = 0.5
    # MaxBodyBytes: requests with a larger body get 413; manifests are small, and a bound keeps a hostile
    # client from filling memory.
    max_body_bytes: int = MAX_BODY_BYTES
    # LeaseFlushInterval: how often renewed leases are persisted in one batch. Shorter than the grace, so a
    # restart loses at most this much lease history (and the restart rule covers that gap).
    lease_flush_interval: timedelta = timedelta(seconds=5)
    # HistoryLimit: throughput samples and path changes kept per Node (each list); older entries are dropped.
    history_limit: int = 50
    # MetricsPairLimit: the most node → peer paths exported as per-pair metric series; bounds /metrics cardinality
    # (the path to the control plane of every Node is always exported).
    metrics_pair_limit: int = 10_000
    # EventLimit: events kept in all (the oldest go first); a transition of a Node or Project writes one or two.
    event_limit: int = 10_000
    # TransitionRetention: how long Ready and Direct transitions are kept for availability (its longest window
    # is 7 days; each subject's last transition is kept whatever its age, as the state its window starts in).
    transition_retention: timedelta = timedelta(days=8)
