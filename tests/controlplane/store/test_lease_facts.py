"""A lease says when the Node's facts were last reconfirmed: a rejected beat renews the lease, confirms nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.store.leases import Lease, LeaseTable, facts_confirmed_at

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_accepted_beats_confirm_the_facts_rejected_ones_do_not() -> None:
    table = LeaseTable()
    table.renew("n", at(0), facts=True)
    table.renew("n", at(10))
    assert facts_confirmed_at(table.get("n"), None) == at(10), "an empty beat reconfirms accepted facts"
    table.reject("n", at(20))
    table.renew("n", at(30))  # "nothing changed" since the rejected facts
    lease = table.get("n")
    assert lease is not None and lease.renewed_at == at(30) and lease.is_fresh(at(30), timedelta(seconds=1))
    assert facts_confirmed_at(lease, at(30)) == at(10), "neither the rejected beat nor the one after confirmed"
    table.release("n", at(35))
    assert facts_confirmed_at(table.get("n"), at(35)) == at(10), "a goodbye confirms nothing either"
    table.renew("n", at(40), facts=True)
    assert facts_confirmed_at(table.get("n"), at(40)) == at(40), "an accepted full beat confirms them again"


def test_a_node_whose_first_beat_is_rejected_has_never_confirmed() -> None:
    table = LeaseTable()
    table.reject("n", at(0))
    assert facts_confirmed_at(table.get("n"), at(0)) is None


def test_without_a_lease_the_stored_heartbeat_is_the_confirmation() -> None:
    assert facts_confirmed_at(None, at(5)) == at(5)
    assert facts_confirmed_at(Lease(at(3)), at(5)) == at(5), "a flush or full beat stored a newer time"
    assert facts_confirmed_at(Lease(at(7)), at(5)) == at(7)


class Flushed:
    """Flushed is a store holding the leases other replicas flushed (only load_leases is used)."""

    def __init__(self, leases: dict[str, Lease]) -> None:
        self.leases = leases

    async def load_leases(self) -> dict[str, Lease]:
        return dict(self.leases)


async def test_the_merge_takes_the_newer_lease_with_its_marks_and_wakes_on_a_goodbye() -> None:
    table = LeaseTable()
    table.renew("bye", at(10))
    table.renew("bad", at(10), facts=True)
    table.renew("mine", at(30))
    other: Any = Flushed(
        {
            "bye": Lease(at(20), released=True),
            "bad": Lease(at(20), rejected=True, facts_at=at(10)),
            "mine": Lease(at(25), released=True),  # older than the beat this replica holds: ignored
        }
    )
    await table.load(other)
    assert table.get("bye") == Lease(at(20), released=True)
    assert table.goodbye.is_set(), "a goodbye merged from another replica starts a lifecycle pass at once"
    assert facts_confirmed_at(table.get("bad"), at(20)) == at(10), "the rejected beat confirmed nothing here either"
    assert table.get("mine") == Lease(at(30))
    table.renew("bad", at(40))  # an empty beat after the merged rejected one still confirms nothing
    assert facts_confirmed_at(table.get("bad"), at(40)) == at(10)


async def test_a_merged_goodbye_already_held_or_loaded_at_start_wakes_nobody() -> None:
    table = LeaseTable()
    at_start: Any = Flushed({"bye": Lease(at(20), released=True)})
    await table.load(at_start)
    table.release("held", at(5))
    table.goodbye.clear()
    later: Any = Flushed({"held": Lease(at(6), released=True)})
    await table.load(later)
    assert not table.goodbye.is_set()
    assert table.get("bye") == Lease(at(20), released=True) and table.get("held") == Lease(at(6), released=True)
