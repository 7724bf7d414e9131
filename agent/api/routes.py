"""AgentAPI: the agent API's routing, method and authorization checks in front of logs and forward."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from ..http import RequestHead, StreamHandler
from ..projects.names import container_name
from ..runtime import RuntimeClient
from .auth import Access, Authorizer
from .forward import serve_forward
from .logs import serve_logs
from .problems import send_problem

log = logging.getLogger("cara.agent.api")

LOGS: Final = "/api/v1/logs/"
FORWARD: Final = "/api/v1/forward/"


class AgentAPI:
    """AgentAPI serves the agent API on the agent's HTTP server (register `streams()` with AgentHTTPServer)."""

    def __init__(self, *, runtime: Callable[[], RuntimeClient | None], authorizer: Authorizer) -> None:
        self._runtime = runtime
        self._authorizer = authorizer

    def streams(self) -> dict[str, StreamHandler]:
        """streams maps the API's path prefixes to their handlers."""
        return {LOGS: self.logs, FORWARD: self.forward, "/api/": self.unknown}

    async def unknown(self, request: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await send_problem(writer, 404, f"no route {request.path}")

    async def logs(self, request: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parts = request.path.removeprefix(LOGS).split("/")
        if len(parts) != 2 or not all(parts):
            await send_problem(writer, 404, f"no route {request.path}; use {LOGS}PROJECT/SERVICE")
            return
        runtime = await self._admit(request, writer, Access.VIEWER)
        if runtime is not None:
            await serve_logs(runtime, container_name(*parts), request.query, reader, writer)

    async def forward(self, request: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parts = request.path.removeprefix(FORWARD).split("/")
        if len(parts) != 3 or not all(parts):
            await send_problem(writer, 404, f"no route {request.path}; use {FORWARD}PROJECT/SERVICE/PORT")
            return
        runtime = await self._admit(request, writer, Access.ADMIN)
        if runtime is not None:
            project, service, port = parts
            await serve_forward(runtime, project, container_name(project, service), port, request.raw, reader, writer)

    async def _admit(self, request: RequestHead, writer: asyncio.StreamWriter, least: Access) -> RuntimeClient | None:
        """_admit checks method, caller and runtime; answers the problem itself and returns None when refused."""
        if request.method != "GET":
            await send_problem(writer, 405, f"{request.method} is not allowed here; use GET")
            return None
        access, who = await self._authorizer.access(request.peer)
        if access is None or (least is Access.ADMIN and access is not Access.ADMIN):
            log.info("agent API: refused %s for %s", request.path, who)
            need = "an admin" if least is Access.ADMIN else "an admin or a viewer"
            await send_problem(writer, 403, f"{who} may not use {request.path}: {need} of this agent may")
            return None
        runtime = self._runtime()
        if runtime is None:
            await send_problem(writer, 503, "no container runtime on this node")
            return None
        return runtime
