"""The exceptions of the control-plane client, and the one place that maps statuses and httpx's errors to them."""

from __future__ import annotations

import contextlib
import json as jsonlib
from collections.abc import Collection, Iterator
from typing import Final

import httpx


class ClientError(Exception):
    """ClientError is the base of every error this client raises."""


class ServerUnreachable(ClientError):
    """ServerUnreachable is raised when the server cannot be connected to, or does not answer in time."""

    def __init__(self, url: str, reason: str, *, connected: bool = True) -> None:
        self.url, self.reason = url, reason
        # connected: False when no connection was made (refused, unroutable, connect timeout): the request never
        # reached the server, so retrying costs it nothing.
        self.connected = connected
        super().__init__(f"cannot reach the control plane at {url}: {reason}")


class InvalidResponse(ClientError):
    """InvalidResponse is raised when a success answer does not decode as the expected object."""

    def __init__(self, what: str, errors: Collection[str]) -> None:
        self.errors = list(errors)
        super().__init__(f"the server sent an invalid {what}: {'; '.join(self.errors)}")


class ApiError(ClientError):
    """ApiError is raised when the server answers with a problem document (or any unexpected status)."""

    def __init__(self, status: int, title: str, detail: str = "", errors: Collection[str] = ()) -> None:
        self.status, self.title, self.detail, self.errors = status, title, detail, list(errors)
        super().__init__(f"{title}: {detail}" if detail else title)


class ValidationProblem(ApiError):
    """ValidationProblem is raised on 400: the request was malformed; `.errors` names each bad field."""


class Unauthorized(ApiError):
    """Unauthorized is raised on 401: the server does not know who is calling."""


class Forbidden(ApiError):
    """Forbidden is raised on 403: the caller may not do this."""


class NotFound(ApiError):
    """NotFound is raised on 404: the named object (or route) does not exist."""


class Conflict(ApiError):
    """Conflict is raised on 409: the name is taken, or the object's current state forbids the write."""


class ServerError(ApiError):
    """ServerError is raised on any 5xx answer."""


_BY_STATUS: Final[dict[int, type[ApiError]]] = {
    400: ValidationProblem,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


def raise_for_problem(response: httpx.Response) -> None:
    """raise_for_problem raises the ApiError subclass for response's status, read from its problem document."""
    status = response.status_code
    title, detail, errors = response.reason_phrase or f"HTTP {status}", "", []
    try:
        body = response.json()
    except ValueError:
        detail = response.text.strip()[:300]
    else:
        if isinstance(body, dict):
            title = str(body.get("title") or title)
            detail = str(body.get("detail") or "")
            raw_errors = body.get("errors")
            if isinstance(raw_errors, list):
                errors = [e if isinstance(e, str) else jsonlib.dumps(e) for e in raw_errors]
    cls = ServerError if status >= 500 else _BY_STATUS.get(status, ApiError)
    raise cls(status, title, detail, errors)


@contextlib.contextmanager
def map_transport_errors(url: str) -> Iterator[None]:
    """map_transport_errors turns httpx's connection-level errors into ServerUnreachable naming url."""
    try:
        yield
    except httpx.TimeoutException as exc:
        connected = not isinstance(exc, httpx.ConnectTimeout)
        raise ServerUnreachable(url, f"timed out ({type(exc).__name__})", connected=connected) from exc
    except httpx.TransportError as exc:
        connected = not isinstance(exc, httpx.ConnectError)
        raise ServerUnreachable(url, str(exc) or type(exc).__name__, connected=connected) from exc
