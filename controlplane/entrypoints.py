"""The console scripts of the control plane, cara-server and caractrl: each keeps httpx's CLI out, then runs.

httpx imports its own command line (rich and pygments: ~60 ms and ~6 MiB) whenever those happen to be installed;
neither binary uses it. A None entry in sys.modules makes httpx's `from ._main import main` fail with ImportError,
which httpx handles by leaving its CLI out. It is set here, in the process's entry point and before the binary's
modules import httpx, so that importing a controlplane package (a test, a library user) changes nothing global.
agent/entrypoint.py does the same for cara-agent (the agent may not import this package).
"""

from __future__ import annotations

import sys

#: The module httpx imports its command line from.
HTTPX_CLI: str = "httpx._main"


def without_httpx_cli() -> None:
    """without_httpx_cli makes httpx, when it is first imported, leave its command line (and rich) out."""
    sys.modules.setdefault(HTTPX_CLI, None)  # type: ignore[arg-type]


def cara_server() -> None:
    """cara_server is the cara-server console script."""
    without_httpx_cli()
    from controlplane.server.main import main

    main()


def caractrl() -> None:
    """caractrl is the caractrl console script."""
    without_httpx_cli()
    from controlplane.cli.main import main

    main()
