"""`caractrl label|annotate TYPE NAME key=value... key-`: set or remove labels and annotations, as kubectl does.

An existing key keeps its value unless `--overwrite`; `key-` removes it. The change is a GET and a PUT of the same
spec, so a placed Project takes it (only spec changes are refused).
"""

from __future__ import annotations

from typing import Literal, TypeVar

import click

from controlplane.api import Node, Project
from controlplane.client import Client
from controlplane.naming import label_value_problem, qualified_name_problem

from .context import Env, fail, resolve_targets, run

Field = Literal["labels", "annotations"]
M = TypeVar("M", Node, Project)


def parse_changes(words: tuple[str, ...], field: Field) -> tuple[dict[str, str], list[str]]:
    """parse_changes reads `key=value` and `key-` words; raises Failure naming a malformed one or a bad key/value."""
    sets: dict[str, str] = {}
    removes: list[str] = []
    for word in words:
        if word.endswith("-") and "=" not in word:
            removes.append(word[:-1])
            key = word[:-1]
        else:
            key, sep, value = word.partition("=")
            if not sep:
                raise fail(f'"{word}": must be key=value, or key- to remove the key')
            if field == "labels" and (problem := label_value_problem(value)) is not None:
                raise fail(f'"{word}": value: {problem}')
            sets[key] = value
        if (problem := qualified_name_problem(key)) is not None:
            raise fail(f'"{word}": key: {problem}')
    return sets, removes


def _edit(field: Field, name: str, resource: str, words: tuple[str, ...], overwrite: bool, env: Env) -> None:
    targets = resolve_targets(resource, () if "/" in resource else words[:1])
    changes = words if "/" in resource else words[1:]
    if any(target is None for _, target in targets) or not changes:
        raise fail(f"{name} needs TYPE NAME (or TYPE/NAME) and at least one key=value or key-")
    kind, target = targets[0]
    assert target is not None
    sets, removes = parse_changes(changes, field)

    def edited(obj: M) -> M:
        current = dict(getattr(obj.metadata, field) or {})
        for key, value in sets.items():
            if key in current and current[key] != value and not overwrite:
                raise fail(f"'{key}' already has a value ({current[key]}), and --overwrite is false")
            current[key] = value
        for key in removes:
            current.pop(key, None)
        metadata = obj.metadata.model_copy(update={field: current or None})
        return obj.model_copy(update={"metadata": metadata})

    async def act(client: Client) -> str:
        if kind == "node":
            await client.replace_node(edited(await client.get_node(target)))
        else:
            await client.replace_project(edited(await client.get_project(target)))
        return f"{kind}/{target} {'labeled' if field == 'labels' else 'annotated'}"

    click.echo(run(env, act))


@click.command()
@click.argument("resource")
@click.argument("words", nargs=-1, required=True)
@click.option("--overwrite", is_flag=True, help="Replace a key's existing value.")
@click.pass_obj
def label(env: Env, resource: str, words: tuple[str, ...], overwrite: bool) -> None:
    """Set (key=value) or remove (key-) labels of a Node or Project."""
    _edit("labels", "label", resource, words, overwrite, env)


@click.command()
@click.argument("resource")
@click.argument("words", nargs=-1, required=True)
@click.option("--overwrite", is_flag=True, help="Replace a key's existing value.")
@click.pass_obj
def annotate(env: Env, resource: str, words: tuple[str, ...], overwrite: bool) -> None:
    """Set (key=value) or remove (key-) annotations of a Node or Project."""
    _edit("annotations", "annotate", resource, words, overwrite, env)
