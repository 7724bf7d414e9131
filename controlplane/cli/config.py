"""Where caractrl finds its control plane: `--server`, `CARA_SERVER`, the config file, else MagicDNS via tailscaled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from controlplane.defaults import SERVER_NAME, SERVER_PORT

ENV_VAR = "CARA_SERVER"
#: The MagicDNS name looked up when no server is configured (design §5.3); CARA_SERVER_NAME overrides it.
DEFAULT_SERVER_NAME = SERVER_NAME
NAME_ENV_VAR = "CARA_SERVER_NAME"


class ConfigError(Exception):
    """ConfigError is raised when no server is configured or the config file cannot be used."""


def config_path(environ: Mapping[str, str]) -> Path:
    """config_path is `$XDG_CONFIG_HOME/caravanserai/config.yaml`, else `~/.config/caravanserai/config.yaml`."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "caravanserai" / "config.yaml"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    import yaml  # only when there is a file to read: most runs pass --server or CARA_SERVER

    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping such as 'server: URL'")
    for key in ("server", "serverName"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConfigError(f"{path}: {key}: must be a string")
    return data


def _normalise(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def check_url(url: str, how: str) -> str:
    """check_url returns url if it is an http(s) URL with a host and a numeric port; raises ConfigError naming how
    it was given (`--server`, `CARA_SERVER` or the config file)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in 0-65535)
    except ValueError as exc:
        raise ConfigError(f"{how}: invalid server URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{how}: invalid server URL {url!r}: must be http://HOST[:PORT] or https://HOST[:PORT]")
    return url


Discover = Callable[[str, str | None], Awaitable[str]]


async def discover_server(name: str, socket: str | None) -> str:
    """discover_server resolves the MagicDNS name through the local tailscaled's peer list (never OS DNS)."""
    from mesh import LocalClient, resolve  # pydantic and the LocalAPI models: only when no server is configured

    async with LocalClient(socket) as local:
        ip = resolve(await local.status(), name)[0]
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{host}:{SERVER_PORT}"


async def resolve_server(
    option: str | None, environ: Mapping[str, str], *, socket: str | None = None, discover: Discover = discover_server
) -> tuple[str, str]:
    """resolve_server returns the control plane's base URL and how it was found.

    The order is `--server`, `CARA_SERVER`, the config file's `server:`, then the MagicDNS name (`serverName:` in
    the file, `CARA_SERVER_NAME`, default `cara-server`) resolved through the local tailscaled. Raises ConfigError
    naming every place to set it when all of them fail.
    """
    path = config_path(environ)
    if option:
        return check_url(_normalise(option), "--server"), "--server"
    if environ.get(ENV_VAR):
        return check_url(_normalise(environ[ENV_VAR]), ENV_VAR), ENV_VAR
    data = _read_file(path)
    if data.get("server"):
        return check_url(_normalise(data["server"]), str(path)), str(path)
    name = environ.get(NAME_ENV_VAR) or data.get("serverName") or DEFAULT_SERVER_NAME
    from mesh import MeshError  # as above: discovery is the last resort

    try:
        return await discover(name, socket or environ.get("TS_SOCKET")), f"MagicDNS name {name!r} via tailscaled"
    except MeshError as exc:
        raise ConfigError(
            f"no server configured and MagicDNS discovery of {name!r} failed ({exc}): pass --server URL, "
            f'set {ENV_VAR}, or write "server: URL" to {path}'
        ) from None
