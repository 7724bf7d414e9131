"""The one frozen configuration every controller reads: heartbeat timing, grace, pass periods, timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """ControllerConfig holds the timings of all controllers; the defaults are design §4's."""

    # How often agents beat. The controllers only use it to check grace against it.
    heartbeat_interval: timedelta = timedelta(seconds=10)
    # A lease older than this is stale: the node goes NotReady (four missed beats, as in design §4).
    grace: timedelta = timedelta(seconds=40)
    # Node lifecycle pass period: NotReady must be seen within grace + 1 s, so at most 1 s.
    lifecycle_period: timedelta = timedelta(seconds=1)
    # How often the lifecycle controller re-lists every Node (new Nodes, new facts, drains); between
    # re-lists a pass only re-judges its cached Nodes against the leases, which is cheap at 20k Nodes.
    lifecycle_resync: timedelta = timedelta(seconds=5)
    # Scheduler pass period: a Pending project waits at most this long for a free node.
    scheduler_period: timedelta = timedelta(seconds=1)
    # When no new Project is Pending, the scheduler retries the ones that fit nowhere this often (a new
    # Pending Project triggers a pass at once). Kubernetes flushes its unschedulable queue the same way.
    unschedulable_retry: timedelta = timedelta(seconds=5)
    # Draining pass period: evicting a drained node's projects is not urgent.
    draining_period: timedelta = timedelta(seconds=5)
    # Rescheduler pass period: its deadlines are minutes long, so a few seconds late is fine.
    rescheduler_period: timedelta = timedelta(seconds=5)
    # Projects of a node NotReady for longer than this go back to Pending.
    reschedule_after: timedelta = timedelta(minutes=3)
    # A project Terminating for longer than this is forced to Terminated.
    terminating_timeout: timedelta = timedelta(minutes=10)
    # spec.placement.minThroughput reads a Node's last download measurement only while it is younger than this
    # (agents measure every 30 min by default, so two missed measurements make it stale).
    throughput_max_age: timedelta = timedelta(hours=1)
    # Projects of a ControlLinkDown Node (silent to us, witnessed by a fellow agent) stay this long at most.
    control_link_limit: timedelta = timedelta(hours=1)
    # More than this fraction of the Nodes silent within one grace window is the control plane's own isolation...
    isolation_fraction: float = 0.5
    # ...but only with at least this many Nodes (with two, one silent Node is half the fleet).
    isolation_min_nodes: int = 3

    def __post_init__(self) -> None:
        for field in (
            "heartbeat_interval",
            "grace",
            "lifecycle_period",
            "lifecycle_resync",
            "scheduler_period",
            "unschedulable_retry",
            "draining_period",
            "rescheduler_period",
            "reschedule_after",
            "terminating_timeout",
            "throughput_max_age",
            "control_link_limit",
        ):
            if getattr(self, field) <= timedelta(0):
                raise ValueError(f"{field} must be positive")
        if not 0 < self.isolation_fraction < 1:
            raise ValueError("isolation_fraction must be between 0 and 1")
        if self.isolation_min_nodes < 1:
            raise ValueError("isolation_min_nodes must be at least 1")
        if self.grace < self.heartbeat_interval:
            raise ValueError(
                f"grace ({self.grace}) must be at least heartbeat_interval ({self.heartbeat_interval}),"
                " or every node flaps NotReady between beats"
            )

    @property
    def witness_after(self) -> timedelta:
        """witness_after: a Node silent this long is asked about. The ask goes out with the next beat of another
        agent (within one interval) and the witness comes back with that agent's next, immediate, beat, so asking
        two intervals before the grace ends gets the witness in before it; never before a quarter interval late
        (a beat merely late is no reason to ask), never after the grace (10 s beats, 40 s grace: 20 s; lab 2 s /
        6 s: 2.5 s)."""
        return min(max(self.heartbeat_interval * 1.25, self.grace - 2 * self.heartbeat_interval), self.grace)


def format_duration(value: timedelta) -> str:
    """format_duration renders a duration the way Go prints one: "40s", "3m0s", "1h0m0s"."""
    seconds = value.total_seconds()
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    secs = f"{seconds - hours * 3600 - minutes * 60:g}s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs
