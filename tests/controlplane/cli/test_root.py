"""Tests of caractrl's root: where the server comes from, version, -v, and how client errors are printed."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from controlplane.cli.config import ConfigError, config_path, resolve_server
from controlplane.cli.context import Env
from controlplane.cli.main import cli
from controlplane.cli.version import client_version
from controlplane.client import Client

Handler = Callable[[httpx.Request], httpx.Response]


def invoke(args: list[str], environ: dict[str, str], handler: Handler | None = None) -> tuple[Result, list[str]]:
    """invoke runs caractrl with a factory over handler; returns the result and the base URLs clients were built for."""
    urls: list[str] = []

    def factory(url: str) -> Client:
        urls.append(url)
        answer = handler or (lambda request: httpx.Response(200, json={"items": []}))
        return Client(url, transport=httpx.MockTransport(answer))

    env = Env(environ=environ, client_factory=factory)
    return CliRunner().invoke(cli, args, obj=env), urls


def write_config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "caravanserai" / "config.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_server_option_wins_over_environment_and_config(tmp_path: Path) -> None:
    environ = {**write_config(tmp_path, "server: http://from-file:8080\n"), "CARA_SERVER": "http://from-env:8080"}
    _, urls = invoke(["--server", "http://from-flag:8080/", "get", "nodes"], environ)
    assert urls == ["http://from-flag:8080"]


def test_environment_wins_over_config(tmp_path: Path) -> None:
    environ = {**write_config(tmp_path, "server: http://from-file:8080\n"), "CARA_SERVER": "from-env:8080"}
    _, urls = invoke(["get", "nodes"], environ)
    assert urls == ["http://from-env:8080"]


def test_config_file_is_the_last_resort(tmp_path: Path) -> None:
    result, urls = invoke(["get", "nodes"], write_config(tmp_path, "server: http://from-file:8080\n"))
    assert result.exit_code == 0
    assert urls == ["http://from-file:8080"]


def test_config_path_defaults_under_home() -> None:
    assert config_path({"HOME": "/home/op"}) == Path("/home/op/.config/caravanserai/config.yaml")
    assert config_path({"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/op"}) == Path("/xdg/caravanserai/config.yaml")


@pytest.mark.parametrize("args", [["get", "nodes"], ["apply", "-f", "-"], ["version"], ["drain", "edge-1"]])
def test_no_server_configured_names_every_place(tmp_path: Path, args: list[str]) -> None:
    environ = {"HOME": str(tmp_path), "TS_SOCKET": str(tmp_path / "no.sock")}
    result = CliRunner().invoke(cli, args, obj=Env(environ=environ), input="kind: Node\nmetadata: {name: a}\n")
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(
        f"Error: no server configured and MagicDNS discovery of 'cara-server' failed (cannot reach tailscaled at "
        f"{tmp_path}/no.sock: "
    )
    assert last.endswith(
        f'pass --server URL, set CARA_SERVER, or write "server: URL" to {tmp_path}/.config/caravanserai/config.yaml'
    )


async def _found(name: str, socket: str | None) -> str:
    return f"http://100.64.0.1:8080/{name}/{socket}"


@pytest.mark.parametrize(
    ("option", "environ", "config", "expected"),
    [
        ("http://a:1", {"CARA_SERVER": "http://b:2"}, "server: http://c:3", ("http://a:1", "--server")),
        (None, {"CARA_SERVER": "b:2"}, "server: http://c:3", ("http://b:2", "CARA_SERVER")),
        (None, {}, "server: http://c:3", ("http://c:3", "FILE")),
        (None, {}, "", ("http://100.64.0.1:8080/cara-server/None", "MagicDNS name 'cara-server' via tailscaled")),
        (
            None,
            {"CARA_SERVER_NAME": "cp", "TS_SOCKET": "/s"},
            "serverName: x",
            ("http://100.64.0.1:8080/cp//s", "MagicDNS name 'cp' via tailscaled"),
        ),
        (None, {}, "serverName: x", ("http://100.64.0.1:8080/x/None", "MagicDNS name 'x' via tailscaled")),
    ],
    ids=["option", "env", "file", "magicdns", "magicdns-env-name", "magicdns-file-name"],
)
async def test_resolution_order(
    tmp_path: Path, option: str | None, environ: dict[str, str], config: str, expected: tuple[str, str]
) -> None:
    env = write_config(tmp_path, config) | environ
    url, how = await resolve_server(option, env, discover=_found)
    assert (url, how) == (expected[0], str(config_path(env)) if expected[1] == "FILE" else expected[1])


def test_verbose_says_which_server(tmp_path: Path) -> None:
    result, _ = invoke(["-v", "version"], {"CARA_SERVER": "http://cara:8080"}, lambda r: httpx.Response(200, text="OK"))
    assert result.exit_code == 0
    assert "Using server http://cara:8080 (from CARA_SERVER)" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [("server: [1, 2]\n", "server: must be a string"), ("server: {\n", "not valid YAML")],
    ids=["wrong-type", "bad-yaml"],
)
def test_a_broken_config_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    environ = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        asyncio.run(resolve_server(None, environ))
    result, urls = invoke(["get", "nodes"], environ)
    assert (result.exit_code, urls) == (1, [])
    assert result.stderr.startswith(f"Error: {tmp_path}/caravanserai/config.yaml: ")


def _server(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/version":
        return httpx.Response(200, json={"version": "0.1.0", "apiVersion": "caravanserai/v1"})
    return httpx.Response(200, text="OK")


def test_version_prints_client_and_server() -> None:
    result, _ = invoke(["version"], {"CARA_SERVER": "http://cara:8080"}, _server)
    assert result.exit_code == 0
    assert result.stdout == (
        f"Client Version: {client_version()}\nServer Version: 0.1.0\nServer: http://cara:8080 (healthz: OK)\n"
    )
    with (Path(__file__).resolve().parents[3] / "pyproject.toml").open("rb") as f:
        assert client_version() == tomllib.load(f)["project"]["version"]  # the installed package's, not a constant


def test_version_of_a_server_without_a_version_route() -> None:
    result, _ = invoke(["version"], {"CARA_SERVER": "http://cara:8080"}, lambda r: httpx.Response(200, text="OK"))
    assert result.exit_code == 0 and "Server Version: unknown\n" in result.stdout


def test_version_client_only_needs_no_server() -> None:
    result, urls = invoke(["version", "--client"], {})
    assert (result.exit_code, result.stdout, urls) == (0, f"Client Version: {client_version()}\n", [])


def test_an_unreachable_server_is_one_line_naming_the_url() -> None:
    env = Env(environ={"CARA_SERVER": "http://127.0.0.1:9"}, client_factory=lambda url: Client(url, timeout=2.0))
    result = CliRunner().invoke(cli, ["get", "nodes"], obj=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot reach the control plane at http://127.0.0.1:9: ")
    assert len(result.stderr.splitlines()) == 1


def test_a_problem_document_prints_title_detail_and_each_field_error() -> None:
    problem = {
        "type": "about:blank",
        "title": "Validation Problem",
        "status": 400,
        "detail": "the request is invalid",
        "errors": ["spec.unschedulable: must be a boolean", "metadata.name: is required"],
    }
    result, _ = invoke(["get", "nodes"], {"CARA_SERVER": "http://cara"}, lambda r: httpx.Response(400, json=problem))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: Validation Problem: the request is invalid",
        "  spec.unschedulable: must be a boolean",
        "  metadata.name: is required",
    ]


def test_a_server_error_without_a_body(tmp_path: Path) -> None:
    result, _ = invoke(["describe", "node", "a"], {"CARA_SERVER": "http://cara"}, lambda r: httpx.Response(503))
    assert (result.exit_code, result.stderr) == (1, "Error: Service Unavailable\n")


def test_verbose_logs_each_request_on_stderr_only_for_that_run() -> None:
    verbose, _ = invoke(["-v", "get", "nodes"], {"CARA_SERVER": "http://cara"})
    quiet, _ = invoke(["get", "nodes"], {"CARA_SERVER": "http://cara"})
    assert 'HTTP Request: GET http://cara/api/v1/nodes "HTTP/1.1 200 OK"' in verbose.stderr
    assert quiet.stderr == "No resources found\n"


def test_help_lists_every_verb() -> None:
    result = CliRunner().invoke(cli, ["--help"], obj=Env(environ={}))
    assert result.exit_code == 0
    for verb in ["apply", "cordon", "delete", "describe", "drain", "get", "uncordon", "version"]:
        assert f"  {verb} " in result.stdout
