"""Where caractrl finds its control plane: `--server`, else `CARA_SERVER`, else the user's config file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ENV_VAR = "CARA_SERVER"


class ConfigError(Exception):
    """ConfigError is raised when no server is configured or the config file cannot be used."""


def config_path(environ: Mapping[str, str]) -> Path:
    """config_path is `$XDG_CONFIG_HOME/caravanserai/config.yaml`, else `~/.config/caravanserai/config.yaml`."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(base) / "caravanserai" / "config.yaml"


def _from_file(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return None
    server = data.get("server") if isinstance(data, dict) else None
    if server is not None and not isinstance(server, str):
        raise ConfigError(f"{path}: server: must be a URL string")
    return server or None


def _normalise(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def resolve_server(option: str | None, environ: Mapping[str, str]) -> str:
    """resolve_server returns the control plane's base URL; raises ConfigError naming every place to set it.

    This is the one place the server is looked up: MagicDNS discovery through the local tailscaled
    (design §5.3) plugs in here, after the config file.
    """
    path = config_path(environ)
    url = option or environ.get(ENV_VAR) or _from_file(path)
    if not url:
        raise ConfigError(f'no server configured: pass --server URL, set {ENV_VAR}, or write "server: URL" to {path}')
    return _normalise(url)
