"""Three cara-server replicas on one PostgreSQL: SIGKILL the leader under load, another leads within 15 s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import wait_until

from ._process import ServerProcess, start_server

#: Short timings keep the test in tens of seconds. The grace must exceed how late a beat received by a
#: replica reaches the leader: one lease flush (5 s) plus one leader renewal (10 s / 3).
HEARTBEAT_S = 1.0
GRACE_S = 15.0
#: The issue's budget: a dead leader is replaced within this.
FAILOVER_BUDGET_S = 15.0
BEATING = [f"edge-{i}" for i in range(4)]
QUIET = "edge-quiet"  # beats until the leader dies, then goes silent


class BeatDriver:
    """BeatDriver sends each node's empty heartbeat every HEARTBEAT_S, spreading them over the replicas."""

    def __init__(self, replicas: list[ServerProcess], names: list[str]) -> None:
        self.replicas, self.names = replicas, list(names)
        self.due = dict.fromkeys(names, 0.0)
        self.sent = 0

    def __call__(self) -> None:
        now = time.monotonic()
        for name in self.names:
            if self.due[name] <= now:
                self.replicas[self.sent % len(self.replicas)].beat(name)
                self.sent += 1
                self.due[name] = now + HEARTBEAT_S


@pytest.mark.postgres
@pytest.mark.slow
def test_killing_the_leader_under_load_hands_over_within_15_s(postgres_schema: str, tmp_path: Path) -> None:
    args = ("--heartbeat-interval", f"{HEARTBEAT_S:g}s", "--grace", f"{GRACE_S:g}s", "--leader-ttl", "10s")
    replicas = [start_server(postgres_schema, tmp_path / f"r{i}.log", "--replica-id", f"r{i}", *args) for i in range(3)]
    try:
        first = replicas[0]
        for name in [*BEATING, QUIET]:
            assert first.client.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
        driver = BeatDriver(replicas, [*BEATING, QUIET])

        def one_leader_and_all_ready() -> bool:
            leaders = [replica for replica in replicas if replica.leads()]
            return len(leaders) == 1 and set(first.states().values()) == {"Ready"}

        wait_until("one leader and every node Ready", one_leader_and_all_ready, 40, 0.1, every=driver)
        (leader,) = [replica for replica in replicas if replica.leads()]
        survivors = [replica for replica in replicas if replica is not leader]

        leader.kill()
        killed_at = time.monotonic()
        driver.replicas, driver.names = survivors, list(BEATING)  # QUIET falls silent with the leader

        new_leader_at: float | None = None
        quiet_not_ready_at: float | None = None
        samples = 0
        deadline = killed_at + FAILOVER_BUDGET_S + GRACE_S + 10
        while quiet_not_ready_at is None and time.monotonic() < deadline:
            driver()
            leading = [replica for replica in survivors if replica.leads()]
            assert len(leading) <= 1, "two replicas lead at once"
            if leading and new_leader_at is None:
                new_leader_at = time.monotonic()
            for replica in survivors:  # both serve the API, and nodes still beating never leave Ready
                states = replica.states()
                samples += 1
                assert {name: states[name] for name in BEATING} == dict.fromkeys(BEATING, "Ready"), states
                if states[QUIET] == "NotReady":
                    quiet_not_ready_at = time.monotonic()
            time.sleep(0.2)

        assert new_leader_at is not None, f"no replica took over within {deadline - killed_at:.0f} s"
        assert new_leader_at - killed_at <= FAILOVER_BUDGET_S, f"took over after {new_leader_at - killed_at:.1f} s"
        assert quiet_not_ready_at is not None, "the silent node never turned NotReady: controllers not running"
        # The new leader waits a full grace (restart rule) before it may call anything NotReady.
        assert quiet_not_ready_at - killed_at >= GRACE_S
        assert samples > 50

        # The scheduler runs on the new leader too: a Project created on one replica is bound, seen on the other.
        project = {"metadata": {"name": "after-failover"}, "spec": {"services": [{"name": "web", "image": "nginx"}]}}
        assert survivors[0].client.post("/api/v1/projects", json=project).status_code == 201

        def scheduled() -> bool:
            answer = survivors[1].client.get("/api/v1/projects/after-failover").json()
            return bool(answer["status"].get("phase") == "Scheduled" and answer["status"].get("nodeRef") in BEATING)

        wait_until("the project to be Scheduled onto a Ready node", scheduled, 10, 0.1, every=driver)
    finally:
        for replica in replicas:
            replica.stop()
