"""No acknowledged write is lost when the writing process is killed with SIGKILL, on either backend."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from controlplane.store import open_store

from .conftest import StoreUrlFactory

WRITER = Path(__file__).with_name("_ack_writer.py")
#: How many acknowledgements to read before the kill: enough to be mid-stream with writes in flight.
ACKS_BEFORE_KILL = 600
#: A bound on waiting for one line, so that a hung writer fails the test instead of hanging it.
LINE_TIMEOUT_S = 60


async def test_acknowledged_writes_survive_sigkill(store_url: StoreUrlFactory) -> None:
    url = store_url()
    child = await asyncio.create_subprocess_exec(sys.executable, str(WRITER), url, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None

    async def line() -> list[str]:
        assert child.stdout is not None
        return (await asyncio.wait_for(child.stdout.readline(), LINE_TIMEOUT_S)).decode().split()

    created: set[str] = set()
    counted = 0
    killed = False
    try:
        assert await line() == ["ready"]
        for _ in range(ACKS_BEFORE_KILL):
            words = await line()
            assert words[:1] == ["ack"], f"writer stopped early: {words}"
            if words[1] == "create":
                created.add(words[2])
            else:
                counted = max(counted, int(words[2]))
        child.send_signal(signal.SIGKILL)
        killed = True
    finally:
        # One kill only: a second one polls the child (waitpid) and may reap it before asyncio's watcher thread
        # does, which then reports 255 for a process that was killed (seen in CI).
        if not killed:
            child.kill()
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    store = await open_store(url)
    try:
        stored = {n.name for n in await store.list_nodes()}
        counter = await store.get_node("counter")
    finally:
        await store.close()
    assert len(created) > 100
    assert created <= stored, f"lost acknowledged creates: {sorted(created - stored)[:5]}"
    assert counter.metadata.labels is not None
    assert int(counter.metadata.labels["count"]) >= counted
