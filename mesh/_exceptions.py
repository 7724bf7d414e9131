"""The errors mesh raises, and the one place where httpx exceptions become them.

Exception tree::

    MeshError                      anything mesh raises
    ├── DaemonUnreachable          the LocalAPI socket is missing, refuses, or may not be opened
    ├── RequestTimeout             tailscaled did not answer in time (a ping that got no pong)
    ├── NotRunning                 tailscaled answers but BackendState is not Running (e.g. NeedsLogin)
    ├── PeerUnknown                no peer in the local peer list has that name
    └── LocalAPIError              tailscaled answered with an unexpected HTTP status
        ├── AccessDenied           403: this caller may not use that endpoint
        ├── PreconditionFailed     412: the request does not fit the daemon's current state
        └── PeerNotFound           404 from whois: no node owns that address
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


class MeshError(Exception):
    """MeshError is the base of every error mesh raises."""


class DaemonUnreachable(MeshError):
    """DaemonUnreachable is raised when the LocalAPI socket cannot be connected to; the message says why and how."""

    def __init__(self, socket: str, reason: str, hint: str) -> None:
        self.socket = socket
        self.reason = reason
        self.hint = hint
        super().__init__(f"cannot reach tailscaled at {socket}: {reason}; {hint}")


class RequestTimeout(MeshError):
    """RequestTimeout is raised when tailscaled accepted a request but did not answer within the client timeout."""

    def __init__(self, socket: str, detail: str) -> None:
        self.socket = socket
        super().__init__(f"tailscaled at {socket} did not answer in time ({detail})")


class NotRunning(MeshError):
    """NotRunning is raised when an operation needs the tailnet but BackendState is not Running."""

    def __init__(self, state: str, auth_url: str = "") -> None:
        self.state = state
        self.auth_url = auth_url
        hint = {
            "NeedsLogin": "log in with `tailscale up --login-server=...`"
            + (f" or visit {auth_url}" if auth_url else ""),
            "NeedsMachineAuth": "approve this machine on the coordination server",
            "Stopped": "start it with `tailscale up`",
            "Starting": "wait a moment and try again",
            "NoState": "tailscaled is still initialising; wait a moment and try again",
        }.get(state, "check `tailscale status`")
        super().__init__(f"tailscale is not running (BackendState={state or 'unknown'}): {hint}")


class PeerUnknown(MeshError):
    """PeerUnknown is raised when no peer in the local peer list matches a name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no tailnet peer named {name!r} in the local peer list")


class LocalAPIError(MeshError):
    """LocalAPIError is raised when tailscaled answers with a status the endpoint does not promise."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"LocalAPI error {status}: {message}")


class AccessDenied(LocalAPIError):
    """AccessDenied is raised on 403: the daemon refused this caller (not root/operator, or a bad Host header)."""


class PreconditionFailed(LocalAPIError):
    """PreconditionFailed is raised on 412: the request conflicts with the daemon's current state."""


class PeerNotFound(LocalAPIError):
    """PeerNotFound is raised on 404 from whois: no node on the tailnet owns that address."""


#: The typed error for each HTTP status the LocalAPI documents; anything else is a plain LocalAPIError.
_STATUS_ERRORS: dict[int, type[LocalAPIError]] = {403: AccessDenied, 412: PreconditionFailed}

#: What to tell the user for each reason a unix-socket connect fails.
_CONNECT_HINTS: dict[int, tuple[str, str]] = {
    errno.ENOENT: ("no such socket", "is tailscaled running? pass the socket path or set TS_SOCKET"),
    errno.ECONNREFUSED: ("connection refused", "the socket exists but tailscaled is not listening; is it running?"),
    errno.EACCES: ("permission denied", "run as a user allowed to open the socket (root or the tailscale operator)"),
    errno.EPERM: ("permission denied", "run as a user allowed to open the socket (root or the tailscale operator)"),
    errno.ENOTSOCK: ("not a socket", "the path exists but is not tailscaled's unix socket"),
}


def error_from_response(status: int, body: bytes) -> LocalAPIError:
    """error_from_response builds the typed error for a LocalAPI answer, reading JSON `error` or plain text."""
    return _STATUS_ERRORS.get(status, LocalAPIError)(status, _message_from_body(body))


def _message_from_body(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text or "(empty body)"
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return str(data["error"])
    return text


def _connect_errno(exc: BaseException) -> int | None:
    """_connect_errno digs the OSError errno out of an httpx/httpcore exception chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current.errno
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def map_httpx_errors(socket: str) -> Iterator[None]:
    """map_httpx_errors turns httpx transport exceptions into DaemonUnreachable or RequestTimeout."""
    try:
        yield
    except httpx.TimeoutException as exc:
        if isinstance(exc, httpx.ConnectTimeout):
            raise DaemonUnreachable(socket, "connect timed out", "is tailscaled hung?") from exc
        raise RequestTimeout(socket, type(exc).__name__) from exc
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        code = _connect_errno(exc)
        reason, hint = _CONNECT_HINTS.get(
            code if code is not None else -1, (str(exc) or type(exc).__name__, "is tailscaled running?")
        )
        raise DaemonUnreachable(socket, reason, hint) from exc
