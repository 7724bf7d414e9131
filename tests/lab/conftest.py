"""The session-scoped `lab` fixture: a real headscale + tailscaled tailnet in namespaces, shared by all lab tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from lablib import client
from lablib.client import LAB_SCRIPT, Lab, LabCommandError
from lablib.plan import DEFAULT_EDGES

__all__ = ["DEFAULT_EDGES", "LAB_SCRIPT", "Lab", "LabCommandError", "using_lab"]


@contextmanager
def using_lab(name: str, *, edges: int = DEFAULT_EDGES) -> Iterator[Lab]:
    """using_lab is lablib.client.using_lab; without root it fails the test with what to do."""
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (network namespaces): run pytest as root, or deselect with -m 'not lab'")
    with client.using_lab(name, edges=edges) as lab:
        yield lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The shared lab (`$CARA_LAB`, default `cara`) with 3 edges: hosts control, operator, edge1..edge3."""
    with using_lab(os.environ.get("CARA_LAB", "cara")) as running:
        yield running
