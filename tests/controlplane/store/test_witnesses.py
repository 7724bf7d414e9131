"""The in-memory witness board: newest witness per Node, clamped to receipt, and bounded witness requests."""

from __future__ import annotations

from datetime import timedelta

from controlplane.api import NetworkMode, WitnessReport
from controlplane.store.witnesses import ASK_LIMIT, WitnessBoard
from tests.conftest import FakeClock


def test_the_newest_witness_wins_and_a_clock_ahead_is_clamped(clock: FakeClock) -> None:
    board = WitnessBoard()
    now = clock.now()
    board.record("edge2", [WitnessReport(name="edge1", at=now - timedelta(seconds=5), mode=NetworkMode.DERP)], now)
    board.record("edge3", [WitnessReport(name="edge1", at=now + timedelta(minutes=5), latency_ms=2.0)], now)
    board.record("edge4", [WitnessReport(name="edge1", at=now - timedelta(seconds=1))], now)
    witness = board.newest("edge1")
    assert witness is not None and (witness.by, witness.at) == ("edge3", now), "ahead of us: counted as received"
    board.record("edge1", [WitnessReport(name="edge1", at=now)], now)
    assert board.newest("edge1") == witness, "a Node does not witness itself"
    board.forget("edge1")
    assert board.newest("edge1") is None


def test_asks_are_bounded_per_answer_and_per_window(clock: FakeClock) -> None:
    board = WitnessBoard()
    window = timedelta(seconds=10)
    names = [f"edge{i}" for i in range(10)]
    board.want(names)
    first = board.ask("edge0", clock.now(), window)
    assert len(first) == ASK_LIMIT and "edge0" not in first
    asked: dict[str, int] = {}
    for caller in ["x", "y", "z", "w", "v"]:
        for name in board.ask(caller, clock.now(), window):
            asked[name] = asked.get(name, 0) + 1
    for name in first:
        asked[name] = asked.get(name, 0) + 1
    assert set(asked) == set(names), "every wanted Node gets its turn"
    assert max(asked.values()) <= 2, "at most two agents per Node per window"
    assert board.ask("u", clock.now(), window) == []
    clock.step(10)
    assert len(board.ask("u", clock.now(), window)) == ASK_LIMIT, "a new window"
    board.want([])
    assert board.ask("u", clock.now(), window) == []
