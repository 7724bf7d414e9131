"""Reading manifests for `apply`: YAML (multi-document) or JSON, every document validated before anything is sent."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from pydantic import BaseModel

from controlplane.api import (
    MAX_BODY_BYTES,
    InvalidObject,
    Node,
    NodeStatus,
    NotStrictJSON,
    Project,
    ProjectStatus,
    decode_valid,
    strict_json_loads,
)

#: The server's default request body limit (1 MiB); checked here too so a big 3rd document stops the whole apply.

MODELS: Final[dict[str, type[Node] | type[Project]]] = {"Node": Node, "Project": Project}
LIST_KINDS: Final = {"NodeList", "ProjectList", "List"}


class ManifestError(Exception):
    """ManifestError is raised when any document is unusable; `.lines` has one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Manifest:
    """Manifest is one validated object from a file, with where it came from and what was ignored."""

    # Where: `FILE: document N` (or `... item M` inside a list), for messages.
    where: str
    # Obj: the object to send, with status reset (the control plane owns status).
    obj: Node | Project
    warnings: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """ref is `node/NAME` or `project/NAME`, as apply prints it."""
        return f"{self.obj.kind.lower()}/{self.obj.name}"


class _StrictLoader(yaml.SafeLoader):
    """_StrictLoader is YAML's safe loader refusing a mapping that names a key twice (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {json.dumps(key_node.value)}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def _position(text: str, offset: int) -> str:
    """_position renders a character offset of text as `line L, column C`."""
    line, column = text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)
    return f"line {line}, column {column}"


def _parse(text: str, source: str) -> list[Any]:
    """_parse reads text as JSON when it looks like JSON, else as multi-document YAML; raises ManifestError."""
    try:
        if text.lstrip()[:1] in ("{", "["):
            data = strict_json_loads(text)
            return data if isinstance(data, list) else [data]
        return list(yaml.load_all(text, Loader=_StrictLoader))
    except json.JSONDecodeError as exc:
        raise ManifestError([f"{source}: line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    except NotStrictJSON as exc:
        raise ManifestError([f"{source}: invalid JSON: {exc}"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ManifestError([f"{source}: {where}invalid YAML: {exc.problem or exc.context}"]) from None
    except yaml.reader.ReaderError as exc:  # a control character: one line, where it is, not PyYAML's two
        what = f"unacceptable character U+{exc.character:04X}" if isinstance(exc.character, int) else exc.reason
        raise ManifestError([f"{source}: {_position(text, exc.position)}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ManifestError([f"{source}: invalid YAML: {str(exc).splitlines()[0]}"]) from None
    except RecursionError:
        raise ManifestError([f"{source}: nested too deeply to be a manifest"]) from None
    except ValueError as exc:  # PyYAML's int() of a 5,000-digit number
        raise ManifestError([f"{source}: invalid YAML: {exc}"]) from None


def _documents(text: str, source: str) -> list[tuple[str, Any]]:
    """_documents splits text into documents (items of a List kind count as documents), skipping empty ones."""
    docs = _parse(text, source)
    found: list[tuple[str, Any]] = []
    for index, doc in enumerate(docs, start=1):
        where = f"{source}: document {index}"
        if doc is None:  # an empty document (a trailing `---`) is not an error
            continue
        if isinstance(doc, dict) and doc.get("kind") in LIST_KINDS and isinstance(doc.get("items"), list):
            found += [(f"{where} item {i}", item) for i, item in enumerate(doc["items"], start=1)]
        else:
            found.append((where, doc))
    return found


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """_model_in finds the model inside `M`, `M | None` or `list[M] | None`; the bool says "a list of"."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and args:
        return _model_in(args[0])[0], True
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            model, is_list = _model_in(arg)
            if model is not None:
                return model, is_list
    return None, False


def unknown_fields(model: type[BaseModel], data: dict[str, Any], path: str = "") -> list[str]:
    """unknown_fields lists the dotted paths of data's keys that model (and its nested models) does not know."""
    known = {}
    for name, field_info in model.model_fields.items():
        known[name] = known[field_info.alias or name] = field_info
    found: list[str] = []
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        info = known.get(key)
        if info is None:
            found.append(full)
            continue
        sub, is_list = _model_in(info.annotation)
        if sub is None:
            continue
        if is_list and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    found += unknown_fields(sub, item, f"{full}[{i}]")
        elif isinstance(value, dict):
            found += unknown_fields(sub, value, full)
    return found


def _check(where: str, doc: Any) -> Manifest:
    if not isinstance(doc, dict):
        raise ManifestError([f"{where}: must be a mapping with apiVersion, kind, metadata and spec"])
    kind = doc.get("kind")
    if kind is None:
        raise ManifestError([f"{where}: kind: is required (Node or Project)"])
    model = MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ManifestError([f"{where}: kind: unknown kind {json.dumps(kind)} (expected Node or Project)"])
    try:
        obj: Node | Project = decode_valid(model, doc)
    except InvalidObject as exc:
        raise ManifestError([f"{where}: {error}" for error in exc.errors]) from None
    warnings = [f"{where}: unknown field {path} is ignored" for path in unknown_fields(model, doc) if path != "status"]
    if doc.get("status"):
        warnings.append(f"{where}: status is ignored: the control plane owns it")
    obj = obj.model_copy(update={"status": NodeStatus() if isinstance(obj, Node) else ProjectStatus()})
    size = len(json.dumps(obj.to_wire()).encode())
    if size > MAX_BODY_BYTES:
        raise ManifestError(
            [f"{where}: {obj.kind.lower()}/{obj.name} is {size} bytes, over the limit of {MAX_BODY_BYTES} bytes"]
        )
    return Manifest(where=where, obj=obj, warnings=warnings)


def load_manifests(text: str, source: str) -> list[Manifest]:
    """load_manifests validates every document of text; raises ManifestError listing every problem in every one."""
    manifests: list[Manifest] = []
    problems: list[str] = []
    for where, doc in _documents(text, source):
        try:
            manifests.append(_check(where, doc))
        except ManifestError as exc:
            problems += exc.lines
    if problems:
        raise ManifestError(problems)
    if not manifests:
        raise ManifestError([f"{source}: no objects found (the file is empty)"])
    return manifests


def duplicates(manifests: list[Manifest]) -> list[str]:
    """duplicates names every object defined twice: applying both would let the last silently win."""
    first: dict[str, str] = {}
    problems: list[str] = []
    for manifest in manifests:
        where = first.setdefault(manifest.ref, manifest.where)
        if where != manifest.where:
            problems.append(f"{manifest.where}: metadata.name: {manifest.ref} is already defined in {where}")
    return problems
