"""Thin wrappers over the system: commands, namespaces, daemons and the tailscaled LocalAPI over its socket."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .plan import LabError


def run(cmd: Sequence[str], *, check: bool = True, timeout: float = 30, env: dict[str, str] | None = None) -> str:
    """Run `cmd` and return its stdout; raises LabError with the command's stderr when it fails."""
    try:
        p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {cmd[0]}") from exc
    if check and p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(cmd)}` failed: {msg[-1] if msg else f'exit {p.returncode}'}")
    return p.stdout


def ns(netns: str, *cmd: str) -> list[str]:
    """Return `cmd` prefixed to run inside network namespace `netns`."""
    return ["ip", "netns", "exec", netns, *cmd]


def list_netns() -> set[str]:
    """Return the names of all named network namespaces."""
    out = run(["ip", "-j", "netns", "list"], check=False).strip()
    return {n["name"] for n in json.loads(out)} if out else set()


def netns_inode(netns: str) -> int:
    """Return the inode identifying namespace `netns` (compare with /proc/<pid>/ns/net)."""
    return os.stat(f"/run/netns/{netns}").st_ino


def start_daemon(netns: str, argv: Sequence[str], *, log: str, env: dict[str, str]) -> int:
    """Start `argv` in `netns` in its own session with output to `log`; return its PID (ip execs in place)."""
    with open(log, "ab") as out:
        p = subprocess.Popen(
            ns(netns, *argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    return p.pid


def alive(pid: int) -> bool:
    """Return whether `pid` is a live (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop(pid: int, *, grace: float = 5.0) -> None:
    """Send SIGTERM to `pid`, then SIGKILL if it is still alive after `grace` seconds, and reap it if ours."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            if not alive(pid):
                return
            time.sleep(0.05)


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float, interval: float = 0.2) -> Any:
    """Poll `probe` until it returns a truthy value and return it; raises LabError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except (OSError, LabError, ValueError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" ({last})" if last else ""))
        time.sleep(interval)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket, with the Host header tailscaled demands."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("local-tailscaled.sock", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def localapi(sock: str, path: str, *, method: str = "GET", timeout: float = 5.0) -> Any:
    """Call tailscaled's LocalAPI `/localapi/v0/<path>` on `sock` and return the decoded JSON."""
    conn = _UnixHTTPConnection(sock, timeout)
    try:
        conn.request(method, f"/localapi/v0/{path}")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise LabError(f"LocalAPI {path} on {sock}: HTTP {resp.status} {body[:200]!r}")
    return json.loads(body)


def tail(path: str, lines: int = 15) -> str:
    """Return the last `lines` lines of a log file, or a note that it is missing."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"
