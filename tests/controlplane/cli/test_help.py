"""Help is static text (controlplane/cli/help.txt): in step with the commands, printed without importing a verb."""

from __future__ import annotations

from click.testing import CliRunner

from controlplane.cli.env import Env
from controlplane.cli.main import HELP_FILE, VERBS, asks_help, cli, help_file_text, rendered_help, stored_help


def test_the_stored_help_is_what_the_commands_render_now() -> None:
    rendered = rendered_help()
    assert HELP_FILE.read_text(encoding="utf-8") == help_file_text(rendered), (
        "controlplane/cli/help.txt is stale: run scripts/caractrl-help"
    )
    assert stored_help() == rendered
    assert set(rendered) == {"", *VERBS}


def test_a_verb_given_help_anywhere_prints_its_stored_text() -> None:
    result = CliRunner().invoke(cli, ["get", "nodes", "-o", "wide", "--help"], obj=Env(environ={}))
    assert result.exit_code == 0
    assert result.stdout == stored_help()["get"] + "\n"
    assert result.stdout.startswith("Usage: caractrl get [OPTIONS] RESOURCE [NAMES]...\n")


def test_help_after_the_end_of_options_is_an_argument() -> None:
    assert asks_help(["nodes", "-h"])
    assert not asks_help(["nodes", "--", "-h"])
    assert not asks_help(["nodes", "-hx"])
