"""The fleet page: GET /ui and its static assets (viewer or better); it fetches only this server's API."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response

from ..context import CallerDep
from ..identity import require_reader
from ..problems import Problem

router = APIRouter(tags=["web"])


#: Where the page's files live (package data beside the server's modules).
WEB_DIR: Final = Path(__file__).resolve().parents[1] / "web"
#: The files /ui serves, by name, with their media types; nothing else under WEB_DIR is reachable.
ASSETS: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: The page may load and fetch only from this server: no CDN, nothing leaves the machine.
HEADERS: Final = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
}


@cache
def _read(name: str) -> bytes:
    return (WEB_DIR / name).read_bytes()


def _asset(name: str) -> Response:
    return Response(_read(name), media_type=ASSETS[name], headers=HEADERS)


@router.get("/ui", include_in_schema=False)
async def page(caller: CallerDep) -> Response:
    """page is the fleet page: table, path matrix and throughput chart, refreshing itself."""
    require_reader(caller)
    return _asset("index.html")


@router.get("/ui/{name}", include_in_schema=False)
async def asset(name: str, caller: CallerDep) -> Response:
    """asset serves one of the page's files; any other name is 404."""
    require_reader(caller)
    if name not in ASSETS:
        raise Problem(404, f'the fleet page has no file "{name}"')
    return _asset(name)
