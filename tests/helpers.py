"""Helpers the tests share (one copy each): a free loopback port, and polling until a condition holds (the lab
library's `wait_until`, which the lab tests and bench/ use too)."""

from __future__ import annotations

import socket

from lablib.harness import wait_until

__all__ = ["free_port", "wait_until"]


def free_port(host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET) -> int:
    """free_port returns a TCP port free on host at this moment (the kernel's pick for port 0)."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
