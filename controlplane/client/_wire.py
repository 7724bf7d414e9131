"""Undecoded reads: the collections `Client.get_raw` reads and the shape check it applies instead of the models."""

from __future__ import annotations

from typing import Any, Final, Literal

#: The collections `Client.get_raw` reads, with the `kind` of one object and of their list.
Resource = Literal["nodes", "projects"]
KINDS: Final[dict[str, tuple[str, str]]] = {"nodes": ("Node", "NodeList"), "projects": ("Project", "ProjectList")}


def wire_errors(body: Any, kind: str) -> list[str]:
    """wire_errors checks the shape `Client.get_raw` promises: an object of kind with a metadata.name, or a list of them
    (whose items need only be objects with a metadata.name)."""
    if not isinstance(body, dict):
        return ["must be an object"]
    if body.get("kind", kind) != kind:  # absent is tolerated, as the models do
        return [f"kind: must be {kind}"]
    if not kind.endswith("List"):
        return [] if _named(body) else ["metadata.name: is required"]
    items = body.get("items")
    if not isinstance(items, list):
        return ["items: must be a list"]
    return [f"items[{i}]: must be an object with a metadata.name" for i, item in enumerate(items) if not _named(item)]


def _named(obj: Any) -> bool:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return isinstance(meta, dict) and isinstance(meta.get("name"), str)
