"""The heartbeat fast path: `POST /api/v1/nodes/{name}/heartbeat` answered ahead of FastAPI's per-request work.

Heartbeats are nearly all the traffic a control plane sees, and FastAPI's routing, dependency solving, response
classes and middleware stack cost several times what the beat itself does. This ASGI wrapper (in front of the
whole app: app.ControlPlaneApp) answers a beat that is well-formed and accepted with the very steps the route
runs (routes/nodes.py: identify, `apply_beat`, `after_beat`) and the same empty 204, and counts and times it as
the app's RequestMetrics does. Anything else, a beat refused (400, 401, 403, 404), a body over the limit, a
client gone mid-body, is handed to the app with the body it sent replayed, so every problem document is
rendered in one place. A refusal is raised before anything is written, so answering it again there changes
nothing.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Final

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import ServerContext, identify
from .events import ACTOR
from .problems import on_unexpected
from .routes.nodes import after_beat, apply_beat

#: The beat route's path, as FastAPI matches it (a name is one path segment).
BEAT_PATH: Final = re.compile(r"/api/v1/nodes/([^/]+)/heartbeat")
_NO_CONTENT: Final[Message] = {"type": "http.response.start", "status": 204, "headers": []}
_EMPTY_BODY: Final[Message] = {"type": "http.response.body", "body": b""}


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """_replaying is a receive that hands out the messages already read, then the connection's own."""
    pending = deque(messages)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class FastBeat:
    """FastBeat answers accepted heartbeats itself and passes every other request to app unchanged."""

    def __init__(self, app: ASGIApp, context: ServerContext) -> None:
        self.app, self.context = app, context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = BEAT_PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        context = self.context
        started = time.perf_counter()
        limit = context.settings.max_body_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self.app(scope, receive, send)  # the route refuses it without reading the body
            return
        messages: list[Message] = []
        size, complete = 0, False
        while not complete:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # gone mid-body: the route answers as it does
                break
            size += len(message.get("body", b""))
            if size > limit:
                break
            complete = not message.get("more_body", False)
        if not complete:
            await self.app(scope, _replaying(messages, receive), send)
            return
        raw = b"".join(message.get("body", b"") for message in messages)
        token = ACTOR.set(None)  # as ActorScope does for the app's requests
        try:
            try:
                caller = await identify(context, Request(scope, receive))
                outcome = await apply_beat(context, caller, match.group(1), raw)
            except Exception:  # a refusal: the route raises it again and renders its problem document
                await self.app(scope, _replaying(messages, receive), send)
                return
            try:
                headers = await after_beat(context, outcome)
            except Exception as exc:  # a bug: the beat is applied; answer as the app's handler of the unexpected
                await (await on_unexpected(Request(scope, receive), exc))(scope, receive, send)
                context.metrics.count_request("POST", 500, time.perf_counter() - started)
                return
        finally:
            ACTOR.reset(token)
        if headers is None:
            await send(_NO_CONTENT)
        else:  # as Starlette's Response sends them: lower-case names, latin-1
            raw_headers = [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in headers.items()]
            await send({"type": "http.response.start", "status": 204, "headers": raw_headers})
        await send(_EMPTY_BODY)
        context.metrics.count_request("POST", 204, time.perf_counter() - started)
