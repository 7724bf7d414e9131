"""`caractrl get nodes|projects [NAME]`: tables for people, `-o json|yaml` for tools, `-l key=value` to filter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from . import printers
from .context import Env, check_name, fail, resolve_kind, run

if TYPE_CHECKING:
    from controlplane.client import Client

OUTPUTS = ("wide", "json", "yaml")


def label_selector(terms: tuple[str, ...]) -> str | None:
    """label_selector joins `-l` values into `k=v,k2=v2`; raises Failure on a term that is not key=value."""
    parts = [part.strip() for term in terms for part in term.split(",") if part.strip()]
    for part in parts:
        key, sep, _ = part.partition("=")
        if not sep or not key.strip():
            raise fail(f'-l: "{part}" is not of the form key=value')
    return ",".join(parts) or None


@click.command()
@click.argument("resource")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Choice(OUTPUTS), help="wide: more columns; json|yaml: the wire object.")
@click.option("-l", "--selector", multiple=True, help="Only objects with these labels: key=value[,key=value].")
@click.pass_obj
def get(env: Env, resource: str, name: str | None, output: str | None, selector: tuple[str, ...]) -> None:
    """List Nodes or Projects, or show one by NAME."""
    kind = resolve_kind(resource)
    selector_text = label_selector(selector)
    if name is not None:
        check_name(name)
        if selector_text:
            raise fail("a NAME and -l cannot be used together")

    table = output not in ("json", "yaml")

    async def fetch(client: Client) -> tuple[dict[str, Any], dict[str, Any] | None]:
        # The server's own JSON, never decoded into models: exact for -o json|yaml, and fast for tables. A table of
        # Projects also reads the Nodes, to mark the Projects whose Node is not Ready.
        found = await client.wire("nodes" if kind == "node" else "projects", name, label_selector=selector_text)
        nodes = await client.wire("nodes") if kind == "project" and table else None
        return found, nodes

    result, nodes = run(env, fetch)
    if output == "json":
        click.echo(printers.to_json(result))
        return
    if output == "yaml":
        click.echo(printers.to_yaml(result))
        return
    items = [result] if name else result["items"]
    if not items:
        click.echo("No resources found", err=True)
        return
    wide, now = output == "wide", env.now()
    if kind == "node":
        click.echo(printers.nodes_table(items, now, wide=wide))
        return
    click.echo(printers.projects_table(items, now, wide=wide, node_states=printers.node_states(nodes)))
