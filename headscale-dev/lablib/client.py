"""A running lab seen from Python (the lab tests and the benchmarks): its hosts, and ways to run things in them.

It drives the `headscale-dev/lab` command, so callers need not be root to import it, only to use a lab.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .plan import DEFAULT_EDGES, LabError

LAB_SCRIPT = Path(__file__).resolve().parents[1] / "lab"


class LabCommandError(subprocess.CalledProcessError):
    """Raised when a command run in the lab fails with check=True; its message carries the command's output."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class Lab:
    """A running lab seen from a test or a benchmark: its hosts (the status JSON) and ways to run things inside it."""

    def __init__(self, name: str, script: Path = LAB_SCRIPT) -> None:
        self.name = name
        self.script = script
        self.doc: dict[str, Any] = {}
        self.hosts: dict[str, dict[str, str]] = {}
        self.refresh()

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `headscale-dev/lab --name NAME ARGS...` and return its result."""
        return _run([str(self.script), "--name", self.name, *args], check=check, timeout=timeout)

    def refresh(self) -> None:
        """Reload the status document (hosts, blocked pairs, shaping)."""
        self.doc = json.loads(self.cli("status", "--json").stdout)
        self.hosts = self.doc["hosts"]

    def argv_env(self, host: str, cmd: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
        """Return the argv and environment that run `cmd` in `host`'s netns with TS_SOCKET set."""
        if host not in self.hosts:
            raise KeyError(f"unknown lab host {host!r}; hosts: {sorted(self.hosts)}")
        h = self.hosts[host]
        env = dict(os.environ, TS_SOCKET=h["socket"])
        env["PATH"] = f"{self.doc['dir']}/bin:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        return ["ip", "netns", "exec", h["netns"], *cmd], env

    def run(self, host: str, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `cmd` to completion inside `host`'s netns (`tailscale` on PATH talks to that host's tailscaled)."""
        argv, env = self.argv_env(host, cmd)
        return _run(argv, check=check, timeout=timeout, env=env)

    def popen(self, host: str, *cmd: str, **kw: Any) -> subprocess.Popen[Any]:
        """Start a long-running `cmd` inside `host`'s netns; the caller stops it (its PID is the command's own)."""
        argv, env = self.argv_env(host, cmd)
        return subprocess.Popen(argv, env={**env, **kw.pop("env", {})}, **kw)

    def block(self, a: str, b: str) -> None:
        """Drop direct UDP between hosts `a` and `b`, so their path falls back to DERP."""
        self.cli("block", a, b)

    def unblock(self, a: str, b: str) -> None:
        """Restore direct UDP between hosts `a` and `b`."""
        self.cli("unblock", a, b)

    def cut(self, a: str, b: str) -> None:
        """Drop ALL tailnet traffic between hosts `a` and `b`, direct and relayed (a firewall in `a` on tailscale0)."""
        self.cli("cut", a, b)

    def uncut(self, a: str, b: str) -> None:
        """Restore the tailnet traffic between hosts `a` and `b`."""
        self.cli("uncut", a, b)

    def shape(self, host: str, rate: str) -> None:
        """Limit `host`'s link to `rate` (tc syntax, e.g. `100mbit`) each way; `off` removes the limit."""
        self.cli("shape", host, rate)

    def status(self, host: str) -> dict[str, Any]:
        """Return `tailscale status --json` as seen by `host`."""
        return dict(json.loads(self.run(host, "tailscale", "status", "--json").stdout))


def _run(
    argv: list[str], *, check: bool, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise LabCommandError(p.returncode, argv, p.stdout, p.stderr)
    return p


@contextmanager
def _locked(script: Path) -> Iterator[None]:
    """Serialize lab start/stop between concurrent pytest sessions by locking the script file itself."""
    with open(script) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def using_lab(name: str, *, edges: int = DEFAULT_EDGES) -> Iterator[Lab]:
    """Yield lab `name`, bringing it up first if needed, registered as a user so `lab down` waits for us.
    Raises LabError when not root.

    A lab that a fixture brought up is taken down by the last test session to leave it (the one that started it
    may finish while another still uses it); a lab someone brought up by hand is left running."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces): run as root")
    base = [str(LAB_SCRIPT), "--name", name]
    with _locked(LAB_SCRIPT):
        started = _run([*base, "status", "--json"], check=False, timeout=30).returncode != 0
        if started:
            _run([*base, "up", "--edges", str(edges)], check=True, timeout=300)
        lab = Lab(name)
        users = Path(lab.doc["dir"]) / "users"
        users.mkdir(exist_ok=True)
        if started:
            (users / "started-by-fixture").touch()  # not a PID: `lab down` ignores it when counting users
        (users / str(os.getpid())).touch()
    try:
        yield lab
    finally:
        with _locked(LAB_SCRIPT):
            (users / str(os.getpid())).unlink(missing_ok=True)
            if (users / "started-by-fixture").exists():
                # Refused (exit 1) while another live session is registered: the lab then stays up for it.
                _run([*base, "down"], check=False, timeout=120)
