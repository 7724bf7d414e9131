"""Scheduling benchmark: 1,000 Pending Projects onto 1,000 Ready Nodes, through the real server's scheduler.

The Projects are written straight into the store while the server is stopped, so that the server's first
scheduler pass finds all of them at once. The figure is from that pass's start (the `lastTransitionTime` it
stamps on every Scheduled condition, the server's clock, which is this machine's) to the moment the last
Project is seen Scheduled through the API: an upper bound of the pass, writes included.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._server import BenchServer, start_server
from controlplane.api import (
    ObjectMeta,
    Project,
    ProjectPhase,
    ProjectSpec,
    ProjectStatus,
    ResourceRequests,
    ServiceDef,
)
from controlplane.store import open_store

COUNT = 1000
ALLOCATABLE = {"cpu": "4000m", "memory": "8Gi"}
FULL_BEAT: dict[str, Any] = {
    "capacity": {"cpu": "4000m", "memory": "8Gi", "disk": "100Gi"},
    "allocatable": ALLOCATABLE,
    "available": {"memory": "6Gi", "disk": "80Gi"},
    "network": {"ip": "100.64.0.9", "mode": "Direct"},
}


async def _ready_nodes(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        semaphore = asyncio.Semaphore(32)

        async def one(index: int) -> None:
            name = f"sched-node-{index:04}"
            async with semaphore:
                answer = await client.post("/api/v1/nodes", json={"metadata": {"name": name}})
                if answer.status_code not in (201, 409):
                    raise RuntimeError(f"registering {name}: {answer.status_code}")
                answer = await client.post(f"/api/v1/nodes/{name}/heartbeat", json=FULL_BEAT)
                if answer.status_code != 204:
                    raise RuntimeError(f"heartbeat {name}: {answer.status_code}")

        await asyncio.gather(*(one(i) for i in range(COUNT)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = (await client.get("/api/v1/nodes")).json()["items"]
            if sum(item["status"].get("state") == "Ready" for item in items) == COUNT:
                return
            await asyncio.sleep(0.5)
    raise RuntimeError("the scheduling nodes did not all turn Ready within 60 s")


async def _pending_projects(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        created = datetime.now(UTC)
        projects = [
            Project(
                metadata=ObjectMeta(
                    name=f"sched-{i:04}",
                    created_at=created + timedelta(microseconds=i),
                    updated_at=created + timedelta(microseconds=i),
                ),
                spec=ProjectSpec(
                    services=[ServiceDef(name="web", image="nginx:1.27")],
                    resources=ResourceRequests(cpu="500m", memory="512Mi"),
                ),
                status=ProjectStatus(phase=ProjectPhase.PENDING),
            )
            for i in range(COUNT)
        ]
        for start in range(0, COUNT, 100):
            await asyncio.gather(*(store.create_project(p) for p in projects[start : start + 100]))
    finally:
        await store.close()


def _scheduled_seconds(server: BenchServer) -> tuple[float, int]:
    last = f"sched-{COUNT - 1:04}"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if client.get(f"/api/v1/projects/{last}").json()["status"].get("phase") == "Scheduled":
                if not client.get("/api/v1/projects", params={"phase": "Pending"}).json()["items"]:
                    break
            time.sleep(0.01)
        else:
            raise RuntimeError("the projects were not all Scheduled within 60 s")
        seen = datetime.now(UTC)
        items = client.get("/api/v1/projects").json()["items"]
    starts = set()
    for item in items:
        (condition,) = [c for c in item["status"]["conditions"] if c["type"] == "Scheduled"]
        starts.add(datetime.fromisoformat(condition["lastTransitionTime"]))
    return (seen - min(starts)).total_seconds(), len(starts)


def measure(store_url: str, log: Path, progress: Any) -> tuple[float, int]:
    """measure returns the seconds to schedule COUNT Pending Projects onto COUNT Ready Nodes, and how many
    scheduler passes it took (1 when the pass found every Project at once)."""
    server = start_server(store_url, log=log)
    try:
        progress(f"scheduling: {COUNT} Ready nodes with allocatable {ALLOCATABLE}")
        asyncio.run(_ready_nodes(server.url))
    finally:
        server.stop()
    progress(f"scheduling: {COUNT} Pending projects written to the store; restarting the server")
    asyncio.run(_pending_projects(store_url))
    server = start_server(store_url, log=log)
    try:
        return _scheduled_seconds(server)
    finally:
        server.stop()
