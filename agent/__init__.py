"""cara-agent: the node agent that registers its machine and reports its resources, tailnet paths and throughput."""

import sys

# httpx imports its own command line (rich and pygments, about 6 MiB resident) whenever those happen to be installed;
# the agent never uses it, and on an edge box every MiB counts (issue 5: RSS <= 40 MiB). A None entry makes httpx's
# `from ._main import main` fail with ImportError, which httpx handles by leaving its CLI out (controlplane does too).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
