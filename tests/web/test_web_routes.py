"""The fleet page's routes in-process: who may load it, what it serves, and that it loads nothing from outside."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import Request

from controlplane.server.app import create_app
from controlplane.server.identity import Caller, Role, Unauthorized
from controlplane.server.routes.web import ASSETS, WEB_DIR
from controlplane.server.settings import Settings
from controlplane.store.base import Store
from tests.conftest import API_URL, FakeClock


class _OneCaller:
    def __init__(self, caller: Caller | None) -> None:
        self.caller = caller

    async def identify(self, request: Request) -> Caller:
        if self.caller is None:
            raise Unauthorized("192.0.2.1 is not a machine of this tailnet")
        return self.caller


async def _get(store: Store, clock: FakeClock, caller: Caller | None, path: str) -> httpx.Response:
    app = create_app(store=store, now=clock.now, identity=_OneCaller(caller), settings=Settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API_URL) as client:
        return await client.get(path)


VIEWER = Caller("auditor@", Role.VIEWER, "n-a")


@pytest.mark.parametrize(
    ("path", "media_type", "marker"),
    [
        pytest.param("/ui", "text/html; charset=utf-8", '<script src="/ui/app.js"></script>', id="page"),
        pytest.param("/ui/app.js", "text/javascript; charset=utf-8", "function refresh()", id="script"),
        pytest.param("/ui/style.css", "text/css; charset=utf-8", "--direct:", id="style"),
    ],
)
async def test_a_viewer_gets_the_page_and_its_files(
    memory_store: Store, clock: FakeClock, path: str, media_type: str, marker: str
) -> None:
    answer = await _get(memory_store, clock, VIEWER, path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == media_type
    assert marker in answer.text
    assert answer.headers["content-security-policy"].startswith("default-src 'self';")


@pytest.mark.parametrize("path", ["/ui", "/ui/app.js"])
async def test_a_stranger_gets_a_401_problem(memory_store: Store, clock: FakeClock, path: str) -> None:
    answer = await _get(memory_store, clock, None, path)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/ui/nope.js", "/ui/..%2Fsettings.py", "/ui/index.htm"])
async def test_only_the_pages_own_files_are_served(memory_store: Store, clock: FakeClock, path: str) -> None:
    answer = await _get(memory_store, clock, VIEWER, path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_page_loads_nothing_from_outside_this_server() -> None:
    for name in ASSETS:
        text = (WEB_DIR / name).read_text()
        urls = set(re.findall(r"\b(?:https?:)?//[\w.-]+", text))
        assert urls <= {"http://www.w3.org"}, f"{name} names {urls}"  # the SVG namespace, never fetched
        assert "innerHTML" not in text and "eval(" not in text, name
