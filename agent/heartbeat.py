"""The register → beat → re-register-on-404 loop, with backoff; full status when it changed or every minute.

Time comes in through `now` (wall clock for status and the status interval) and `sleep`; randomness for jitter
through `random`. `beat_once` is one pass (what tests call); `run` only loops it.
"""

from __future__ import annotations

import asyncio
import logging
import random as random_module
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from controlplane.api import (
    AGENT_BACKOFF_BASE,
    AGENT_BACKOFF_CAP,
    AGENT_BACKOFF_JITTER,
    Heartbeat,
    Node,
    NodeSpec,
    NodeState,
    ObjectMeta,
)
from controlplane.client import (
    ApiError,
    Client,
    ClientError,
    Conflict,
    NotFound,
    ServerUnreachable,
)
from controlplane.supervision import Progress

log = logging.getLogger("cara.agent")

#: Backoff after a failure: 5 s, doubling to at most 60 s (issue 5), jittered ±20 % so a fleet does not stampede.
#: The values live in controlplane.api: the control plane's stall rule depends on the longest wait.
BACKOFF_BASE: Final = AGENT_BACKOFF_BASE
BACKOFF_CAP: Final = AGENT_BACKOFF_CAP
JITTER: Final = AGENT_BACKOFF_JITTER
#: Retry period while our own tailscaled is down or just back: a LocalAPI call and a refused connect cost nothing,
#: and waiting a whole interval would add up to one interval to the recovery after tailscaled runs again.
LOCAL_RETRY: Final = 1.0
#: How long a beat waits for the status (LocalAPI, a disco ping to the server, peer probes) at most, and never more
#: than a quarter interval: on a full or lossy link those take seconds, and the lease must not wait for them.
SNAPSHOT_BUDGET: Final = 0.5
#: A beat not answered within this long (and never more than a quarter interval) goes out again over a new
#: connection, up to HEDGES more times, and the first answer wins: a hedged request (beats are idempotent). Beats
#: share one kept-alive connection (agent/main.py); on a link the agent's own throughput test fills, a segment is
#: lost now and then and TCP sends it again only after its retransmission timer (a second or more after a lost
#: SYN), and a kept-alive connection may be stale (the control host's link was cut, tailscaled restarted); while
#: the first attempt holds the pooled connection, a hedge opens a new one.
HEDGE_AFTER: Final = 1.0
HEDGES: Final = 2


class Backoff:
    """Backoff yields 5, 10, 20, 40, 60, 60 ... seconds, each scaled by a random factor in [0.8, 1.2]."""

    def __init__(
        self,
        *,
        base: float = BACKOFF_BASE,
        cap: float = BACKOFF_CAP,
        jitter: float = JITTER,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.base, self.cap, self.jitter, self._random = base, cap, jitter, random
        self.failures = 0

    def next_delay(self) -> float:
        """next_delay counts one more failure and returns how long to wait before trying again."""
        delay = min(self.cap, self.base * float(2**self.failures))
        self.failures += 1
        return delay * (1 - self.jitter + 2 * self.jitter * self._random())

    def reset(self) -> None:
        """reset forgets the failures after a success."""
        self.failures = 0


def retry_delay(backoff: Backoff, interval: float, *, connected: bool) -> float:
    """retry_delay is the wait before the beat after a failed one (the agent's rule; bench/fleet simulates it).

    No connection was made (refused, or the link to the server is cut): the request never reached the server, so
    trying again each interval costs it nothing, and the beat goes out within one interval of the path working
    again. Backoff is for a server that answers badly or too slowly: one lost beat (e.g. the path switching
    Direct -> DERP under it) is retried on the normal schedule when that comes sooner than the backoff's first
    step; only repeated failures back off."""
    if not connected:
        backoff.reset()
        return interval
    if backoff.failures == 0:
        return min(backoff.next_delay(), interval)
    return backoff.next_delay()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Snapshot is the full status at one moment, and the part of it whose change is worth a full beat."""

    beat: Heartbeat
    # signature: equal signatures mean "nothing changed" (latency and free bytes wobble; they are left out).
    signature: Hashable
    # tailnet_running: the local tailscaled is Running; when it is not, a failed beat is our side's fault.
    tailnet_running: bool = True


#: Witness: look at the named fellow Nodes now (the control plane asked); returns how many answered.
Witness = Callable[[Sequence[str]], Awaitable[int]]


class StatusSource(Protocol):
    """StatusSource collects the agent's current status."""

    async def snapshot(self) -> Snapshot: ...


@dataclass(slots=True)
class BeatState:
    """BeatState is what the loop knows, also read by /healthz and /metrics."""

    registered: bool = False
    server_reachable: bool = False
    last_success: datetime | None = None
    last_full: datetime | None = None
    last_error: str = ""
    sent_signature: Hashable | None = None
    # tailnet_was_down: the local tailscaled was not Running at some failed pass since the last success.
    tailnet_was_down: bool = False
    # witness_requests: Nodes the control plane asked this agent to look at, most recent request (for /metrics).
    witness_requests: tuple[str, ...] = ()
    # counts: outcomes of beats and registrations ("full", "empty", "failed", "registered", "not_found", "witnessed"),
    # and "hedged": beats sent again over a new connection.
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


class Heartbeater:
    """Heartbeater keeps one Node registered and beating at `interval` seconds through `client`."""

    def __init__(
        self,
        *,
        client: Client,
        node_name: str,
        hostname: str,
        source: StatusSource,
        now: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        interval: float = 10.0,
        status_interval: float = 60.0,
        backoff: Backoff | None = None,
        witness: Witness | None = None,
        hedge_after: float = HEDGE_AFTER,
    ) -> None:
        self._client, self.node_name, self.hostname, self._source = client, node_name, hostname, source
        self._witness = witness
        # When each Node was last looked at on request: a repeated request within half an interval is not redone.
        self._witnessed_at: dict[str, datetime] = {}
        self._now, self._sleep = now, sleep
        self.interval, self.status_interval = interval, status_interval
        self.backoff = backoff if backoff is not None else Backoff()
        self.state = BeatState()
        self.snapshot_budget = min(SNAPSHOT_BUDGET, interval / 4)
        self.hedge_after = min(hedge_after, interval / 4)
        # The round trip of the last answered beat (loop clock), None before the first: beats are hedged only while
        # the last one was answered within hedge_after, so a server too slow for that gets one beat, no more; a
        # server that slows under hedged beats stops being hedged after its first slow answer.
        self._round_trip: float | None = None
        # collecting: a snapshot still being taken when its beat went out; the next beat uses it.
        self._collecting: asyncio.Future[Snapshot] | None = None

    async def register(self) -> None:
        """register creates the Node; 201 or 409 (it exists already) both mean registered."""
        node = Node(metadata=ObjectMeta(name=self.node_name), spec=NodeSpec(hostname=self.hostname))
        try:
            await self._client.create_node(node)
            log.info("registered node %s", self.node_name)
        except Conflict:
            log.info("node %s exists; using it", self.node_name)
        self.state.registered = True
        self.state.sent_signature = None  # the server may hold someone else's facts: send ours in full
        self.state.count("registered")

    def _wants_full(self, snapshot: Snapshot, now: datetime) -> bool:
        state = self.state
        if state.sent_signature is None or snapshot.signature != state.sent_signature:
            return True
        return state.last_full is None or (now - state.last_full).total_seconds() >= self.status_interval

    async def beat_once(self) -> float:
        """beat_once registers if needed and sends one beat; it returns the seconds to wait before the next pass."""
        state = self.state
        snapshot: Snapshot | None = None
        try:
            if not state.registered:
                await self.register()
            snapshot = await self._snapshot()
            now = self._now()
            full = snapshot is not None and self._wants_full(snapshot, now)
            asked = await self._send(snapshot.beat if snapshot is not None and full else Heartbeat())
        except NotFound:
            # The Node is gone (deleted, or a new control plane): register again at once, then back off on failure.
            log.warning("node %s is unknown to the control plane; registering again", self.node_name)
            state.registered, state.server_reachable = False, True
            state.count("not_found")
            try:
                await self.register()
            except ClientError as exc:
                return self._failed(exc, snapshot)
            return 0.0
        except (ServerUnreachable, ApiError, ClientError) as exc:
            return self._failed(exc, snapshot)
        state.server_reachable, state.last_success, state.last_error = True, now, ""
        state.tailnet_was_down = False
        if full and snapshot is not None:
            state.sent_signature, state.last_full = snapshot.signature, now
        state.count("full" if full else "empty")
        self.backoff.reset()
        if asked and await self._look_at(asked, now):
            return 0.0  # a witness is wanted now, not an interval later: beat again at once to report it
        return self.interval

    async def _send(self, body: Heartbeat) -> list[str]:
        """_send sends one beat and returns the Nodes the control plane asks us to look at. When the last beat was
        answered within hedge_after, a beat not answered within hedge_after goes again over a new connection (up to
        HEDGES times, hedge_after apart); the first answer wins and the other attempts are cancelled. A transport
        failure of one attempt waits for the others, unless no connection could be made (refused, no route: our
        tailscaled is down): then the control plane cannot be reached from here now, an attempt waiting on the
        kept-alive connection would only wait out its timeout, and the beat ends at once. An answer from the
        server (even an error) ends the beat."""
        loop = asyncio.get_running_loop()

        async def attempt() -> tuple[list[str], float]:
            started = loop.time()
            asked = await self._client.heartbeat(self.node_name, body)
            return asked, loop.time() - started

        hedging = self._round_trip is not None and self._round_trip < self.hedge_after
        pending: set[asyncio.Task[tuple[list[str], float]]] = {asyncio.ensure_future(attempt())}
        attempts = [*pending]
        unreachable: ServerUnreachable | None = None
        try:
            while pending:
                spare = hedging and len(attempts) <= HEDGES
                done, pending = await asyncio.wait(
                    pending, timeout=self.hedge_after if spare else None, return_when=asyncio.FIRST_COMPLETED
                )
                for task in sorted(done, key=attempts.index):
                    exc = task.exception()
                    if exc is None:
                        asked, self._round_trip = task.result()
                        log.debug("beat answered in %.3fs (attempt %d)", self._round_trip, attempts.index(task) + 1)
                        return asked
                    if not isinstance(exc, ServerUnreachable):
                        raise exc
                    unreachable = unreachable or exc
                    if not exc.connected:  # no connection could be made: the others wait in vain
                        unreachable, pending = exc, set()
                        break
                if not done:  # hedge_after passed without an answer
                    self.state.count("hedged")
                    log.debug(
                        "beat not answered within %.2fs: sending it again over a new connection", self.hedge_after
                    )
                    hedge = asyncio.ensure_future(attempt())
                    attempts.append(hedge)
                    pending.add(hedge)
        finally:
            for task in attempts:
                task.cancel()
            await asyncio.gather(*attempts, return_exceptions=True)
        assert unreachable is not None
        self._round_trip = None
        raise unreachable

    async def _look_at(self, names: Sequence[str], now: datetime) -> bool:
        """_look_at checks the Nodes the control plane asked about (those not checked within half an interval);
        returns whether any answered, so that the next beat carries the witness at once."""
        if self._witness is None:
            return False
        self.state.witness_requests = tuple(names)
        for name in [n for n, at in self._witnessed_at.items() if (now - at).total_seconds() >= self.interval]:
            del self._witnessed_at[name]
        due = [
            name
            for name in names
            if name != self.node_name
            and ((seen := self._witnessed_at.get(name)) is None or (now - seen).total_seconds() >= self.interval / 2)
        ]
        if not due:
            return False
        for name in due:
            self._witnessed_at[name] = now
        reached = await self._witness(due)
        if reached:
            self.state.count("witnessed")
        return reached > 0

    async def _snapshot(self) -> Snapshot | None:
        """_snapshot returns the status for this beat, or None when taking it outlasts the budget: the beat then goes
        out empty (a lease renewal) on time, and the snapshot, still being taken, goes with the next beat."""
        if self._collecting is None:
            self._collecting = asyncio.ensure_future(self._source.snapshot())
        done, _ = await asyncio.wait({self._collecting}, timeout=self.snapshot_budget)
        if not done:
            log.debug("status not ready within %.2fs: empty beat", self.snapshot_budget)
            return None
        collected, self._collecting = self._collecting, None
        return collected.result()

    def _failed(self, exc: ClientError, snapshot: Snapshot | None) -> float:
        state = self.state
        state.server_reachable = not isinstance(exc, ServerUnreachable)
        state.last_error = str(exc)
        state.sent_signature = None  # whatever the server has may be stale: the next success sends everything
        state.count("failed")
        if snapshot is not None and not snapshot.tailnet_running:
            # Our own tailscaled is down: the server is not to blame, so no backoff; look again every LOCAL_RETRY
            # (at most an interval) to be back within one interval of tailscaled running again.
            state.tailnet_was_down = True
            self.backoff.reset()
            delay = min(self.interval, LOCAL_RETRY)
        elif state.tailnet_was_down:
            state.tailnet_was_down = False  # tailscaled just came back and the path is settling: once more soon
            delay = min(self.interval, LOCAL_RETRY)
        else:
            connected = not (isinstance(exc, ServerUnreachable) and not exc.connected)
            delay = retry_delay(self.backoff, self.interval, connected=connected)
        log.warning("heartbeat failed (%s); next try in %.1fs", exc, delay)
        return delay

    async def run(self, stop: asyncio.Event, progress: Progress | None = None) -> None:
        """run beats until stop is set, `interval` from start to start (a slow beat does not push the next one
        later); the wait between passes ends early when stop is set. After every attempt (accepted or not: an
        unreachable server is no fault of the loop's) it ticks progress with the wait before the next one."""
        try:
            await self._run(stop, progress)
        finally:
            if self._collecting is not None:
                self._collecting.cancel()

    async def _run(self, stop: asyncio.Event, progress: Progress | None) -> None:
        while not stop.is_set():
            started = self._now()
            delay = await self.beat_once()
            delay -= (self._now() - started).total_seconds()
            if progress is not None:
                progress.tick(within=delay)
            if delay > 0:
                waiter = asyncio.ensure_future(stop.wait())
                sleeper = asyncio.ensure_future(self._sleep(delay))
                waits: set[asyncio.Future[Any]] = {waiter, sleeper}
                if self._collecting is not None and self.state.server_reachable:
                    # The beat went out empty because the status was slow (a path change probes): send it as soon
                    # as it is taken, not an interval later, so a new mode reaches the server within seconds.
                    waits.add(self._collecting)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in (waiter, sleeper):
                    task.cancel()

    async def going_away(self) -> bool:
        """going_away sends the last beat, state NotReady, so the control plane marks the Node NotReady at once."""
        if not self.state.registered:
            return False
        try:
            await self._client.heartbeat(self.node_name, Heartbeat(state=NodeState.NOT_READY))
            log.debug("goodbye beat answered at monotonic %.3f", time.monotonic())
        except ClientError as exc:
            log.warning("could not say goodbye to the control plane: %s", exc)
            return False
        return True
