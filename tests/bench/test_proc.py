"""bench._proc's reading of where a process's resident memory is (the agent footprint benchmark prints it)."""

from __future__ import annotations

import os

from bench import _proc


def test_the_breakdown_names_the_largest_mappings_and_adds_up_to_the_rss() -> None:
    # VmRSS first: the breakdown reads /proc/PID/status before smaps, whose text (a megabyte and more for a test
    # process) would otherwise grow the RSS between the two readings.
    rss = _proc.rss_mib(os.getpid())
    where = _proc.rss_breakdown_mib(os.getpid(), top=3)
    anon, file = where.pop("RssAnon"), where.pop("RssFile")
    assert anon > 0 and file > 0
    assert len(where) == 3
    # The mappings shown are the largest ones: none exceeds the whole, and together they are not more than it.
    assert sum(where.values()) <= anon + file + 0.1
    assert abs(anon + file - rss) < 1.0
