"""What cara-agent imports at start: modules it needs only on a rare path, or never, stay out (issue 16: RSS).

The agent starts in a fresh interpreter the way its console script starts it (agent.entrypoint), and the test reads
sys.modules once the composition root is imported. Memory is measured by `bench.agent` in the lab; this test is
its guard that does not depend on timing or on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

from agent.entrypoint import KEPT_OUT

#: Never at start: not needed (click: argparse reads the one command line), loaded on a rare path (html: a 502 page;
#: ctypes: after a throughput test; websockets: the first port-forward), never used (a web framework, httpx's CLI and
#: its rich/pygments, a CA bundle for http:// URLs), or not the agent's (the server, the store, caractrl).
DENIED = (
    "click",
    "html",
    "ctypes",
    "websockets",
    "uvicorn",
    "starlette",
    "fastapi",
    "rich",
    "pygments",
    "certifi",
    "prometheus_client",
    "yaml",
    "sqlite3",
    "controlplane.server",
    "controlplane.store",
    "controlplane.cli",
)

START = """
import json, sys
from agent.entrypoint import keep_out
keep_out()
import agent.main
print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None)))
"""


def started_modules() -> list[str]:
    out = subprocess.run([sys.executable, "-c", START], check=True, capture_output=True, text=True, timeout=60).stdout
    return list(json.loads(out))


def test_the_agent_starts_without_the_modules_it_does_not_need_at_start() -> None:
    modules = started_modules()
    assert "agent.main" in modules and "httpx" in modules and "pydantic" in modules  # it did start
    loaded = sorted(m for m in modules if any(m == d or m.startswith(f"{d}.") for d in (*DENIED, *KEPT_OUT)))
    assert loaded == []
