"""Reading the `Cara-Witness` header a heartbeat is answered with: the silent Nodes an agent is asked to look at."""

from __future__ import annotations

from typing import Final

#: At most this many names of a `Cara-Witness` heartbeat response header are used.
WITNESS_NAMES_MAX: Final = 16


def witness_names(header: str) -> list[str]:
    """witness_names reads a Cara-Witness header: distinct non-empty names, at most WITNESS_NAMES_MAX, in order."""
    names: list[str] = []
    for part in header.split(","):
        name = part.strip()
        if name and name not in names and len(name) <= 253:
            names.append(name)
    return names[:WITNESS_NAMES_MAX]
