"""Tests that the console scripts keep httpx's CLI (rich) out, and that importing our packages changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

#: The console scripts pyproject.toml declares, name -> "module:function".
SCRIPTS: dict[str, str] = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
    "scripts"
]

#: Runs one console script's function with --help in a fresh interpreter, imports httpx, and reports what got loaded.
RUN_SCRIPT = textwrap.dedent(
    """
    import importlib, json, sys
    module, function = sys.argv[1].split(":")
    sys.argv = [sys.argv[2], "--help"]
    try:
        getattr(importlib.import_module(module), function)()
    except SystemExit:
        pass
    import httpx
    print(json.dumps({"rich": "rich" in sys.modules, "cli": sys.modules.get("httpx._main", "absent") is None}))
    """
)


def _run(*args: str) -> dict[str, bool]:
    done = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, check=True, timeout=60)
    loaded: dict[str, bool] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_three_binaries_are_declared() -> None:
    assert sorted(SCRIPTS) == ["cara-agent", "cara-server", "caractrl"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_console_script_leaves_httpx_cli_out(name: str) -> None:
    assert _run(RUN_SCRIPT, SCRIPTS[name], name) == {"rich": False, "cli": True}


def test_importing_the_packages_leaves_httpx_alone() -> None:
    rich_installed = _run("import importlib.util as u, json; print(json.dumps(u.find_spec('rich') is not None))")
    loaded = _run(
        "import json, sys, agent, agent.main, controlplane.api, controlplane.client, controlplane.server.app, httpx;"
        "print(json.dumps({'rich': 'rich' in sys.modules, 'cli': sys.modules.get('httpx._main', 'absent') is None}))"
    )
    # httpx loads its CLI (and rich, where installed) as it always does: no package of ours decides that for a user.
    assert loaded == {"rich": bool(rich_installed), "cli": False}
