"""The composition root's process tuning: the startup heap is frozen out of the garbage collector's scans."""

from __future__ import annotations

import gc

from controlplane.server.app import freeze_startup_heap


def test_the_startup_heap_is_frozen_so_full_collections_skip_it() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    alive = len(gc.get_objects())
    freeze_startup_heap()
    try:
        assert gc.get_freeze_count() >= alive // 2  # the modules and classes alive now: most of the heap
        assert len(gc.get_objects()) < alive // 2  # what a full collection still scans
    finally:
        gc.unfreeze()
