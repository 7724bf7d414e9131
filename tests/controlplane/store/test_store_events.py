"""Events and transitions on both backends: events bounded by count, transitions by age (each subject's last kept),
and the write observers every create and update reports to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from controlplane.api import Event, EventType, Node, ObjectMeta, ObjectReference, Project, Transition
from tests.factories import node

from .conftest import AnyStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def event(i: int, name: str = "edge1", kind: str = "Node") -> Event:
    return Event(
        metadata=ObjectMeta(name=f"{name}.{i:016x}", created_at=T0 + timedelta(seconds=i)),
        involved_object=ObjectReference(kind=kind, name=name),
        type=EventType.WARNING if i % 2 else EventType.NORMAL,
        reason=f"Reason{i}",
        message=f"message {i}",
        actor="ops" if i % 3 == 0 else None,
        first_timestamp=T0 + timedelta(seconds=i),
        last_timestamp=T0 + timedelta(seconds=i),
    )


async def test_events_are_kept_newest_first_within_the_limit_and_filtered(store: AnyStore) -> None:
    await store.append_events([event(i) for i in range(3)], limit=5)
    await store.append_events([event(i, "edge2") for i in range(3, 5)] + [event(5, "web", "Project")], limit=5)
    kept = await store.list_events()
    assert [e.reason for e in kept] == ["Reason1", "Reason2", "Reason3", "Reason4", "Reason5"]  # 0 trimmed
    assert kept[0] == event(1)  # every field survives the round trip
    assert [e.reason for e in await store.list_events(kind="Node", name="edge2")] == ["Reason3", "Reason4"]
    assert [e.reason for e in await store.list_events(kind="Project")] == ["Reason5"]
    assert [e.reason for e in await store.list_events(limit=2)] == ["Reason4", "Reason5"]
    assert await store.list_events(kind="Node", name="nobody") == []
    await store.append_events([], limit=5)


async def test_events_outlive_their_object(store: AnyStore) -> None:
    await store.create_node(node("edge1"))
    await store.append_events([event(1)], limit=10)
    await store.delete_node("edge1")
    assert len(await store.list_events(name="edge1")) == 1


def tr(subject: str, minutes: float, good: bool) -> Transition:
    return Transition(subject=subject, time=T0 + timedelta(minutes=minutes), good=good)


async def test_transitions_since_a_time_start_with_the_state_before_it(store: AnyStore) -> None:
    await store.append_transitions(
        [
            tr("node/edge1", 0, True),
            tr("node/edge1", 10, False),
            tr("node/edge1", 20, True),
            tr("node/edge10", 5, False),
            tr("path/edge1/edge2", 1, True),
            tr("node/edge2", 30, True),
        ]
    )
    got = await store.list_transitions("node/edge1", T0 + timedelta(minutes=15))
    assert got == [tr("node/edge1", 10, False), tr("node/edge1", 20, True), tr("node/edge10", 5, False)]
    assert await store.list_transitions("path/", T0) == [tr("path/edge1/edge2", 1, True)]
    assert await store.list_transitions("node/edge2", T0) == [tr("node/edge2", 30, True)]
    assert await store.list_transitions("node/edge3", T0) == []


async def test_pruning_keeps_each_subjects_last_transition(store: AnyStore) -> None:
    await store.append_transitions(
        [tr("node/a", 0, True), tr("node/a", 1, False), tr("node/a", 100, True), tr("node/b", 2, False)]
    )
    assert await store.prune_transitions(T0 + timedelta(minutes=50)) == 1
    assert await store.list_transitions("node/", T0) == [
        tr("node/a", 1, False),
        tr("node/a", 100, True),
        tr("node/b", 2, False),
    ]
    assert await store.prune_transitions(T0 + timedelta(minutes=50)) == 0


async def test_observers_see_creates_and_updates_with_the_state_before(store: AnyStore) -> None:
    seen: list[tuple[str | None, str, bool | None, bool | None]] = []

    async def observe(before: Node | Project | None, after: Node | Project) -> None:
        def cordoned(obj: Node | Project | None) -> bool | None:
            return obj.spec.unschedulable if isinstance(obj, Node) else None

        seen.append((before.metadata.name if before else None, after.metadata.name, cordoned(before), cordoned(after)))

    await store.create_node(node("edge1"))  # before the observer: not seen
    store.add_observer(observe)
    await store.create_node(node("edge2"))

    def cordon(current: Node) -> Node:
        return current.model_copy(update={"spec": current.spec.model_copy(update={"unschedulable": True})})

    await store.update_node("edge1", cordon)
    assert seen == [(None, "edge2", None, False), ("edge1", "edge1", False, True)]


async def test_projects_are_counted_by_phase_without_decoding(store: AnyStore) -> None:
    from tests.factories import project

    assert await store.count_projects() == {}
    for name in ("a", "b", "c"):
        await store.create_project(project(name))
    assert await store.count_projects() == {"Pending": 3}


async def test_the_event_feed_gives_each_later_event_once_about_the_asked_object(store: AnyStore) -> None:
    await store.append_events([event(0)], limit=100)
    assert await store.events_after(None, name="edge1") == ([], (await store.events_after(None))[1])
    _, cursor = await store.events_after(None)
    await store.append_events([event(1), event(2, "edge2"), event(3)], limit=100)
    found, cursor = await store.events_after(cursor, kind="Node", name="edge1")
    assert [e.reason for e in found] == ["Reason1", "Reason3"]
    assert await store.events_after(cursor, name="edge1") == ([], cursor)
    await store.append_events([event(4, "edge2")], limit=100)
    found, _ = await store.events_after(cursor)  # edge2's Reason2 was before this cursor (it skipped past it)
    assert [e.reason for e in found] == ["Reason4"]


async def test_the_event_feed_misses_none_of_concurrent_writers(store: AnyStore) -> None:
    """Writers commit in any order; a reader following the cursor still sees every event exactly once."""
    _, cursor = await store.events_after(None)
    seen: list[str] = []

    async def write(i: int) -> None:
        await store.append_events([event(i, f"n{i % 7}")], limit=1000)

    async def read(rounds: int) -> None:
        nonlocal cursor
        for _ in range(rounds):
            found, cursor = await store.events_after(cursor)
            seen.extend(e.reason for e in found)
            await asyncio.sleep(0)

    await asyncio.gather(*(write(i) for i in range(60)), read(40))
    await read(1)
    assert sorted(seen) == sorted(f"Reason{i}" for i in range(60))


async def test_a_burst_of_concurrent_appends_is_kept_whole_in_order_and_trimmed(store: AnyStore) -> None:
    """A fleet turning Ready at once: hundreds of writers append events and transitions concurrently (PostgreSQL
    writes them in batches); each is stored once, events in the order they were appended, trimmed to the limit."""
    writers = 600

    async def write(i: int) -> None:
        await store.append_events([event(2 * i), event(2 * i + 1, f"n{i}")], limit=1000)
        await store.append_transitions([tr(f"node/n{i:03d}", i, bool(i % 2))])

    await asyncio.gather(*(write(i) for i in range(writers)))
    kept = await store.list_events()
    assert [e.reason for e in kept] == [f"Reason{i}" for i in range(2 * writers - 1000, 2 * writers)]
    got = await store.list_transitions("node/n", T0)
    assert got == [tr(f"node/n{i:03d}", i, bool(i % 2)) for i in range(writers)]
