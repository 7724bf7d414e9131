"""Helpers the tests share (one copy each): a free loopback port, and polling until a condition holds."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port(host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET) -> int:
    """free_port returns a TCP port free on host at this moment (the kernel's pick for port 0)."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, *, every: Callable[[], None] | None = None
) -> float:
    """wait_until polls condition (calling every first, e.g. to send due heartbeats) until it holds; returns
    the monotonic time it held, or fails naming what it waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if every is not None:
            every()
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
