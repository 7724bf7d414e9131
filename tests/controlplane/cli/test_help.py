"""Help is static text (controlplane/cli/helptext.py): in step with the commands, printed without importing a verb."""

from __future__ import annotations

from click.testing import CliRunner

from controlplane.cli.env import Env
from controlplane.cli.helptext import HELP
from controlplane.cli.main import VERBS, asks_help, cli, rendered_help


def test_the_stored_help_is_what_the_commands_render_now() -> None:
    assert HELP == rendered_help(), "controlplane/cli/helptext.py is stale: run scripts/caractrl-help"
    assert set(HELP) == {"", *VERBS}


def test_a_verb_given_help_anywhere_prints_its_stored_text() -> None:
    result = CliRunner().invoke(cli, ["get", "nodes", "-o", "wide", "--help"], obj=Env(environ={}))
    assert result.exit_code == 0
    assert result.stdout == HELP["get"] + "\n"
    assert result.stdout.startswith("Usage: caractrl get [OPTIONS] RESOURCE [NAMES]...\n")


def test_help_after_the_end_of_options_is_an_argument() -> None:
    assert asks_help(["nodes", "-h"])
    assert not asks_help(["nodes", "--", "-h"])
    assert not asks_help(["nodes", "-hx"])
