"""kubectl's output habits for `get`: `-o name|jsonpath=...|custom-columns=...`, `--sort-by`, `--show-labels`.

JSONPath is jsonpath-ng's (a maintained implementation). kubectl writes templates with braces, `{.items[*].metadata
.name}`: each `{...}` is an expression, its leading `.` read as `$.`, text outside braces is printed as it is, and
the values of one expression are joined by spaces. `{range}`/`{end}` are not supported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .context import fail
from .printers import table

_EXPRESSION = re.compile(r"\{([^{}]*)\}")


def _compile(expression: str, flag: str) -> Any:
    # jsonpath-ng and its parser tables: only for the flags that take a JSONPath, not for a plain `get`.
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext.parser import parse

    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = "$" + text if text.startswith((".", "[")) else text
    try:
        return parse(text)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # jsonpath-ng raises bare Exception too
        raise fail(f"{flag}: invalid JSONPath {expression!r}: {exc}") from None


def values(expression: str, obj: Any, flag: str) -> list[Any]:
    """values returns every match of a kubectl-style JSONPath in obj; raises Failure when the path is invalid."""
    return [match.value for match in _compile(expression, flag).find(obj)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def jsonpath(template: str, obj: Any) -> str:
    """jsonpath renders a kubectl `-o jsonpath=` template against obj."""
    if "{" not in template:
        template = "{" + template + "}"
    parts: list[str] = []
    position = 0
    for match in _EXPRESSION.finditer(template):
        parts.append(template[position : match.start()])
        parts.append(" ".join(_text(v) for v in values(match.group(1), obj, "-o jsonpath")))
        position = match.end()
    parts.append(template[position:])
    return "".join(parts)


def custom_columns(spec: str, items: Sequence[Any], *, headers: bool) -> str:
    """custom_columns renders `HEADER:.path,HEADER2:.path2` as a table, <none> where a path finds nothing."""
    columns: list[tuple[str, str]] = []
    for column in spec.split(","):
        header, sep, path = column.partition(":")
        if not sep or not header or not path:
            raise fail(f'-o custom-columns: "{column}" is not HEADER:JSONPATH')
        columns.append((header, path))
    rows = [
        [",".join(_text(v) for v in values(p, item, "-o custom-columns")) or "<none>" for _, p in columns]
        for item in items
    ]
    rendered = table([h for h, _ in columns], rows)
    return rendered if headers else "\n".join(rendered.splitlines()[1:])


def sort_by(items: list[Any], expression: str) -> list[Any]:
    """sort_by orders items by the value a JSONPath finds in each (missing values last), as `--sort-by` does."""

    def key(item: Any) -> tuple[int, str, float]:
        found = values(expression, item, "--sort-by")
        if not found or found[0] is None:
            return (2, "", 0.0)
        value = found[0]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, "", float(value))
        return (1, _text(value), 0.0)

    return sorted(items, key=key)


def labels_text(obj: Any) -> str:
    """labels_text is the LABELS cell of `--show-labels`: `k=v,k2=v2` in key order, <none> when there are none."""
    labels = obj.get("metadata", {}).get("labels") if isinstance(obj, dict) else None
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))
