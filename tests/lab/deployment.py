"""The deployment of docs/deploy.md as lab tests run it: the release artifacts of scripts/package installed with the
system Python from the wheelhouse (no package index), and processes started under strace to see what they write."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from lablib.release import SYSTEM_PYTHON as SYSTEM_PYTHON  # re-exported: the deploy test checks its version
from lablib.release import NoArtifacts, install, release_wheel

#: Syscalls that change the filesystem (open* only when the flags say so); strace -y prints fds with their paths.
WRITES = "open,openat,creat,mkdir,mkdirat,unlink,unlinkat,rename,renameat,renameat2,rmdir,truncate,link,linkat"
WRITES += ",symlink,symlinkat,chmod,fchmodat,chown,fchownat,mknod,mknodat"
STRACE = ("strace", "-f", "-qq", "-y", "-e", f"trace={WRITES}", "-e", "status=successful")
_CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+\d+")
_PATH = re.compile(r'(?:(AT_FDCWD|\d+<([^>]*)>),\s*)?"((?:[^"\\]|\\.)*)"')
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


@dataclass(frozen=True)
class Release:
    """Release is one version's wheel in the artifacts, with the wheelhouse and constraints to install it."""

    version: str
    wheel: Path

    def install(self, prefix: Path) -> None:
        """install is docs/deploy.md's install step (lablib.release.install)."""
        install(prefix, self.version)


def release(folder: str) -> Release:
    """release is the wheel in artifacts/`folder` (dist: this version; previous: the previous release, from
    scripts/package's PREVIOUS_RELEASE)."""
    try:
        wheel = release_wheel(folder)
    except NoArtifacts as exc:
        pytest.fail(f"{exc} (scripts/test does)")
    return Release(wheel.name.split("-")[1], wheel)


def traced_child(strace_pid: int) -> int:
    """traced_child is the PID of the program strace started (signals go to it: strace kills it on SIGTERM)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError(f"strace {strace_pid} started no program")


def stop_traced(process: subprocess.Popen[bytes]) -> None:
    """stop_traced sends SIGTERM to the traced program, as systemd would, and waits for strace to finish."""
    if process.poll() is None:
        os.kill(traced_child(process.pid), signal.SIGTERM)
        process.wait(20)


def written_paths(trace: Path, cwd: Path) -> set[str]:
    """written_paths are the files and directories a strace log shows created, changed or removed."""
    paths = set()
    for line in trace.read_text().splitlines():
        call = _CALL.match(line)
        if call is None:
            continue
        name, args = call.groups()
        found = _PATH.search(args)
        if found is None:
            continue
        base, path = found.group(2), found.group(3)
        if name in ("open", "openat", "creat") and name != "creat":
            if not any(flag in args for flag in _WRITE_FLAGS):
                continue
        if not path.startswith("/"):
            path = f"{base or cwd}/{path}"
        paths.add(os.path.normpath(path))
    return paths


def outside(paths: set[str], allowed: list[str]) -> list[str]:
    """outside lists the paths not under any allowed directory or file."""
    return sorted(p for p in paths if not any(p == a or p.startswith(a.rstrip("/") + "/") for a in allowed))
