"""`caractrl completion bash|zsh|fish`: the shell script completing verbs, kinds, flags and live object names.

It is click's own shell completion (`_CARACTRL_COMPLETE=<shell>_source caractrl`); TYPE and NAME arguments complete
through `complete_kind` and `complete_name`, the latter asking the server for the names of that kind.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script of a shell: `source <(caractrl completion bash)`."""
    root = ctx.find_root()
    cls = get_completion_class(shell)
    assert cls is not None  # the Choice above lists only shells click knows
    script = cls(root.command, {}, root.info_name or "caractrl", "_CARACTRL_COMPLETE").source()
    click.echo(script)
