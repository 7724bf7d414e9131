"""Turning validation failures into the `field: what is wrong` strings of problem documents."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


class InvalidObject(ValueError):
    """InvalidObject is raised when input does not validate; errors are `path: message` strings."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


_NESTED = re.compile(r"^([A-Za-z0-9_]+(?:\[\d+\])*(?:\.[A-Za-z0-9_]+(?:\[\d+\])*)*): ")

_MESSAGES = {
    "missing": "is required",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
}


#: Longest value quoted in a message; longer ones are cut with `..."`.
MAX_SHOWN = 64


def shown(value: Any) -> str:
    """shown renders a bad value as JSON for a message, cut to MAX_SHOWN characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 4] + '..."'


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("function-") or part in {"str", "int", "bool"}:
            continue
        else:
            path += f".{part}" if path else part
    return path


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind in _MESSAGES and not (kind.endswith("too_short") and ctx.get("min_length", 1) != 1):
        return _MESSAGES[kind]
    if kind == "timezone_aware":
        return "must be an RFC 3339 timestamp with a time zone (e.g. 2026-01-02T03:04:05Z)"
    if kind.startswith(("datetime", "date_")):
        return "must be an RFC 3339 timestamp (e.g. 2026-01-02T03:04:05Z)"
    if kind == "enum":  # Kubernetes' wording: the value sent, then every allowed one
        allowed = ", ".join(f'"{v}"' for v in re.findall(r"'([^']*)'", str(ctx.get("expected", ""))))
        return f"Unsupported value: {shown(error.get('input'))}: supported values: {allowed}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected', '')}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} characters"
    msg = error["msg"]
    return msg[:1].lower() + msg[1:]


def describe_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """describe_errors returns one `field: what is wrong` string per error of exc."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = _message(error)
        if loc[-1:] == ("[key]",):  # a map's key is wrong, not a value: name the map and the key
            loc, message = loc[:-2], f"key {loc[-2]!r} {message}"
        path = _path(loc)
        nested = _NESTED.match(message)
        if nested:  # a model validator named the field below its own location
            path = ".".join(p for p in (path, nested.group(1)) if p)
            message = message[nested.end() :]
        full = ".".join(p for p in (prefix, path) if p)
        lines.append(f"{full}: {message}" if full else message)
    return lines


M = TypeVar("M", bound=BaseModel)


def decode(model: type[M], data: Any, *, prefix: str = "") -> M:
    """decode validates JSON-ready data as model; raises InvalidObject with field errors."""
    if not isinstance(data, dict):
        raise InvalidObject([f"{prefix or 'body'}: must be a JSON object"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidObject(describe_errors(exc, prefix)) from None
