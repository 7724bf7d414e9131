"""The composition root's process tuning: the startup heap is frozen out of the garbage collector's scans, and
its youngest generation is collected less often."""

from __future__ import annotations

import gc

from controlplane.server.app import GEN0_THRESHOLD, freeze_startup_heap


def test_the_startup_heap_is_frozen_so_full_collections_skip_it() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    alive = len(gc.get_objects())
    thresholds = gc.get_threshold()
    freeze_startup_heap()
    try:
        assert gc.get_freeze_count() >= alive // 2  # the modules and classes alive now: most of the heap
        assert len(gc.get_objects()) < alive // 2  # what a full collection still scans
        assert gc.get_threshold() == (GEN0_THRESHOLD, *thresholds[1:])  # the youngest generation waits longer
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
