"""The Supervisor itself, on a stepped clock and a recorded sleep: backoff, the give-up rule, stalls, ends."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.supervision import EXIT_LOOP_FAILED, Progress, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_a_raising_loop_is_restarted_with_doubling_backoff_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    restarted: list[str] = []
    supervisor = Supervisor(clock=clock, sleep=clock.sleep, on_restart=restarted.append, max_failures=4, window=60)

    async def broken(stop: asyncio.Event, progress: Progress) -> None:
        raise KeyError("throughput")

    supervisor.add("broken", broken)
    assert await asyncio.wait_for(supervisor.run(asyncio.Event()), 5) == EXIT_LOOP_FAILED
    assert clock.slept == [1.0, 2.0, 4.0] and restarted == ["broken"] * 3
    assert supervisor.fatal == "broken" and "failed 4 times" in supervisor.problems()["broken"]
    assert sum(1 for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], KeyError)) == 4


async def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    supervisor = Supervisor(clock=clock, sleep=clock.sleep, max_failures=2, window=10)
    calls = 0

    async def flaky(stop: asyncio.Event, progress: Progress) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            clock.now += 60  # each failure comes long after the previous one
            raise ValueError("parse")
        stop.set()

    supervisor.add("flaky", flaky)
    assert await asyncio.wait_for(supervisor.run(asyncio.Event()), 5) == 0
    assert calls == 4 and supervisor.restarts() == {"flaky": 3}


async def test_restart_after_holds_a_restart_back() -> None:
    clock = Clock()
    supervisor = Supervisor(clock=clock, sleep=clock.sleep)
    calls = 0

    async def once_broken(stop: asyncio.Event, progress: Progress) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("controllers ended")
        stop.set()

    supervisor.add("controllers", once_broken, restart_after=13.0)
    assert await asyncio.wait_for(supervisor.run(asyncio.Event()), 5) == 0
    assert clock.slept == [13.0]


async def test_a_loop_without_progress_is_stalled_and_its_announced_wait_counts() -> None:
    clock = Clock()
    supervisor = Supervisor(clock=clock, sleep=clock.sleep)
    ticked = asyncio.Event()

    async def patient(stop: asyncio.Event, progress: Progress) -> None:
        progress.tick(within=50.0)  # backing off: the next attempt is 50 s away
        ticked.set()
        await stop.wait()

    supervisor.add("heartbeat", patient, stall_after=10.0)
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run(stop))
    await ticked.wait()
    clock.now += 59.0
    assert supervisor.problems() == {}
    clock.now += 2.0
    assert supervisor.problems() == {"heartbeat": "no progress for 61s (bound 60s)"}
    stop.set()
    assert await running == 0


async def test_the_end_of_the_http_loop_ends_the_process_and_a_loop_ending_early_is_down() -> None:
    supervisor = Supervisor()
    others_stopped = asyncio.Event()

    async def quitter(stop: asyncio.Event, progress: Progress) -> None:
        return

    async def worker(stop: asyncio.Event, progress: Progress) -> None:
        await stop.wait()
        others_stopped.set()

    async def http(stop: asyncio.Event, progress: Progress) -> None:
        await asyncio.sleep(0.05)

    supervisor.add("quitter", quitter)
    supervisor.add("worker", worker)
    supervisor.add("http", http, ends_process=True)
    assert await asyncio.wait_for(supervisor.run(asyncio.Event()), 5) == 0
    assert others_stopped.is_set()
    assert supervisor.problems() == {"quitter": "ended"}
