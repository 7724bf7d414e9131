"""caractrl: the operator CLI of the Caravanserai control plane (one module per verb, `main.cli` is the root)."""

import sys

# httpx imports its own command line (rich and pygments, about 60 ms) whenever those happen to be installed; caractrl
# never uses it. A None entry makes httpx's `from ._main import main` fail with ImportError, which httpx handles by
# leaving its CLI out. The same line as in agent/__init__.py, for the same reason.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
