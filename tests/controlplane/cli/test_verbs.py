"""Tests of `caractrl delete`, `cordon`, `uncordon` and `drain` against the in-process API."""

from __future__ import annotations

import httpx
import pytest

from controlplane.api import NodeState, ProjectPhase, ProjectStatusPatch
from controlplane.client import Client
from controlplane.store.base import NotFound, Store

from .conftest import API_URL, Caractrl

NODE = "kind: Node\nmetadata: {name: edge-1}\n"
PROJECT = "kind: Project\nmetadata: {name: web}\nspec: {services: [{name: web, image: nginx}]}\n"


async def place(api_transport: httpx.ASGITransport, memory_store: Store) -> None:
    """place binds project web to edge-1 and marks it Running, as the scheduler and the node would."""
    await memory_store.update_project(
        "web",
        lambda p: p.model_copy(update={"status": p.status.model_copy(update={"node_ref": "edge-1"})}),
    )
    async with Client(API_URL, transport=api_transport) as client:
        await client.patch_project_status("web", ProjectStatusPatch(phase=ProjectPhase.RUNNING))


async def test_cordon_then_uncordon(caractrl: Caractrl, memory_store: Store) -> None:
    await caractrl("apply", "-f", "-", input=NODE)
    cordoned = await caractrl("cordon", "edge-1")
    assert (cordoned.exit_code, cordoned.stdout) == (0, "node/edge-1 cordoned\n")
    assert (await memory_store.get_node("edge-1")).spec.unschedulable is True
    uncordoned = await caractrl("uncordon", "edge-1")
    assert (uncordoned.exit_code, uncordoned.stdout) == (0, "node/edge-1 uncordoned\n")
    assert (await memory_store.get_node("edge-1")).spec.unschedulable is False


async def test_drain_then_uncordon(caractrl: Caractrl, memory_store: Store) -> None:
    await caractrl("apply", "-f", "-", input=NODE)
    drained = await caractrl("drain", "edge-1")
    assert (drained.exit_code, drained.stdout) == (0, "node/edge-1 cordoned and draining\nnode/edge-1 drained\n")
    node = await memory_store.get_node("edge-1")
    assert (node.status.state, node.spec.unschedulable) == (NodeState.DRAINING, True)
    assert (await caractrl("uncordon", "edge-1")).exit_code == 0
    assert (await memory_store.get_node("edge-1")).status.state != NodeState.DRAINING


@pytest.mark.parametrize("verb", ["cordon", "uncordon", "drain"])
async def test_node_verbs_on_a_missing_node(caractrl: Caractrl, verb: str) -> None:
    result = await caractrl(verb, "ghost")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", 'Error: Not Found: Node "ghost" not found\n')


async def test_delete_node(caractrl: Caractrl, memory_store: Store) -> None:
    await caractrl("apply", "-f", "-", input=NODE)
    result = await caractrl("delete", "node", "edge-1")
    assert (result.exit_code, result.stdout) == (0, "node/edge-1 deleted\n")
    with pytest.raises(NotFound):
        await memory_store.get_node("edge-1")


async def test_delete_a_node_with_projects_is_a_conflict(
    caractrl: Caractrl, memory_store: Store, api_transport: httpx.ASGITransport
) -> None:
    await caractrl("apply", "-f", "-", input=NODE + "---\n" + PROJECT)
    await place(api_transport, memory_store)
    result = await caractrl("delete", "nodes", "edge-1")
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: Conflict: node "edge-1" has 1 project(s) assigned (web)')
    assert (await memory_store.get_node("edge-1")).name == "edge-1"


async def test_delete_an_idle_project_is_immediate(caractrl: Caractrl, memory_store: Store) -> None:
    await caractrl("apply", "-f", "-", input=PROJECT)
    result = await caractrl("delete", "project", "web")
    assert (result.exit_code, result.stdout) == (0, "project/web deleted\n")
    assert await memory_store.list_projects() == []


async def test_delete_a_running_project_terminates_it_unless_forced(
    caractrl: Caractrl, memory_store: Store, api_transport: httpx.ASGITransport
) -> None:
    await caractrl("apply", "-f", "-", input=NODE + "---\n" + PROJECT)
    await place(api_transport, memory_store)
    gentle = await caractrl("delete", "project", "web")
    assert (gentle.exit_code, gentle.stdout) == (0, "project/web terminating\n")
    assert (await memory_store.get_project("web")).status.phase is ProjectPhase.TERMINATING
    forced = await caractrl("delete", "project", "web", "--force")
    assert (forced.exit_code, forced.stdout) == (0, "project/web deleted\n")
    assert await memory_store.list_projects() == []


async def test_delete_missing_and_unknown(caractrl: Caractrl) -> None:
    missing = await caractrl("delete", "project", "ghost")
    unknown = await caractrl("delete", "gadget", "x")
    assert (missing.exit_code, missing.stderr) == (1, 'Error: Not Found: Project "ghost" not found\n')
    assert (unknown.exit_code, unknown.stderr) == (
        1,
        'Error: unknown resource type "gadget" (expected nodes or projects)\n',
    )
