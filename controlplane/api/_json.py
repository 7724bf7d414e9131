"""Strict JSON decoding for request bodies and manifests: what json.loads accepts but no Go client could mean."""

from __future__ import annotations

import json
import math
from typing import Any, Final

#: The longest integer literal accepted: an int64 has 19 digits, plus a sign.
MAX_INTEGER_DIGITS: Final = 20


class NotStrictJSON(ValueError):
    """NotStrictJSON is raised by strict_json_loads for a repeated key, NaN/Infinity or an out-of-range number."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # json.loads would silently keep the last value
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise NotStrictJSON(f"duplicate key {json.dumps(key)} in an object")
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise NotStrictJSON(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text) > MAX_INTEGER_DIGITS:
        raise NotStrictJSON(f"integer {text[:12]}... has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotStrictJSON(f"number {text[:24]} is out of range")
    return value


#: One decoder for every call (json.loads with hooks builds a decoder and its scanner each time; every request body
#: is decoded here). It keeps no state between calls but a key-interning memo.
_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_unique_keys, parse_constant=_constant, parse_int=_integer, parse_float=_float
)


def strict_json_loads(text: str) -> Any:
    """strict_json_loads decodes JSON text; raises json.JSONDecodeError on a syntax error and NotStrictJSON on a
    repeated key, NaN or Infinity, an integer over 20 digits or a number that overflows a float.
    RecursionError passes through (the caller says "nested too deeply")."""
    return _DECODER.decode(text)
