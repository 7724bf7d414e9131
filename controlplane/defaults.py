"""Values every Caravanserai package shares: the server's name and port, the node tag, the agent's backoff and
keep-alive.

They live once here, in a leaf module that imports nothing of ours (and nothing heavy: caractrl's start-up reads
it without loading pydantic), re-exported by `controlplane.api`: the server, the agent, caractrl and the
controllers import them, so that a change to one cannot leave another package behind.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

#: The control plane's MagicDNS name (design §5.3); also the peer name of a Node's path to the control plane.
SERVER_NAME: Final = "cara-server"
#: The API's TCP port on the tailnet (design §3.1).
SERVER_PORT: Final = 8080
#: The port of the agent's own HTTP server (/healthz, /metrics; design §3.6).
AGENT_PORT: Final = 9090
#: The ACL tag every agent's machine carries; the server grants the node role to it by default.
NODE_TAG: Final = "tag:cara-node"

#: The agent's retry backoff after a failed beat: BASE seconds, doubling to at most CAP, jittered by ±JITTER.
AGENT_BACKOFF_BASE: Final = 5.0
AGENT_BACKOFF_CAP: Final = 60.0
AGENT_BACKOFF_JITTER: Final = 0.2
#: The longest an agent waits between two attempts (the cap at the top of its jitter). The lifecycle's stall
#: rule depends on it: agents back off while the control plane stalls.
AGENT_MAX_BACKOFF: Final = timedelta(seconds=AGENT_BACKOFF_CAP * (1 + AGENT_BACKOFF_JITTER))

#: Seconds the server keeps an idle keep-alive connection open before closing it (uvicorn's timeout_keep_alive).
SERVER_KEEPALIVE_IDLE: Final = 30
#: Seconds the agent keeps its idle connection to the control plane for the next request; an older one is closed
#: and the request opens a new one. It stays this far below SERVER_KEEPALIVE_IDLE so that the agent never sends a
#: beat into a connection the server is closing at that moment: the server's idle clock starts when it sent the
#: answer, the agent's when it read it, so a request in time by the agent's clock reaches the server in time too
#: unless the round trip took longer than the margin (10 s, longer than any beat waits for its answer).
AGENT_KEEPALIVE_EXPIRY: Final = SERVER_KEEPALIVE_IDLE - 10
