"""The cara-agent console script: it keeps httpx's CLI out of the process, then runs the agent.

httpx imports its own command line (rich and pygments, about 6 MiB resident) whenever those happen to be installed;
the agent never uses it, and on an edge box every MiB counts (issue 5: RSS <= 40 MiB). A None entry in sys.modules
makes httpx's `from ._main import main` fail with ImportError, which httpx handles by leaving its CLI out. It is
set here, before agent.main imports httpx, so that importing the agent package changes nothing global
(controlplane/entrypoints.py does the same for cara-server and caractrl; the agent may not import it).
"""

from __future__ import annotations

import sys


def cara_agent() -> None:
    """cara_agent is the cara-agent console script."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from agent.main import main

    main()
