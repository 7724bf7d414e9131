"""Availability: the share of the last 24 h and 7 d a Node spent Ready and each of its paths spent Direct,
computed from the stored Transitions (each subject's state changes, kept 8 days; see events.py).

A window counts only the time whose state is known: from the window's start if a transition before it says what
the state was then, else from the subject's first transition. The ratio is unset when nothing of the window is
known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import Final

from controlplane.api import AvailabilityWindow, NodeAvailability, PathAvailability, Transition
from controlplane.store.base import Store

from .events import node_subject, path_subject

#: The windows, by the name shown and exported.
WINDOWS: Final = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)))
LONGEST: Final = max(length for _, length in WINDOWS)


def share(transitions: Sequence[Transition], start: datetime, end: datetime, window: str) -> AvailabilityWindow:
    """share is the part of [start, end] the subject of transitions (one subject, oldest first) spent good."""
    observed = good = 0.0
    state: bool | None = None
    since = start
    for transition in transitions:
        if transition.time is None:
            continue
        at = min(max(transition.time, start), end)
        if state is not None:
            observed += (at - since).total_seconds()
            good += (at - since).total_seconds() if state else 0.0
        state, since = transition.good, at
    if state is not None:
        observed += (end - since).total_seconds()
        good += (end - since).total_seconds() if state else 0.0
    ratio = good / observed if observed > 0 else None
    return AvailabilityWindow(window=window, ratio=ratio, observed_seconds=observed)


def windows(transitions: Sequence[Transition], now: datetime) -> list[AvailabilityWindow]:
    """windows is share over each of WINDOWS ending now."""
    return [share(transitions, now - length, now, name) for name, length in WINDOWS]


def by_subject(transitions: Iterable[Transition]) -> dict[str, list[Transition]]:
    """by_subject groups transitions (ordered by subject, then time, as the store lists them) per subject."""
    return {subject: list(group) for subject, group in groupby(transitions, key=lambda t: t.subject)}


async def node_availability(store: Store, name: str, now: datetime) -> NodeAvailability:
    """node_availability is the Ready share of the Node and the Direct share of each path it reported."""
    ready = by_subject(await store.list_transitions(node_subject(name), now - LONGEST)).get(node_subject(name), [])
    prefix = path_subject(name, "")
    paths = by_subject(await store.list_transitions(prefix, now - LONGEST))
    return NodeAvailability(
        name=name,
        ready=windows(ready, now),
        paths=[
            PathAvailability(peer=subject.removeprefix(prefix), windows=windows(found, now))
            for subject, found in sorted(paths.items())
        ],
    )
