"""How cara-server runs HTTP: the one uvicorn configuration its listeners share (the bench floor uses it too)."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from controlplane.api import SERVER_KEEPALIVE_IDLE

from .limits import limited_protocol

#: Seconds a stop waits for open requests (a throughput stream lasts at most 10 s) before cancelling them; open
#: watches end at once (ServerContext.stopping).
SHUTDOWN_GRACE_S = 15


def uvicorn_config(app: ASGIApp, log_level: str) -> uvicorn.Config:
    """uvicorn_config is the server's uvicorn configuration for `app`.

    ws="none": no WebSocket routes, so uvicorn need not load a WebSocket implementation (memory); http is the
    protocol with the head deadline and size and the body idle timeout of limits.py; an idle keep-alive connection
    is closed after SERVER_KEEPALIVE_IDLE (the agent's AGENT_KEEPALIVE_EXPIRY stays below it); lifespan="off": the
    process root's supervisor runs the background loops, not the HTTP lifespan; timeout_graceful_shutdown: a stop waits
    SHUTDOWN_GRACE_S for open requests, then cancels them; proxy_headers=False: a caller is known by the address
    it connects from (LocalAPI WhoIs), so no X-Forwarded-For header may stand in for it, from any address.
    """
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        timeout_keep_alive=SERVER_KEEPALIVE_IDLE,
        h11_max_incomplete_event_size=64 * 1024,
        ws="none",
        http=limited_protocol(),
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
