"""The cara-agent console script: it keeps modules the agent never needs out of the process, then runs the agent.

A None entry in sys.modules makes `import x` raise ImportError at once, without searching sys.path. KEPT_OUT is the
one list of such modules, each one an optional import of a library the agent uses, which that library handles by
going without:

- `httpx._main`: httpx imports its own command line (rich and pygments, about 6 MiB resident) whenever those happen
  to be installed; the agent never uses it.
- `sniffio`: httpcore tries `import sniffio` for every connection (it is not installed with anyio 4), and a missing
  module is looked for again on each try: a stat of every sys.path entry, about a fifth of the CPU of a request.
  Without it httpcore takes asyncio, the agent's only event loop.

They are set here, before agent.main imports httpx, so that importing the agent package changes nothing global
(controlplane/entrypoints.py does the same for cara-server and caractrl; the agent may not import it).
tests/agent/test_footprint.py checks what the agent imports at start.
"""

from __future__ import annotations

import sys
from typing import Final

#: Modules the agent process goes without (see the module docstring).
KEPT_OUT: Final = ("httpx._main", "sniffio")


def keep_out() -> None:
    """keep_out marks every module of KEPT_OUT as absent, unless it is already imported."""
    for name in KEPT_OUT:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def cara_agent() -> None:
    """cara_agent is the cara-agent console script."""
    keep_out()
    from agent.main import main

    main()
