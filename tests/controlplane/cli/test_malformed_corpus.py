"""Every manifest of the malformed corpus fails through the API and through `caractrl apply`, naming the field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.controlplane.cli.conftest import Caractrl

CORPUS = Path(__file__).resolve().parents[2] / "data" / "malformed"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Expected:
    """Expected is one entry of expected.yaml: how the file goes to the API, and what both sides must say."""

    # Route: POST /api/v1/{route}. Send: "raw" sends the bytes as they are (the point is their syntax); "json" sends
    # the parsed documents as JSON, as caractrl would (one document as an object, several as an array).
    route: str
    send: str
    # API: a substring of the problem document's errors (or detail); CLI: a substring of caractrl's stderr.
    api: str
    cli: str
    # Status: the API's answer; 400 unless said. Why: the reason when the API accepts what caractrl refuses.
    status: int = 400
    why: str | None = None


def _load_index() -> dict[str, Expected]:
    with (CORPUS / "expected.yaml").open(encoding="utf-8") as handle:
        return {name: Expected(**entry) for name, entry in yaml.safe_load(handle).items()}


INDEX = _load_index()


def test_the_index_covers_the_corpus() -> None:
    files = sorted(path.name for path in CORPUS.iterdir() if path.name != "expected.yaml")
    assert sorted(INDEX) == files
    assert len(files) >= 150


def _wanted(text: str | list[str]) -> list[str]:
    return [text] if isinstance(text, str) else text


def _api_body(path: Path, expected: Expected) -> bytes:
    raw = path.read_bytes()
    if expected.send == "raw":
        return raw
    text = raw.decode("utf-8")
    docs = [json.loads(text)] if text.lstrip()[:1] in ("{", "[") else list(yaml.safe_load_all(text))
    return json.dumps(docs[0] if len(docs) == 1 else docs, default=str).encode()  # a YAML date becomes its text


async def _stored(api: httpx.AsyncClient) -> list[Any]:
    nodes = (await api.get("/api/v1/nodes")).json()["items"]
    projects = (await api.get("/api/v1/projects")).json()["items"]
    return [*nodes, *projects]


@pytest.mark.parametrize("name", sorted(INDEX))
async def test_the_api_refuses_it(api: httpx.AsyncClient, name: str) -> None:
    expected = INDEX[name]
    answer = await api.post(f"/api/v1/{expected.route}", content=_api_body(CORPUS / name, expected))
    assert answer.status_code == expected.status, answer.text
    if expected.status == 201:  # JSON cannot say what caractrl refuses here (see `why`); nothing else to check
        assert expected.why
        await api.delete(f"/api/v1/{expected.route}/{answer.json()['metadata']['name']}")
    else:
        assert answer.headers["content-type"] == PROBLEM
        problem = answer.json()
        for wanted in _wanted(expected.api):
            assert any(wanted in line for line in problem.get("errors") or [problem["detail"]]), problem
    assert await _stored(api) == []


@pytest.mark.parametrize("name", sorted(INDEX))
async def test_caractrl_apply_refuses_it(caractrl: Caractrl, api: httpx.AsyncClient, name: str) -> None:
    result = await caractrl("apply", "-f", str(CORPUS / name))
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # nothing was created, configured or left unchanged
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith(("Error: ", "  ")) for line in lines), result.stderr
    for wanted in _wanted(INDEX[name].cli):
        assert wanted in result.stderr
    assert "Traceback" not in result.stderr
    assert await _stored(api) == []


async def test_a_name_defined_in_two_files_is_refused(
    caractrl: Caractrl,
    api: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    """Each file is fine alone; applied together the second would silently replace the first."""
    for name, unschedulable in (("a.yaml", "false"), ("b.yaml", "true")):
        manifest = f"kind: Node\nmetadata: {{name: edge1}}\nspec: {{unschedulable: {unschedulable}}}\n"
        (tmp_path / name).write_text(manifest)
    result = await caractrl("apply", "-f", str(tmp_path / "a.yaml"), "-f", str(tmp_path / "b.yaml"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path}/b.yaml: document 1: metadata.name: node/edge1 is already defined in "
        f"{tmp_path}/a.yaml: document 1\n"
    )
    assert await _stored(api) == []
