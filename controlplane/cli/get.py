"""`caractrl get TYPE [NAME...] | TYPE/NAME...`: tables for people, `-o json|yaml|name|jsonpath=|custom-columns=`
for tools, `-l` selectors, `--sort-by`, `--no-headers`, `--show-labels`, and `-w` to watch."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import click

from controlplane.client import Client, NotFound
from controlplane.selectors import InvalidSelector, parse_selector

from . import output as outputs
from . import printers
from .context import Env, Failure, Kind, complete_kind, complete_name, fail, problem_lines, resolve_targets, run
from .events import EVENT_WORDS, get_events

OUTPUT_HELP = "wide | json | yaml | name | jsonpath=TEMPLATE | custom-columns=HEADER:PATH[,...]"
PLAIN_OUTPUTS = ("wide", "json", "yaml", "name")
RESOURCE: dict[Kind, Literal["nodes", "projects"]] = {"node": "nodes", "project": "projects"}


@dataclass(frozen=True, slots=True)
class Shown:
    """Shown is how `get` prints: the -o form ("" for the table), --show-labels and --no-headers."""

    output: str = ""
    show_labels: bool = False
    no_headers: bool = False


def label_selector(terms: tuple[str, ...]) -> str | None:
    """label_selector joins `-l` values and checks them with the server's parser; raises Failure naming the selector."""
    text = ",".join(term.strip() for term in terms if term.strip())
    if not text:
        return None
    try:
        parse_selector(text)
    except InvalidSelector as exc:
        raise fail(f"-l: {exc}") from None
    return text


def check_output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """check_output accepts the -o forms of OUTPUT_HELP; a usage error (exit 2) naming -o otherwise."""
    if value is None or value in PLAIN_OUTPUTS or value.startswith(("jsonpath=", "custom-columns=")):
        return value
    raise click.BadParameter(f'unknown output format "{value}" (expected {OUTPUT_HELP})')


def render(
    kind: Kind,
    items: list[dict[str, Any]],
    env: Env,
    shown: Shown,
    *,
    headers: bool,
    node_states: Mapping[str, str] | None = None,
) -> str:
    """render is the text of items for the -o, --show-labels and --no-headers options; node_states (Node name →
    state) marks the Projects whose Node is not Ready in a table."""
    out = shown.output
    if out == "name":
        return "\n".join(f"{kind}/{item['metadata']['name']}" for item in items)
    if out.startswith("custom-columns="):
        return outputs.custom_columns(out.removeprefix("custom-columns="), items, headers=headers)
    wide, now = out == "wide", env.now()
    if kind == "node":
        columns = printers.NODE_WIDE_COLUMNS if wide else printers.NODE_COLUMNS
        rows = [printers.node_row(item, now, wide=wide) for item in items]
    else:
        columns = printers.PROJECT_WIDE_COLUMNS if wide else printers.PROJECT_COLUMNS
        rows = [printers.project_row(item, now, wide=wide, node_states=node_states) for item in items]
    if shown.show_labels:
        columns = [*columns, "LABELS"]
        rows = [[*row, outputs.labels_text(item)] for row, item in zip(rows, items, strict=True)]
    text = printers.table(columns, rows)
    return text if headers else "\n".join(text.splitlines()[1:])


def _as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


@click.command()
@click.argument("resource", shell_complete=complete_kind)
@click.argument("names", nargs=-1, shell_complete=complete_name)
@click.option("-o", "--output", metavar="FORMAT", help=OUTPUT_HELP, callback=check_output)
@click.option("-l", "--selector", multiple=True, help="Label selector: k=v, k!=v, k in (a,b), k notin (a), k, !k.")
@click.option("-w", "--watch", is_flag=True, help="After listing, print changes as they happen (Ctrl-C ends).")
@click.option("--sort-by", metavar="JSONPATH", help="Sort by the value of a JSONPath, e.g. .metadata.name.")
@click.option("--no-headers", is_flag=True, help="Do not print the header line of tables.")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option(
    "--request-timeout", type=float, metavar="SECONDS", help="With -w: stop watching after this many seconds."
)
@click.option("--for", "for_", metavar="KIND/NAME", help="events: only those about node/NAME or project/NAME.")
@click.pass_obj
def get(
    env: Env,
    resource: str,
    names: tuple[str, ...],
    output: str | None,
    selector: tuple[str, ...],
    watch: bool,
    sort_by: str | None,
    no_headers: bool,
    show_labels: bool,
    request_timeout: float | None,
    for_: str | None,
) -> None:
    """List Nodes, Projects or Events, or show Nodes or Projects by NAME (several names, or TYPE/NAME forms)."""
    if resource.lower() in EVENT_WORDS:
        if names or selector:
            raise fail("events take no NAME and no -l; use --for node/NAME")
        get_events(env, for_=for_, watch=watch, output=output, timeout=request_timeout)
        return
    if for_ is not None:
        raise fail("--for applies to events only")
    shown = Shown(output or "", show_labels, no_headers)
    targets = resolve_targets(resource, names)
    selector_text = label_selector(selector)
    named = any(name is not None for _, name in targets)
    if named and selector_text:
        raise fail("a NAME and -l cannot be used together")
    if watch and (named or len({kind for kind, _ in targets}) > 1):
        raise fail("-w watches one TYPE, without names")

    missing: list[str] = []
    node_states: dict[str, str] = {}
    tables = shown.output in ("", "wide")

    async def fetch(client: Client) -> list[tuple[Kind, list[dict[str, Any]]]]:
        # The server's own JSON, never decoded into models: exact for -o json|yaml, and fast for tables. A table of
        # Projects also reads the Nodes, to mark the Projects whose Node is not Ready.
        if tables and any(kind == "project" for kind, _ in targets):
            node_states.update(printers.node_states(await client.get_raw("nodes")))
        found: dict[Kind, list[dict[str, Any]]] = {}
        for kind, name in targets:
            try:
                body = await client.get_raw(RESOURCE[kind], name, label_selector=selector_text)
            except NotFound as exc:
                if len(targets) == 1:
                    raise
                missing.extend(problem_lines(exc))  # as kubectl: show the others, name the missing, exit 1
                continue
            found.setdefault(kind, []).extend([body] if name else body["items"])
        return list(found.items())

    results = run(env, fetch)
    if sort_by:
        results = [(kind, outputs.sort_by(items, sort_by)) for kind, items in results]
    states = node_states if tables else None
    _print(env, results, single=len(targets) == 1 and named, listing=not named, shown=shown, node_states=states)
    if missing:
        raise Failure(missing)
    if watch:
        _watch(env, results[0][0], selector_text, results[0][1], shown, request_timeout, states)


def _print(
    env: Env,
    results: list[tuple[Kind, list[dict[str, Any]]]],
    *,
    single: bool,
    listing: bool,
    shown: Shown,
    node_states: Mapping[str, str] | None,
) -> None:
    """_print shows one object as itself, a listing as the server's NodeList/ProjectList, several names as a List."""
    out = shown.output
    every = [item for _, items in results for item in items]
    if out in ("json", "yaml") or out.startswith("jsonpath="):
        whole: dict[str, Any] = every[0] if single else _as_list(every)
        if listing:
            kind = results[0][0]
            whole = {
                "apiVersion": "caravanserai/v1",
                "kind": "NodeList" if kind == "node" else "ProjectList",
                "items": every,
            }
        if out == "json":
            click.echo(printers.to_json(whole))
        elif out == "yaml":
            click.echo(printers.to_yaml(whole))
        else:
            click.echo(outputs.jsonpath(out.removeprefix("jsonpath="), whole))
        return
    if not every:
        click.echo("No resources found", err=True)
        return
    blocks = [
        render(kind, items, env, shown, headers=not shown.no_headers, node_states=node_states)
        for kind, items in results
        if items
    ]
    click.echo(("\n" if out == "name" else "\n\n").join(blocks))


def _watch(
    env: Env,
    kind: Kind,
    selector: str | None,
    listed: list[dict[str, Any]],
    shown: Shown,
    timeout_s: float | None,
    node_states: Mapping[str, str] | None,
) -> None:
    """_watch prints one line per change after the listing, reopening the stream until Ctrl-C or --request-timeout
    (Projects are marked with the Node states read for the listing)."""
    last = {item["metadata"]["name"]: item for item in listed}
    deadline = time.monotonic() + timeout_s if timeout_s else None

    async def follow(client: Client) -> None:
        while deadline is None or time.monotonic() < deadline:
            left = None if deadline is None else deadline - time.monotonic()
            async for event in client.watch(RESOURCE[kind], label_selector=selector, timeout_s=left):
                obj = event.get("object") or {}
                name = obj.get("metadata", {}).get("name") if isinstance(obj, dict) else None
                if event["type"] == "BOOKMARK" or not isinstance(name, str):
                    continue
                if event["type"] == "DELETED":
                    last.pop(name, None)
                elif last.get(name) == obj:
                    continue
                else:
                    last[name] = obj
                out = shown.output
                if out == "json":
                    click.echo(printers.to_json(obj))
                elif out == "yaml":
                    click.echo("---\n" + printers.to_yaml(obj))
                elif out.startswith("jsonpath="):
                    click.echo(outputs.jsonpath(out.removeprefix("jsonpath="), obj))
                else:
                    click.echo(render(kind, [obj], env, shown, headers=False, node_states=node_states))

    try:
        run(env, follow)
    except KeyboardInterrupt:  # Ctrl-C is how a watch ends: no traceback
        return
