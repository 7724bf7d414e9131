"""`caractrl apply -f FILE|-`: validate every document locally, then create each object or replace its spec."""

from __future__ import annotations

import os
import sys

import click

from controlplane.api import Node, Project
from controlplane.client import ApiError, Client, ClientError, Conflict

from .context import Env, Failure, fail, problem_lines, run
from .manifests import Manifest, ManifestError, duplicates, load_manifests


def _read(filename: str) -> tuple[str, str]:
    """_read returns (text, name for messages) of FILE, or of standard input for `-`."""
    if filename == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(filename, encoding="utf-8") as handle:
            return handle.read(), filename
    except UnicodeDecodeError:
        raise ManifestError([f"{filename}: not a UTF-8 text file"]) from None
    except OSError as exc:
        raise ManifestError([f"{filename}: {exc.strerror or exc}"]) from None


def _unchanged(current: Node | Project, wanted: Node | Project) -> bool:
    """_unchanged reports whether applying wanted would change nothing a PUT replaces (spec, labels, annotations)."""
    return (
        (current.metadata.labels or {}) == (wanted.metadata.labels or {})
        and (current.metadata.annotations or {}) == (wanted.metadata.annotations or {})
        and current.spec.to_wire() == wanted.spec.to_wire()
    )


def _files(filenames: tuple[str, ...], recursive: bool) -> list[str]:
    """_files expands folders to their .yaml, .yml and .json files (in name order; with recursive, those below too);
    `-` is kept once: `-f - -f -` names one stream, read once."""
    found: list[str] = []
    for filename in filenames:
        if filename == "-":
            if "-" not in found:
                found.append("-")
        elif os.path.isdir(filename):
            for root, dirs, files in os.walk(filename):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith((".yaml", ".yml", ".json"))]
                if not recursive:
                    break
        else:
            found.append(filename)
    return found


def load_all(filenames: tuple[str, ...], recursive: bool) -> list[Manifest]:
    """load_all validates every document of every file; raises Failure listing every problem, nothing sent."""
    manifests: list[Manifest] = []
    problems: list[str] = []
    files = _files(filenames, recursive)
    if not files:
        raise fail(f"no manifests (.yaml, .yml, .json) found in {', '.join(filenames)}")
    for filename in files:
        try:
            manifests += load_manifests(*_read(filename))
        except ManifestError as exc:
            problems += exc.lines
    problems += duplicates(manifests)
    if problems:
        raise Failure([f"Error: {line}" for line in problems])
    return manifests


async def apply_one(client: Client, obj: Node | Project, *, dry_run: bool = False) -> str:
    """apply_one POSTs obj and, on exactly 409, PUTs it unless nothing would change; returns what happened.

    The GET before the PUT lets an unchanged Project that is already Running apply cleanly: the server
    refuses any PUT of a Project that is not Pending or Failed.
    """
    try:
        if isinstance(obj, Node):
            await client.create_node(obj, dry_run=dry_run)
        else:
            await client.create_project(obj, dry_run=dry_run)
        return "created"
    except Conflict:
        pass
    current = await (client.get_node(obj.name) if isinstance(obj, Node) else client.get_project(obj.name))
    if _unchanged(current, obj):
        return "unchanged"
    if isinstance(obj, Node):
        await client.replace_node(obj, dry_run=dry_run)
    else:
        await client.replace_project(obj, dry_run=dry_run)
    return "configured"


@click.command()
@click.option(
    "-f",
    "--filename",
    "filenames",
    required=True,
    multiple=True,
    help="Manifest file (YAML, multi-document, or JSON) or folder of them; - for stdin. May be repeated.",
)
@click.option("-R", "--recursive", is_flag=True, help="With -f DIR: also read the folders below it.")
@click.option(
    "--dry-run",
    type=click.Choice(["none", "client", "server"]),
    default="none",
    help="client: validate here and send nothing; server: the server validates and stores nothing.",
)
@click.pass_obj
def apply(env: Env, filenames: tuple[str, ...], recursive: bool, dry_run: str) -> None:
    """Create or update the Nodes and Projects in manifests.

    Every document of every file is validated before anything is sent, so one bad document means
    nothing is written.
    """
    manifests = load_all(filenames, recursive)
    for manifest in manifests:
        for warning in manifest.warnings:
            click.echo(f"Warning: {warning}", err=True)
    if dry_run == "client":
        for manifest in manifests:
            click.echo(f"{manifest.ref} validated (dry run)")
        return

    async def send(client: Client) -> None:
        for manifest in manifests:
            await _send_one(client, manifest, dry_run=dry_run == "server")

    run(env, send)


async def _send_one(client: Client, manifest: Manifest, *, dry_run: bool = False) -> None:
    prefix = f"{manifest.where}: {manifest.ref}: "
    try:
        result = await apply_one(client, manifest.obj, dry_run=dry_run)
    except ApiError as exc:
        raise Failure(problem_lines(exc, prefix)) from None
    except ClientError as exc:
        raise fail(f"{prefix}{exc}") from None
    click.echo(f"{manifest.ref} {result}{' (server dry run)' if dry_run else ''}")
