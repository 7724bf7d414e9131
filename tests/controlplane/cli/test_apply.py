"""Tests of `caractrl apply`: create, configure, unchanged, multi-document, JSON, stdin; bad input writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from controlplane.api import ProjectPhase, ProjectStatusPatch
from controlplane.client import Client
from controlplane.store.base import Store

from .conftest import API_URL, Caractrl

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

NODE = """\
apiVersion: caravanserai/v1
kind: Node
metadata:
  name: edge-1
  labels: {site: lab}
spec:
  hostname: edge-1
"""

PROJECT = """\
apiVersion: caravanserai/v1
kind: Project
metadata: {name: web}
spec:
  services: [{name: web, image: "nginx:1.27"}]
"""


async def test_apply_creates_then_reports_unchanged_then_configured(caractrl: Caractrl, memory_store: Store) -> None:
    first = await caractrl("apply", "-f", "-", input=NODE)
    again = await caractrl("apply", "-f", "-", input=NODE)
    changed = await caractrl("apply", "-f", "-", input=NODE.replace("site: lab", "site: field"))
    assert (first.exit_code, first.stdout) == (0, "node/edge-1 created\n")
    assert (again.exit_code, again.stdout) == (0, "node/edge-1 unchanged\n")
    assert (changed.exit_code, changed.stdout) == (0, "node/edge-1 configured\n")
    assert (await memory_store.get_node("edge-1")).metadata.labels == {"site": "field"}


async def test_apply_the_examples(caractrl: Caractrl, memory_store: Store) -> None:
    result = await caractrl("apply", "-f", str(EXAMPLES / "node.yaml"), "-f", str(EXAMPLES / "project.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout == "node/edge-demo created\nproject/demo-web created\n"
    assert result.stderr == ""
    project = await memory_store.get_project("demo-web")
    assert [s.name for s in project.spec.services] == ["web", "sync"]
    assert project.spec.resources is not None and project.spec.resources.cpu == "500m"


async def test_apply_multi_document_yaml(caractrl: Caractrl, memory_store: Store) -> None:
    result = await caractrl("apply", "-f", "-", input=f"{NODE}---\n{PROJECT}---\n")
    assert (result.exit_code, result.stdout) == (0, "node/edge-1 created\nproject/web created\n")
    assert [p.name for p in await memory_store.list_projects()] == ["web"]


async def test_apply_json_file(caractrl: Caractrl, tmp_path: Path, memory_store: Store) -> None:
    path = tmp_path / "node.json"
    node = {"kind": "Node", "metadata": {"name": "edge-j"}, "spec": {"unschedulable": True}}
    path.write_text(json.dumps(node))
    result = await caractrl("apply", "-f", str(path))
    assert (result.exit_code, result.stdout) == (0, "node/edge-j created\n")
    assert (await memory_store.get_node("edge-j")).spec.unschedulable is True


async def test_apply_json_array_and_a_list_kind(caractrl: Caractrl, memory_store: Store) -> None:
    array = json.dumps([{"kind": "Node", "metadata": {"name": "a"}}, {"kind": "Node", "metadata": {"name": "b"}}])
    listing = "kind: NodeList\nitems:\n  - {kind: Node, metadata: {name: c}}\n"
    assert (await caractrl("apply", "-f", "-", input=array)).stdout == "node/a created\nnode/b created\n"
    assert (await caractrl("apply", "-f", "-", input=listing)).stdout == "node/c created\n"
    assert [n.name for n in await memory_store.list_nodes()] == ["a", "b", "c"]


async def test_get_output_applies_back_unchanged_with_a_status_warning(caractrl: Caractrl) -> None:
    await caractrl("apply", "-f", "-", input=NODE)
    exported = (await caractrl("get", "nodes", "-o", "yaml")).stdout
    result = await caractrl("apply", "-f", "-", input=exported)
    assert (result.exit_code, result.stdout) == (0, "node/edge-1 unchanged\n")
    assert result.stderr == "Warning: <stdin>: document 1 item 1: status is ignored: the control plane owns it\n"


async def test_status_and_unknown_fields_are_ignored_and_said_so(caractrl: Caractrl, memory_store: Store) -> None:
    manifest = NODE + "  colour: blue\nstatus:\n  state: Ready\n"
    result = await caractrl("apply", "-f", "-", input=manifest)
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "Warning: <stdin>: document 1: unknown field spec.colour is ignored",
        "Warning: <stdin>: document 1: status is ignored: the control plane owns it",
    ]
    assert (await memory_store.get_node("edge-1")).status.state != "Ready"


BAD_CASES = [
    pytest.param(
        NODE + "---\n" + NODE.replace("edge-1", "edge-2").replace("spec:", 'spec:\n  unschedulable: "yes"'),
        ["Error: bad.yaml: document 2: spec.unschedulable: must be a boolean"],
        id="wrong-type-in-document-2",
    ),
    pytest.param(
        f"{NODE}---\nkind: Gadget\nmetadata: {{name: g}}\n",
        ['Error: bad.yaml: document 2: kind: unknown kind "Gadget" (expected Node or Project)'],
        id="unknown-kind",
    ),
    pytest.param(
        f"{NODE}---\nmetadata: {{name: g}}\n",
        ["Error: bad.yaml: document 2: kind: is required (Node or Project)"],
        id="missing-kind",
    ),
    pytest.param(
        NODE + "---\n" + NODE.replace("name: edge-1", "name: Edge_1"),
        [
            'Error: bad.yaml: document 2: metadata.name: Invalid value: "Edge_1": a lowercase RFC 1123 subdomain must '
            "consist of lower case alphanumeric characters, '-' or '.', each '.'-separated part starting and ending "
            "with an alphanumeric character and at most 63 characters, 253 characters in all (e.g. 'example.com')"
        ],
        id="invalid-name",
    ),
    pytest.param(
        NODE + "---\n- just\n- a list\n",
        ["Error: bad.yaml: document 2: must be a mapping with apiVersion, kind, metadata and spec"],
        id="not-a-mapping",
    ),
    pytest.param(
        NODE + "---\nkind: Node\nmetadata:\n  name: x\n   bad: indent\n",
        ["Error: bad.yaml: line 12, column 7: invalid YAML: mapping values are not allowed here"],
        id="malformed-yaml",
    ),
    pytest.param("", ["Error: bad.yaml: no objects found (the file is empty)"], id="empty-file"),
    pytest.param(
        "# only a comment\n---\n", ["Error: bad.yaml: no objects found (the file is empty)"], id="only-comments"
    ),
    pytest.param(
        PROJECT.replace('[{name: web, image: "nginx:1.27"}]', "[]")
        + "---\n"
        + NODE.replace("edge-1", "x").replace("apiVersion: caravanserai/v1", "apiVersion: caravanserai/v2"),
        [
            "Error: bad.yaml: document 1: spec.services: must not be empty",
            "Error: bad.yaml: document 2: apiVersion: must be 'caravanserai/v1'",
        ],
        id="every-error-of-every-document",
    ),
]


@pytest.mark.parametrize(("text", "errors"), BAD_CASES)
async def test_bad_input_writes_nothing(
    caractrl: Caractrl,
    memory_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    errors: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(text)
    result = await caractrl("apply", "-f", "bad.yaml")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == errors
    assert result.stdout == ""
    assert await memory_store.list_nodes() == []
    assert await memory_store.list_projects() == []


async def test_malformed_json_gives_line_and_column(caractrl: Caractrl) -> None:
    result = await caractrl("apply", "-f", "-", input='{"kind": "Node",\n "metadata": {"name": "j"},}')
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: <stdin>: line 2, column 28: invalid JSON: Expecting property name enclosed in double quotes\n"
    )


async def test_a_missing_file_is_named(caractrl: Caractrl, tmp_path: Path, memory_store: Store) -> None:
    missing = tmp_path / "nope.yaml"
    result = await caractrl("apply", "-f", "-", "-f", str(missing), input=NODE)
    assert (result.exit_code, result.stderr) == (1, f"Error: {missing}: No such file or directory\n")
    assert await memory_store.list_nodes() == []


async def test_a_body_over_the_limit_is_refused_before_anything_is_sent(
    caractrl: Caractrl, memory_store: Store
) -> None:
    huge = NODE.replace("edge-1", "big").replace("hostname: big", "hostname: " + "x" * (1024 * 1024))
    result = await caractrl("apply", "-f", "-", input=NODE + "---\n" + huge)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: <stdin>: document 2: node/big is ")
    assert result.stderr.endswith(" bytes, over the limit of 1048576 bytes\n")
    assert await memory_store.list_nodes() == []


async def test_the_server_limit_answers_with_a_problem_document(caractrl: Caractrl) -> None:
    # The test app's limit (64 KiB) is below the client's 1 MiB check: the server's 413 is reported.
    big = NODE.replace("labels: {site: lab}", "annotations: {blob: " + "x" * (100 * 1024) + "}")
    result = await caractrl("apply", "-f", "-", input=big)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: <stdin>: document 1: node/edge-1: Content Too Large: ")


async def test_a_placed_project_applies_unchanged_but_refuses_a_change(
    caractrl: Caractrl, api_transport: httpx.ASGITransport
) -> None:
    await caractrl("apply", "-f", "-", input=PROJECT)
    async with Client(API_URL, transport=api_transport) as client:
        await client.patch_project_status("web", ProjectStatusPatch(phase=ProjectPhase.RUNNING))
    same = await caractrl("apply", "-f", "-", input=PROJECT)
    changed = await caractrl("apply", "-f", "-", input=PROJECT.replace('"nginx:1.27"', '"nginx:1.28"'))
    assert (same.exit_code, same.stdout) == (0, "project/web unchanged\n")
    assert changed.exit_code == 1
    assert changed.stderr.startswith("Error: <stdin>: document 1: project/web: Conflict: ")
