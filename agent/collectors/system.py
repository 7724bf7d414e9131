"""System facts for status.info: kernel version, OS image (os-release PRETTY_NAME) and the agent's version."""

from __future__ import annotations

import platform
import shlex
from importlib import metadata
from pathlib import Path

from controlplane.api import NodeInfo

#: Where os-release(5) lives; /usr/lib/os-release is the fallback the spec names.
OS_RELEASE_PATHS = (Path("/etc/os-release"), Path("/usr/lib/os-release"))
DISTRIBUTION = "caravanserai-mesh"


def os_image(paths: tuple[Path, ...] = OS_RELEASE_PATHS) -> str:
    """os_image is PRETTY_NAME from the first readable os-release file, else NAME, else "Linux"."""
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                try:
                    fields[key.strip()] = " ".join(shlex.split(value))
                except ValueError:
                    fields[key.strip()] = value.strip().strip("\"'")
        if fields.get("PRETTY_NAME") or fields.get("NAME"):
            return fields.get("PRETTY_NAME") or fields["NAME"]
    return platform.system() or "Linux"


def agent_version() -> str:
    """agent_version is the installed caravanserai-mesh version ("0.0.0+unknown" when not installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def collect_info(*, kernel: str | None = None, os_release: tuple[Path, ...] = OS_RELEASE_PATHS) -> NodeInfo:
    """collect_info returns status.info; kernel defaults to this machine's release (uname -r)."""
    return NodeInfo(
        kernel_version=kernel if kernel is not None else platform.release(),
        os_image=os_image(os_release),
        agent_version=agent_version(),
    )
