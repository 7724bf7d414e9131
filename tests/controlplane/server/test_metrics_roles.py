"""/metrics names every Node, its paths and throughput: it needs an admin, viewer or scraper role; only the
health check answers any caller."""

from __future__ import annotations

import pytest

from controlplane.server.identity import Caller, Role
from controlplane.store.base import Store
from tests.conftest import FakeClock
from tests.web.test_web_routes import _get


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER, Role.SCRAPER])
async def test_admin_viewer_and_scraper_read_metrics(memory_store: Store, clock: FakeClock, role: Role) -> None:
    answer = await _get(memory_store, clock, Caller("prom", role, "n-p"), "/metrics")
    assert answer.status_code == 200 and "cara_nodes" in answer.text


async def test_a_node_or_a_stranger_may_not(memory_store: Store, clock: FakeClock) -> None:
    node = await _get(memory_store, clock, Caller("edge1", Role.NODE, "n-1"), "/metrics")
    assert node.status_code == 403 and "may not read /metrics" in node.json()["detail"]
    assert (await _get(memory_store, clock, None, "/metrics")).status_code == 401


async def test_a_scraper_reads_nothing_else(memory_store: Store, clock: FakeClock) -> None:
    scraper = Caller("prom", Role.SCRAPER, "n-p")
    for path in ("/api/v1/nodes", "/api/v1/projects", "/ui"):
        assert (await _get(memory_store, clock, scraper, path)).status_code == 403, path


async def test_the_health_check_answers_anyone(memory_store: Store, clock: FakeClock) -> None:
    assert (await _get(memory_store, clock, None, "/api/healthz")).text == "OK"
