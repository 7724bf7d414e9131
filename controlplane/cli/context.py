"""What the verbs share: TYPE/NAME words, running one client call (server, client, event loop), and the one place
errors become exit 1."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import IO, Any, Final, Literal, TypeVar

import click

from controlplane.client import ApiError, Client, ClientError
from controlplane.naming import NAME_RULE, validate_name

from .config import ConfigError, resolve_server
from .env import Env as Env  # re-exported: the verbs and tests take Env from here with the rest

T = TypeVar("T")

Kind = Literal["node", "project"]

#: Every spelling of a resource type that kubectl users reach for.
KINDS: dict[str, Kind] = {
    "node": "node",
    "nodes": "node",
    "no": "node",
    "project": "project",
    "projects": "project",
    "proj": "project",
}


class Failure(click.ClickException):
    """Failure ends a command with exit code 1 after printing its lines (each already `Error: ...`) on stderr."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines

    def show(self, file: IO[Any] | None = None) -> None:
        for line in self.lines:
            click.echo(line, err=True)


def fail(message: str) -> Failure:
    """fail returns a one-line Failure `Error: message` for the caller to raise."""
    return Failure([f"Error: {message}"])


def problem_lines(exc: ApiError, prefix: str = "") -> list[str]:
    """problem_lines renders a problem document: `Error: <title>: <detail>`, then one line per field error."""
    head = f"Error: {prefix}{exc.title}: {exc.detail}" if exc.detail else f"Error: {prefix}{exc.title}"
    return [head, *(f"  {error}" for error in exc.errors)]


def resolve_kind(word: str) -> Kind:
    """resolve_kind maps `node`, `nodes`, `project`, ... to a kind; raises Failure for anything else."""
    kind = KINDS.get(word.lower())
    if kind is None:
        raise fail(f'unknown resource type "{word}" (expected nodes or projects)')
    return kind


def resolve_targets(resource: str, names: tuple[str, ...]) -> list[tuple[Kind, str | None]]:
    """resolve_targets reads kubectl's two forms: `TYPE [NAME...]` and `TYPE/NAME...`; (kind, None) means all.

    Raises Failure for an unknown type, a bad name, or the two forms mixed.
    """
    words = [resource, *names]
    if "/" in resource:
        targets: list[tuple[Kind, str | None]] = []
        for word in words:
            kind, slash, name = word.partition("/")
            if not slash or not name:
                raise fail(f'"{word}": there is no need to give a TYPE when using TYPE/NAME; give each as TYPE/NAME')
            targets.append((resolve_kind(kind), check_name(name)))
        return targets
    kind = resolve_kind(resource)
    if not names:
        return [(kind, None)]
    for name in names:
        if "/" in name:
            raise fail(f'"{name}": there is no need to give a TYPE when using TYPE/NAME; give each as TYPE/NAME')
    return [(kind, check_name(name)) for name in dict.fromkeys(names)]


def check_name(name: str) -> str:
    """check_name returns name if it is a valid object name; raises Failure naming the rule."""
    try:
        return validate_name(name)
    except ValueError:
        raise fail(f'invalid name "{name}": {NAME_RULE}') from None


#: Seconds between two cancellations of a command interrupted by Ctrl-C that has not ended yet.
CANCEL_AGAIN_S: Final = 0.5


def _cancel_until_done(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    """_cancel_until_done cancels task, and again every CANCEL_AGAIN_S while it has not ended: a library can swallow
    one native cancellation (anyio's cancel scopes: agronholm/anyio#1214), which left `caractrl logs -f` streaming
    after a Ctrl-C."""
    if not task.done():
        task.cancel()
        loop.call_later(CANCEL_AGAIN_S, _cancel_until_done, loop, task)


def run(env: Env, action: Callable[[Client], Awaitable[T]], *, error_prefix: str = "") -> T:
    """run resolves the server, opens one client, runs action on a fresh event loop and maps every client error.
    Ctrl-C (SIGINT) cancels the action until it ends, then raises KeyboardInterrupt, as asyncio.run does."""
    # The result leaves through this box, not as the task's result: on Python 3.11, asyncio.run's SIGINT clean-up
    # formats a repr of the main task, result included, and the repr of 1,000 Nodes took 140-220 ms.
    box: list[T] = []
    interrupted = False

    def interrupt(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        nonlocal interrupted
        interrupted = True
        _cancel_until_done(loop, task)

    async def with_client() -> None:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        if task is not None:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
                loop.add_signal_handler(signal.SIGINT, interrupt, loop, task)
        url, how = await resolve_server(env.server, env.environ, socket=env.socket)
        if env.verbose:
            click.echo(f"Using server {url} (from {how})", err=True)
        factory = env.client_factory or Client
        async with factory(url) as client:
            box.append(await action(client))

    try:
        try:
            asyncio.run(with_client())
        except (asyncio.CancelledError, Exception):
            if interrupted:  # whatever the cancelled action raised on its way out, Ctrl-C ended it
                raise KeyboardInterrupt from None
            raise
        return box[0]
    except ConfigError as exc:
        raise fail(str(exc)) from None
    except ApiError as exc:
        raise Failure(problem_lines(exc, error_prefix)) from None
    except ClientError as exc:
        raise fail(f"{error_prefix}{exc}") from None


def complete_kind(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """complete_kind offers the resource types (for shell completion)."""
    return [word for word in ("nodes", "projects") if word.startswith(incomplete)]


def complete_name(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """complete_name offers the names of live objects of the TYPE already typed, asking the server; none on error."""
    env = ctx.find_root().obj
    kind = KINDS.get(str(ctx.params.get("resource") or "").lower())
    if not isinstance(env, Env) or kind is None:
        return []

    async def names(client: Client) -> list[str]:
        body = await client.get_raw("nodes" if kind == "node" else "projects")
        return [item["metadata"]["name"] for item in body["items"]]

    try:
        return [name for name in run(env, names) if name.startswith(incomplete)]
    except click.ClickException:
        return []
