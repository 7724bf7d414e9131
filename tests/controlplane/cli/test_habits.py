"""kubectl's habits in caractrl (issue 15): output forms, several names, label/annotate, apply folders, dry runs,
delete -f, global flags anywhere, bad --server, completion, watch and drain's wait."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from controlplane.api import Project, ProjectPhase
from controlplane.cli.context import Env
from controlplane.cli.main import cli, hoist_global_flags
from controlplane.client import Client
from controlplane.store.base import Store

from .conftest import Caractrl
from .test_get import fleet  # noqa: F401 (the fixture: edge-1, edge-2 and project web, five minutes old)

pytestmark = pytest.mark.usefixtures("fleet")


async def test_output_name_and_several_names_and_type_slash_name(caractrl: Caractrl) -> None:
    assert (await caractrl("get", "nodes", "-o", "name")).stdout == "node/edge-1\nnode/edge-2\n"
    several = await caractrl("get", "nodes", "edge-2", "edge-1", "-o", "name")
    assert several.stdout == "node/edge-2\nnode/edge-1\n"
    mixed = await caractrl("get", "node/edge-1", "project/web", "-o", "name")
    assert mixed.stdout == "node/edge-1\nproject/web\n"
    tables = (await caractrl("get", "node/edge-1", "project/web")).stdout.split("\n\n")
    assert tables[0].startswith("NAME     STATE") and tables[1].startswith("NAME   PHASE")
    as_json = json.loads((await caractrl("get", "nodes", "edge-1", "edge-2", "-o", "json")).stdout)
    assert as_json["kind"] == "List" and [i["metadata"]["name"] for i in as_json["items"]] == ["edge-1", "edge-2"]
    partly = await caractrl("get", "nodes", "edge-1", "ghost", "-o", "name")
    assert (partly.exit_code, partly.stdout) == (1, "node/edge-1\n")
    assert partly.stderr == 'Error: Not Found: Node "ghost" not found\n'
    mixed_forms = await caractrl("get", "nodes", "node/edge-1")
    assert mixed_forms.exit_code == 1 and "TYPE/NAME" in mixed_forms.stderr


async def test_jsonpath_with_kubectl_braces(caractrl: Caractrl) -> None:
    names = await caractrl("get", "nodes", "-o", "jsonpath={.items[*].metadata.name}")
    assert names.stdout == "edge-1 edge-2\n"
    one = await caractrl("get", "node", "edge-1", "-o", "jsonpath=ip={.status.network.ip} site={.metadata.labels.site}")
    assert one.stdout == "ip=100.64.0.5 site=lab\n"
    bad = await caractrl("get", "nodes", "-o", "jsonpath={.items[}")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: -o jsonpath: invalid JSONPath")


async def test_custom_columns_sort_by_no_headers_and_show_labels(caractrl: Caractrl) -> None:
    columns = await caractrl("get", "nodes", "-o", "custom-columns=NAME:.metadata.name,IP:.status.network.ip")
    assert columns.stdout.splitlines() == ["NAME     IP", "edge-1   100.64.0.5", "edge-2   <none>"]
    by_site = await caractrl("get", "nodes", "--sort-by", ".metadata.labels.site", "-o", "name")
    assert by_site.stdout == "node/edge-2\nnode/edge-1\n"  # field < lab
    bare = await caractrl("get", "nodes", "--no-headers", "--show-labels")
    assert [line.split()[0] for line in bare.stdout.splitlines()] == ["edge-1", "edge-2"]
    assert [line.split()[-1] for line in bare.stdout.splitlines()] == ["site=lab", "site=field"]
    bad = await caractrl("get", "nodes", "-o", "custom-columns=NAME")
    assert bad.exit_code == 1 and '"NAME" is not HEADER:JSONPATH' in bad.stderr


async def test_set_based_selectors(caractrl: Caractrl) -> None:
    for selector, names in [
        ("site!=lab", "node/edge-2\n"),
        ("site in (lab,x)", "node/edge-1\n"),
        ("site notin (lab)", "node/edge-2\n"),
        ("site", "node/edge-1\nnode/edge-2\n"),
        ("!site", ""),
    ]:
        result = await caractrl("get", "nodes", "-l", selector, "-o", "name")
        assert (result.exit_code, result.stdout) == (0, names), selector


async def test_label_and_annotate_with_overwrite_and_removal(caractrl: Caractrl, memory_store: Store) -> None:
    assert (await caractrl("label", "node", "edge-1", "tier=edge")).stdout == "node/edge-1 labeled\n"
    refused = await caractrl("label", "node", "edge-1", "site=other")
    assert refused.exit_code == 1 and "--overwrite" in refused.stderr
    assert (await caractrl("label", "node/edge-1", "site=other", "--overwrite")).exit_code == 0
    assert (await caractrl("label", "node", "edge-1", "tier-")).exit_code == 0
    assert (await memory_store.get_node("edge-1")).metadata.labels == {"site": "other"}
    bad = await caractrl("label", "node", "edge-1", "bad key=x")
    assert bad.exit_code == 1 and "key: a qualified name" in bad.stderr
    assert (await caractrl("annotate", "project", "web", "owner=team-a")).stdout == "project/web annotated\n"
    assert (await memory_store.get_project("web")).metadata.annotations == {"owner": "team-a"}


async def test_a_placed_project_takes_a_label(caractrl: Caractrl, memory_store: Store) -> None:
    await memory_store.update_project("web", _placed(ProjectPhase.RUNNING, "edge-1"))
    result = await caractrl("label", "project", "web", "release=v2")
    assert result.exit_code == 0, result.stderr
    stored = await memory_store.get_project("web")
    assert stored.metadata.labels == {"app": "web", "release": "v2"} and stored.status.phase is ProjectPhase.RUNNING


async def test_describe_and_delete_several(caractrl: Caractrl, memory_store: Store) -> None:
    pages = (await caractrl("describe", "node/edge-1", "project/web")).stdout
    assert "edge-1" in pages and "web" in pages
    deleted = await caractrl("delete", "node", "edge-1", "edge-2")
    assert deleted.stdout == "node/edge-1 deleted\nnode/edge-2 deleted\n"
    assert await memory_store.list_nodes() == []


async def test_delete_node_force_is_refused(caractrl: Caractrl) -> None:
    result = await caractrl("delete", "node", "edge-1", "--force")
    assert result.exit_code == 1 and "--force applies to Projects only" in result.stderr


async def test_apply_a_folder_recursively_dry_runs_and_delete_by_file(
    caractrl: Caractrl, memory_store: Store, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("kind: Node\nmetadata: {name: edge-a}\n")
    (tmp_path / "sub" / "b.json").write_text('{"kind": "Node", "metadata": {"name": "edge-b"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    client_dry = await caractrl("apply", "-f", str(tmp_path), "-R", "--dry-run=client")
    assert client_dry.stdout == "node/edge-a validated (dry run)\nnode/edge-b validated (dry run)\n"
    server_dry = await caractrl("apply", "-f", str(tmp_path), "--dry-run=server")
    assert server_dry.stdout == "node/edge-a created (server dry run)\n"
    assert [n.name for n in await memory_store.list_nodes()] == ["edge-1", "edge-2"]
    applied = await caractrl("apply", "-f", str(tmp_path), "-R")
    assert applied.stdout == "node/edge-a created\nnode/edge-b created\n"
    gone = await caractrl("delete", "-f", str(tmp_path), "-R")
    assert gone.stdout == "node/edge-a deleted\nnode/edge-b deleted\n"
    assert [n.name for n in await memory_store.list_nodes()] == ["edge-1", "edge-2"]


async def test_stdin_named_twice_is_read_once(caractrl: Caractrl) -> None:
    result = await caractrl("apply", "-f", "-", "-f", "-", input="kind: Node\nmetadata: {name: edge-s}\n")
    assert (result.exit_code, result.stdout) == (0, "node/edge-s created\n")


async def test_global_flags_anywhere(caractrl: Caractrl) -> None:
    result = await caractrl("get", "nodes", "-o", "name", "--server", "http://cara-server.test", "-v")
    assert result.exit_code == 0 and "Using server http://cara-server.test (from --server)" in result.stderr
    assert hoist_global_flags(["get", "nodes", "--server=x", "-l", "a=b"]) == [
        "--server=x",
        "get",
        "nodes",
        "-l",
        "a=b",
    ]
    assert hoist_global_flags(["-v", "get", "--", "--server"]) == ["-v", "get", "--", "--server"]


@pytest.mark.parametrize(
    ("flag", "environ", "error"),
    [
        (["--server", "http://127.0.0.1:abc"], {}, "Error: --server: invalid server URL 'http://127.0.0.1:abc': "),
        ([], {"CARA_SERVER": "ftp://cara"}, "Error: CARA_SERVER: invalid server URL 'ftp://cara': must be http"),
    ],
    ids=["bad-port", "bad-scheme"],
)
def test_a_bad_server_url_is_one_line_naming_where_it_came_from(
    flag: list[str], environ: dict[str, str], error: str
) -> None:
    result = CliRunner().invoke(cli, [*flag, "get", "nodes"], obj=Env(environ=environ))
    assert result.exit_code == 1 and result.stderr.startswith(error) and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_completion_scripts_and_live_names(api_transport: httpx.ASGITransport) -> None:
    for shell in ("bash", "zsh", "fish"):
        result = CliRunner().invoke(cli, ["completion", shell], obj=Env(environ={}))
        assert result.exit_code == 0 and "_CARACTRL_COMPLETE" in result.stdout
    env = Env(
        environ={"CARA_SERVER": "http://cara-server.test"},
        client_factory=lambda url: Client(url, transport=api_transport),
    )

    def complete(words: str, incomplete: str) -> list[str]:
        from click.shell_completion import ShellComplete

        completer = ShellComplete(cli, {"obj": env}, "caractrl", "_CARACTRL_COMPLETE")
        return [item.value for item in completer.get_completions(words.split(), incomplete)]

    assert {"get", "label", "completion"} <= set(complete("", ""))
    assert complete("get", "no") == ["nodes"]
    assert complete("get nodes", "edge") == ["edge-1", "edge-2"]
    assert "--show-labels" in complete("get nodes", "--sh")


def _placed(phase: ProjectPhase, node: str | None) -> Callable[[Project], Project]:
    def mutate(project: Project) -> Project:
        status = project.status.model_copy(update={"phase": phase, "node_ref": node})
        return project.model_copy(update={"status": status})

    return mutate


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
async def test_get_watch_prints_changes_until_the_timeout(caractrl: Caractrl, memory_store: Store) -> None:
    import asyncio

    from controlplane.api import Node, ObjectMeta

    async def change() -> None:
        await asyncio.sleep(0.4)
        await memory_store.create_node(Node(metadata=ObjectMeta(name="edge-3")))
        await memory_store.delete_node("edge-2")

    changing = asyncio.create_task(change())
    result = await caractrl("get", "nodes", "-w", "--request-timeout", "1.5", "-o", "name")
    await changing
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["node/edge-1", "node/edge-2"]  # the listing, then one line per change (one poll saw both)
    assert sorted(lines[2:]) == ["node/edge-2", "node/edge-3"]


def test_ctrl_c_ends_a_watch_without_a_traceback() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("watch") == "true":
            raise KeyboardInterrupt
        return httpx.Response(200, json={"kind": "NodeList", "items": []})

    env = Env(
        environ={"CARA_SERVER": "http://cara"},
        client_factory=lambda url: Client(url, transport=httpx.MockTransport(answer)),
    )
    result = CliRunner().invoke(cli, ["get", "nodes", "-w"], obj=env)
    assert result.exit_code == 0 and "Traceback" not in result.output and "Aborted" not in result.output


@pytest.mark.slow  # seconds of waiting: out of the --fast profile, still in CI
async def test_drain_waits_for_the_projects_to_leave(caractrl: Caractrl, memory_store: Store) -> None:
    import asyncio

    await memory_store.update_project("web", _placed(ProjectPhase.RUNNING, "edge-1"))
    timed_out = await caractrl("drain", "edge-1", "--timeout", "1s")
    assert timed_out.exit_code == 1
    assert timed_out.stdout == "node/edge-1 cordoned and draining\nwaiting for project/web to leave\n"
    assert "timed out after 1s waiting for 1 project(s) to leave node/edge-1: web" in timed_out.stderr

    async def move() -> None:
        await asyncio.sleep(0.5)
        await memory_store.update_project("web", _placed(ProjectPhase.PENDING, None))

    moving = asyncio.create_task(move())
    drained = await caractrl("drain", "edge-1", "--timeout", "10s")
    await moving
    assert drained.exit_code == 0
    assert drained.stdout.splitlines() == [
        "node/edge-1 cordoned and draining",
        "waiting for project/web to leave",
        "project/web left node/edge-1",
        "node/edge-1 drained",
    ]
    no_wait = await caractrl("drain", "edge-2", "--no-wait")
    assert no_wait.stdout == "node/edge-2 drained\n"
