"""Witnesses in memory: which fellow agent last reached each Node's agent, and which silent Nodes the leader wants
looked at. Like the LeaseTable it lives beside, nothing here is written on a beat's fast path.

A witness arrives in a full beat of the witnessing Node (`status.network.witnessed`): the heartbeat route records it
here at once, and the leader's lifecycle controller also records the witnesses it reads from stored Nodes (beats
another replica received). The leader decides which silent Nodes need a witness (`want`); the heartbeat route of
that replica hands the names to the next agents that beat (`ask`, the `Cara-Witness` response header).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from controlplane.api import NetworkMode, WitnessReport

#: Most silent Nodes named in one heartbeat response.
ASK_LIMIT: Final = 4
#: How many agents are asked about one silent Node per `ask` window (one heartbeat interval).
ASKS_PER_WINDOW: Final = 2


@dataclass(frozen=True, slots=True)
class Witness:
    """Witness is one fellow agent's report that it reached a Node's agent."""

    # By: the witnessing Node.
    by: str
    # At: when it reached it, never later than when the control plane received the report.
    at: datetime
    mode: NetworkMode | None
    latency_ms: float | None


class WitnessBoard:
    """WitnessBoard holds the newest witness of each Node and the leader's list of Nodes wanting one."""

    def __init__(self) -> None:
        self._newest: dict[str, Witness] = {}
        self._wanted: tuple[str, ...] = ()
        # Per wanted Node: when the current ask window began and how many agents were asked in it.
        self._asked: dict[str, tuple[datetime, int]] = {}
        self._next = 0

    def record(self, by: str, reports: Iterable[WitnessReport], received: datetime) -> None:
        """record keeps each report of `by` that is newer than the one held; a report's time is clamped to when it
        was received, so an agent's clock running ahead cannot make a witness last longer."""
        for report in reports:
            if report.at is None or report.name == by:
                continue
            at = min(report.at, received)
            held = self._newest.get(report.name)
            if held is None or held.at < at:
                self._newest[report.name] = Witness(by, at, report.mode, report.latency_ms)

    def newest(self, name: str) -> Witness | None:
        """newest is the latest witness of name, or None."""
        return self._newest.get(name)

    def forget(self, name: str) -> None:
        """forget drops what is known of a deleted Node."""
        self._newest.pop(name, None)
        self._asked.pop(name, None)

    def want(self, names: Sequence[str]) -> None:
        """want replaces the list of silent Nodes that need a witness (the leader's lifecycle pass sets it)."""
        self._wanted = tuple(names)
        wanted = set(self._wanted)
        for name in [name for name in self._asked if name not in wanted]:
            del self._asked[name]

    @property
    def wanted(self) -> tuple[str, ...]:
        return self._wanted

    def ask(self, caller: str, now: datetime, window: timedelta) -> list[str]:
        """ask returns the silent Nodes (at most ASK_LIMIT) the agent of `caller` should look at now: each wanted Node
        is handed to at most ASKS_PER_WINDOW agents per window, rotating through the list so all get their turn."""
        wanted = self._wanted
        if not wanted:
            return []
        chosen: list[str] = []
        count = len(wanted)
        for step in range(count):
            name = wanted[(self._next + step) % count]
            if name == caller:
                continue
            began, asked = self._asked.get(name, (now, 0))
            if now - began >= window:
                began, asked = now, 0
            if asked >= ASKS_PER_WINDOW:
                continue
            self._asked[name] = (began, asked + 1)
            chosen.append(name)
            if len(chosen) >= ASK_LIMIT:
                self._next = (self._next + step + 1) % count
                break
        return chosen
