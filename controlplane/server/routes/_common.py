"""Helpers shared by the route modules: wire responses, documented bodies, label selectors, path/body name checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from controlplane.api import InvalidObject, InvalidSelector, Selector, WireModel
from controlplane.api import parse_selector as api_parse_selector
from controlplane.store.base import NotFound


class WireResponse(JSONResponse):
    """WireResponse is a JSON answer whose wire model pydantic-core serializes in one pass (no dict in between:
    at 1,000 Nodes a list answers in about half the time json.dumps of the dumped dict takes)."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, WireModel):
            return content.to_wire_json().encode()
        return super().render(content)


def wire(obj: WireModel, status: int = 200) -> JSONResponse:
    """wire answers with obj's wire JSON."""
    return WireResponse(obj, status_code=status)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """_inline replaces every `$ref` into defs by the definition itself (the API's models are not recursive)."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {**target, **_inline({k: v for k, v in node.items() if k != "$ref"}, defs)}
    return {key: _inline(value, defs) for key, value in node.items() if key != "$defs"}


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """json_body documents a request body the route reads by hand (read_json) as model's JSON Schema.

    For a route's `openapi_extra=`. The schema is the validation schema, so unknown fields stay allowed (design §3.2).
    """
    schema = model.model_json_schema(by_alias=True)
    body = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": body}}}}


def parse_selector(selector: str | None) -> Selector:
    """parse_selector reads a labelSelector query (Kubernetes' syntax); raises InvalidObject naming it."""
    try:
        return api_parse_selector(selector or "")
    except InvalidSelector as exc:
        raise InvalidObject([f"labelSelector: {exc}"]) from None


#: `?dryRun=All` (Kubernetes' spelling): validate and answer as if written, but store nothing.
DryRun = Annotated[
    Literal["All"] | None,
    Query(alias="dryRun", description="All: validate and answer as if written, but store nothing."),
]


#: `?watch=true`: stream events instead of answering a list (controlplane.server.watch).
WatchFlag = Annotated[bool, Query(description="Stream newline-delimited JSON events instead of a list.")]
#: `?timeoutSeconds=N`: how long a watch stays open.
TimeoutSeconds = Annotated[
    int | None, Query(alias="timeoutSeconds", ge=1, description="Seconds a watch stays open (at most 1800).")
]


def is_dry_run(value: str | None) -> bool:
    """is_dry_run reports whether a request asked for dryRun=All."""
    return value == "All"


async def exists(get: Callable[[str], Awaitable[object]], name: str) -> bool:
    """exists reports whether get(name) finds an object (a store getter raising NotFound otherwise)."""
    try:
        await get(name)
    except NotFound:
        return False
    return True


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
