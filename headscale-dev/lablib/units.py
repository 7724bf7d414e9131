"""The service units of deploy/systemd read as the tests need them: ExecStart, the writable paths, and the unit's
command line with its install paths mapped onto a test's own (the units are the one source of how the binaries
are started; the lab runs exactly their command lines)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
#: Where docs/deploy.md installs the venv, the settings files and (through StateDirectory=) the state.
PREFIX = "/opt/caravanserai"
ETC = "/etc/caravanserai"
STATE = "/var/lib/caravanserai"
#: The unit's settings file → its template in deploy/.
TEMPLATES = {f"{ETC}/server.toml": DEPLOY / "server.toml", f"{ETC}/agent.env": DEPLOY / "agent.env"}


@dataclass(frozen=True)
class Unit:
    """Unit is one parsed unit file: (section, key) → values in order (a key may repeat)."""

    path: Path
    entries: dict[tuple[str, str], list[str]]

    def values(self, section: str, key: str) -> list[str]:
        return self.entries.get((section, key), [])

    def value(self, section: str, key: str) -> str:
        found = self.values(section, key)
        assert len(found) == 1, f"{self.path.name}: [{section}] {key} is set {len(found)} times"
        return found[0]

    def exec_start(self) -> list[str]:
        """exec_start is ExecStart's argv."""
        return shlex.split(self.value("Service", "ExecStart"))

    def writable_paths(self) -> list[str]:
        """writable_paths are where the hardened service may write: ReadWritePaths, /var/lib/<StateDirectory>,
        and the private /tmp and /var/tmp of PrivateTmp=yes."""
        paths = [p.lstrip("-") for line in self.values("Service", "ReadWritePaths") for p in line.split()]
        paths += [f"/var/lib/{d}" for line in self.values("Service", "StateDirectory") for d in line.split()]
        if self.value("Service", "PrivateTmp") == "yes":
            paths += ["/tmp", "/var/tmp"]
        return paths


def load_unit(name: str) -> Unit:
    """load_unit parses deploy/systemd/NAME (no continuation lines: the units have none)."""
    path = DEPLOY / "systemd" / name
    entries: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault((section, key.strip()), []).append(value.strip())
    return Unit(path, entries)


def localize(argv: list[str], *, bin_dir: Path, etc: Path) -> list[str]:
    """localize maps the unit's install paths onto a test's: PREFIX/bin → bin_dir, ETC → etc."""
    out = []
    for arg in argv:
        if arg.startswith(f"{PREFIX}/bin/"):
            arg = str(bin_dir / arg.removeprefix(f"{PREFIX}/bin/"))
        elif arg.startswith(f"{ETC}/"):
            arg = str(etc / arg.removeprefix(f"{ETC}/"))
        out.append(arg)
    return out


def install_settings(etc: Path) -> None:
    """install_settings copies the settings templates of deploy/ into `etc`, as docs/deploy.md does into ETC."""
    etc.mkdir(parents=True, exist_ok=True)
    for target, template in TEMPLATES.items():
        (etc / Path(target).name).write_text(template.read_text())
