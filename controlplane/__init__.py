"""Caravanserai control plane: API types, store, server, controllers, client and caractrl."""

import sys

# httpx imports its own command line (rich and pygments: ~60 ms and ~6 MiB) whenever those happen to be installed;
# neither the server nor caractrl uses it. A None entry makes httpx's `from ._main import main` fail with ImportError,
# which httpx handles by leaving its CLI out. (agent/__init__.py does the same: the agent may import httpx first.)
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
