"""How cara-server runs HTTP: the one uvicorn configuration its listeners share (the bench floor uses it too)."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from .limits import limited_protocol


def uvicorn_config(app: ASGIApp, log_level: str) -> uvicorn.Config:
    """uvicorn_config is the server's uvicorn configuration for `app`.

    ws="none": no WebSocket routes, so uvicorn need not load a WebSocket implementation (memory); http is the
    protocol with the head deadline and size and the body idle timeout of limits.py; lifespan="off": the process
    root's supervisor runs the background loops, not the HTTP lifespan.
    """
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
        ws="none",
        http=limited_protocol(),
        lifespan="off",
    )
