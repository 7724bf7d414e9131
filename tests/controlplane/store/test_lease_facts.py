"""A lease says when the Node's facts were last reconfirmed: a rejected beat renews the lease, confirms nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
