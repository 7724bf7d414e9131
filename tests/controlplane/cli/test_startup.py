"""Tests that caractrl stays quick to start: `-h` and `get` import only what they need (issue 6)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: Runs one caractrl command line in a fresh interpreter against a MockTransport holding one Node, then prints
#: which of the heavy modules got imported. It keeps httpx's CLI out first, as the caractrl console script does.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from controlplane.entrypoints import without_httpx_cli
    without_httpx_cli()
    from controlplane.cli.env import Env
    from controlplane.cli.main import cli

    def factory(url):
        import httpx
        from controlplane.client import Client
        node = {"kind": "Node", "metadata": {"name": "edge-1", "createdAt": "2026-11-24T12:00:00Z"}, "status": {}}
        answer = {"kind": "NodeList", "items": [node]}
        return Client(url, transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)))

    try:
        cli.main(sys.argv[1:], obj=Env(environ={"CARA_SERVER": "http://cara"}, client_factory=factory))
    except SystemExit:
        pass
    heavy = ["asyncio", "controlplane.api", "pydantic", "yaml", "mesh", "rich", "httpx", "importlib.metadata",
             "certifi"]
    print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
    """
)


def imported(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-h"], []),
        (["get", "-h"], []),
        # The table and -o json are printed from the server's JSON: no models, no YAML, no CA bundle.
        (["get", "nodes"], ["asyncio", "httpx"]),
        (["get", "nodes", "-o", "json"], ["asyncio", "httpx"]),
        (["get", "nodes", "-o", "yaml"], ["asyncio", "httpx", "yaml"]),
        # A NAME and -l are checked by the pydantic-free rules (controlplane.naming, controlplane.selectors).
        (["get", "nodes", "edge-1"], ["asyncio", "httpx"]),
        (["get", "nodes", "-l", "tier in (edge),!gpu"], ["asyncio", "httpx"]),
    ],
    ids=["help", "verb-help", "get-table", "get-json", "get-yaml", "get-name", "get-selector"],
)
def test_each_command_imports_only_what_it_needs(args: list[str], expected: list[str]) -> None:
    assert imported(*args) == expected
