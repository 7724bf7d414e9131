"""Helpers shared by the route modules: wire responses, label selectors, path/body name checks."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from controlplane.api import InvalidObject, WireModel


def wire(obj: WireModel, status: int = 200) -> JSONResponse:
    """wire answers with obj's wire JSON."""
    return JSONResponse(obj.to_wire(), status_code=status)


def parse_selector(selector: str | None) -> dict[str, str] | None:
    """parse_selector reads `k=v,k2=v2` (kubectl's equality selector); raises InvalidObject when malformed."""
    if not selector:
        return None
    labels: dict[str, str] = {}
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        key, value = key.strip(), value.strip().lstrip("=")
        if not sep or not key:
            raise InvalidObject([f"labelSelector: {term!r} is not of the form key=value"])
        labels[key] = value
    return labels


def check_path_name(body: Any, name: str) -> None:
    """check_path_name raises InvalidObject when the body's metadata.name differs from the path's name."""
    meta = body.get("metadata") if isinstance(body, dict) else None
    given = meta.get("name") if isinstance(meta, dict) else None
    if given is not None and given != name:
        raise InvalidObject([f"metadata.name: must match the name in the path ({name!r}), got {given!r}"])


def without_status(body: Any) -> Any:
    """without_status drops a client's status: the control plane owns it (design §4)."""
    if isinstance(body, dict) and "status" in body:
        return {key: value for key, value in body.items() if key != "status"}
    return body
