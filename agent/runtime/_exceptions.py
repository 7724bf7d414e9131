"""The errors the container-runtime client raises, and the one place where httpx exceptions become them.

Exception tree::

    RuntimeFailure                 anything the runtime client raises
    ├── RuntimeUnreachable         no runtime configured, or its socket is missing or refuses
    └── RuntimeAPIError            the Docker Engine API answered with an error status
        ├── NoSuchObject           404: no such container, network, volume or image
        ├── ObjectConflict         409: the name is taken, or the object is in use
        └── ImagePullFailed        the pull of an image failed (its name and the runtime's words)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


class RuntimeFailure(Exception):
    """RuntimeFailure is the base of every error the runtime client raises."""


class RuntimeUnreachable(RuntimeFailure):
    """RuntimeUnreachable is raised when no runtime is configured or its socket cannot be reached."""

    def __init__(self, socket: str, reason: str) -> None:
        self.socket = socket
        self.reason = reason
        where = f"at {socket}" if socket else "(none configured: set --runtime-socket or CONTAINER_RUNTIME_SOCKET)"
        super().__init__(f"container runtime {where} is unreachable: {reason}")


class RuntimeAPIError(RuntimeFailure):
    """RuntimeAPIError is raised when the runtime answers with an unexpected status; its text is the runtime's."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class NoSuchObject(RuntimeAPIError):
    """NoSuchObject is raised on 404: the container, network, volume or image does not exist."""


class ObjectConflict(RuntimeAPIError):
    """ObjectConflict is raised on 409: the name is taken or the object is in use."""


class ImagePullFailed(RuntimeAPIError):
    """ImagePullFailed is raised when pulling `image` failed; the message names it."""

    def __init__(self, image: str, message: str) -> None:
        self.image = image
        super().__init__(500, f"pull of image {image} failed: {message}")


def message_of(body: bytes) -> str:
    """message_of reads the error text of a Docker API answer: its JSON `message`, else the plain body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict):
        for key in ("message", "cause", "error"):
            if isinstance(doc.get(key), str) and doc[key]:
                return str(doc[key])
    return text


def error_for(status: int, body: bytes) -> RuntimeAPIError:
    """error_for builds the RuntimeAPIError subclass for an error answer."""
    kind = {404: NoSuchObject, 409: ObjectConflict}.get(status, RuntimeAPIError)
    return kind(status, message_of(body))


@contextmanager
def map_httpx_errors(socket: str) -> Iterator[None]:
    """map_httpx_errors turns transport failures into RuntimeUnreachable (the only place that does)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise RuntimeUnreachable(socket, f"no answer in time ({type(exc).__name__})") from exc
    except (httpx.TransportError, OSError) as exc:
        raise RuntimeUnreachable(socket, str(exc) or type(exc).__name__) from exc
