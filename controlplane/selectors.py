"""Kubernetes label selectors (`a=b,c!=d,e in (f,g),h notin (i),j,!k`): the one parser of server and caractrl.

A leaf module (on `naming`), so caractrl reads `-l` without loading pydantic; `controlplane.api` re-exports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from controlplane.naming import label_value_problem, qualified_name_problem

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

SELECTOR_RULE: Final = (
    "terms are key=value, key==value, key!=value, key in (v1,v2), key notin (v1,v2), key or !key, joined by ','"
)

_TERM = re.compile(
    r"""\s*(?:
        !\s*(?P<absent>[^\s=!(),]+)
      | (?P<setkey>[^\s=!(),]+)\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\)
      | (?P<key>[^\s=!(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s=!(),]*)
      | (?P<exists>[^\s=!(),]+)
    )\s*(?:,|$)""",
    re.VERBOSE,
)


class InvalidSelector(ValueError):
    """InvalidSelector is raised for a selector that is not Kubernetes' syntax; its text names the selector."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """Requirement is one term of a selector."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """matches reports whether labels meet this term (`!=` and `notin` match objects without the key)."""
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True, slots=True)
class Selector:
    """Selector is every term of a label selector; an object matches when it meets them all."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """matches reports whether labels meet every requirement."""
        found = labels or {}
        return all(requirement.matches(found) for requirement in self.requirements)

    def equalities(self) -> dict[str, str]:
        """equalities returns the `key=value` terms, which a store can filter on before matches() does the rest."""
        return {r.key: next(iter(r.values)) for r in self.requirements if r.operator == "=" and len(r.values) == 1}


def parse_selector(text: str) -> Selector:
    """parse_selector reads a label selector; raises InvalidSelector naming the selector and what is wrong."""
    requirements: list[Requirement] = []
    position = 0
    stripped = text.strip()
    if not stripped:
        return Selector()
    while position < len(stripped):
        match = _TERM.match(stripped, position)
        if match is None or match.end() == position:
            raise InvalidSelector(f'invalid selector "{text}": cannot read "{stripped[position:]}": {SELECTOR_RULE}')
        requirements.append(_requirement(text, match))
        position = match.end()
        if stripped[position - 1] == "," and position == len(stripped):
            raise InvalidSelector(f'invalid selector "{text}": ends with ","')
    return Selector(tuple(requirements))


def _requirement(text: str, match: re.Match[str]) -> Requirement:
    groups = match.groupdict()
    requirement: Requirement
    if groups["absent"]:
        requirement = Requirement(groups["absent"], "!")
    elif groups["setkey"]:
        values = [value.strip() for value in groups["values"].split(",")]
        if values == [""]:
            raise InvalidSelector(f'invalid selector "{text}": {groups["setkey"]} {groups["setop"]} () has no values')
        operator: Operator = "in" if groups["setop"] == "in" else "notin"
        requirement = Requirement(groups["setkey"], operator, frozenset(values))
    elif groups["key"]:
        requirement = Requirement(groups["key"], "!=" if groups["op"] == "!=" else "=", frozenset([groups["value"]]))
    else:
        requirement = Requirement(groups["exists"], "exists")
    problem = qualified_name_problem(requirement.key)
    if problem is not None:
        raise InvalidSelector(f'invalid selector "{text}": key "{requirement.key}": {problem}')
    for value in requirement.values:
        problem = label_value_problem(value)
        if problem is not None:
            raise InvalidSelector(f'invalid selector "{text}": value "{value}": {problem}')
    return requirement
