"""scripts/pg-cluster: start and stop are idempotent, url finds the running cluster, stop removes everything."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from controlplane.store import open_store
from tests.factories import node

from .conftest import PG_CLUSTER


async def run(command: str, cluster_dir: Path) -> tuple[int, str]:
    """run runs `pg-cluster command` for cluster_dir and returns its exit code and stdout."""
    process = await asyncio.create_subprocess_exec(
        str(PG_CLUSTER),
        command,
        env={**os.environ, "CARA_PG_DIR": str(cluster_dir)},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 600)
    assert process.returncode is not None
    return process.returncode, stdout.decode()


@pytest.mark.postgres
@pytest.mark.slow
async def test_pg_cluster_lifecycle() -> None:
    # Not tmp_path: pytest's base directory is private to root, and the cluster runs as the postgres user.
    cluster_dir = Path(tempfile.mkdtemp(prefix="cara-pg-test-"))
    code, _ = await run("url", cluster_dir)
    assert code != 0  # an empty directory: nothing running yet
    code, started = await run("start", cluster_dir)
    try:
        assert code == 0
        url = started.strip().splitlines()[-1]
        assert url.startswith("postgresql://cara:") and "@127.0.0.1:" in url
        assert await run("start", cluster_dir) == (0, url + "\n")  # idempotent: same cluster, same URL
        assert await run("url", cluster_dir) == (0, url + "\n")
        store = await open_store(url)
        try:
            await store.create_node(node("edge-1"))
            assert [n.name for n in await store.list_nodes()] == ["edge-1"]
        finally:
            await store.close()
        assert await asyncio.to_thread((cluster_dir / "data" / "PG_VERSION").is_file)
    finally:
        assert (await run("stop", cluster_dir))[0] == 0
    assert not await asyncio.to_thread(cluster_dir.exists)
    assert (await run("stop", cluster_dir))[0] == 0  # idempotent
