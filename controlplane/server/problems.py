"""RFC 9457 problem documents: the one table from errors to status and title, and the handlers that use it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from controlplane.api import InvalidObject
from controlplane.store.base import AlreadyExists, Conflict, NotFound, StoreError

from .identity import Forbidden, Unauthorized

log = logging.getLogger("cara.server")

PROBLEM_JSON = "application/problem+json"

#: Titles of design §3.3; other statuses use the HTTP reason phrase.
TITLES: dict[int, str] = {
    400: "Validation Problem",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    500: "Internal Server Error",
}


class Problem(Exception):
    """Problem is raised by a route to answer with a problem document."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        self.status, self.detail, self.errors = status, detail, errors
        super().__init__(detail)


class BodyTooLarge(Exception):
    """BodyTooLarge is raised when a request body exceeds the configured limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body exceeds the limit of {limit} bytes")


#: The one mapping of our exceptions to HTTP statuses (the most specific class first).
STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (InvalidObject, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (AlreadyExists, 409),
    (Conflict, 409),
    (BodyTooLarge, 413),
)


#: How many errors a problem's detail quotes before it says how many more there are (errors[] has them all).
DETAIL_ERRORS = 3
#: Longest detail; errors[] has every error in full.
DETAIL_MAX_CHARS = 600


def errors_detail(errors: list[str]) -> str:
    """errors_detail is a validation problem's detail: the errors themselves, joined, shortened when many.

    Go's caractl prints `title: detail` and reads errors[] only when detail is empty, so the reason must be here.
    """
    if not errors:
        return "the request is not valid"
    shown = "; ".join(errors[:DETAIL_ERRORS])
    if len(shown) > DETAIL_MAX_CHARS:
        shown = shown[: DETAIL_MAX_CHARS - 3] + "..."
    more = len(errors) - DETAIL_ERRORS
    return f"{shown} (and {more} more; see errors)" if more > 0 else shown


def title_of(status: int) -> str:
    """title_of returns the problem title of an HTTP status."""
    if status in TITLES:
        return TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(status: int, detail: str, errors: list[str] | None = None) -> dict[str, Any]:
    """problem_body returns the problem document of status (design §3.3)."""
    body: dict[str, Any] = {
        "type": f"urn:caravanserai:problem:{title_of(status).lower().replace(' ', '-')}",
        "title": title_of(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int, detail: str, errors: list[str] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """problem_response builds an application/problem+json response."""
    return JSONResponse(
        problem_body(status, detail, errors), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, exc.errors)


async def _on_known(request: Request, exc: Exception) -> JSONResponse:
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            if isinstance(exc, InvalidObject):
                return problem_response(status, errors_detail(exc.errors), exc.errors)
            if isinstance(exc, BodyTooLarge):  # the rest of the body is unread: close rather than drain it
                return problem_response(status, str(exc), headers={"connection": "close"})
            return problem_response(status, str(exc))
    return await on_unexpected(request, exc)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else title_of(exc.status_code)
    if exc.status_code == 404:
        detail = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}))


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")]
        errors.append(f"{'.'.join(loc) or 'request'}: {error.get('msg', 'is not valid')}")
    return problem_response(400, errors_detail(errors), errors)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """on_unexpected logs an error no handler knows, with its traceback, and answers 500 without details."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "the server failed to handle the request; see its log")


#: The JSON Schema of a problem document (design §3.3), published in /openapi.json as `Problem`.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; validation problems list `field: what is wrong` in errors.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}

#: Statuses any operation may answer: who is calling (401, 403) and a crash (500).
EVERY_OPERATION = (401, 403, 500)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """problem_responses documents statuses as problem documents, for a route's `responses=`."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {"description": title_of(status), "content": {PROBLEM_JSON: {"schema": ref}}} for status in statuses
    }


def _document(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """_document completes FastAPI's OpenAPI document with what the problem handlers really answer."""
    done: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if done:
            return done
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        # FastAPI documents 422 for every route with parameters; request validation answers 400 here instead.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status, response in problem_responses(*EVERY_OPERATION).items():
                    responses.setdefault(str(status), response)
        done.update(schema)
        return done

    return openapi


def install(app: FastAPI) -> None:
    """install registers the problem-document handlers on app, and documents them in its OpenAPI schema."""
    app.openapi = _document(app.openapi)  # type: ignore[method-assign]
    app.add_exception_handler(Problem, _on_problem)
    for kind, _ in STATUS_OF:
        app.add_exception_handler(kind, _on_known)
    app.add_exception_handler(StoreError, _on_known)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(Exception, on_unexpected)
