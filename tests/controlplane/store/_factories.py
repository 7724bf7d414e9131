"""The store tests' builders moved to tests/factories.py; this name stays while branches importing it are merged."""

from tests.factories import bump, node, project

__all__ = ["bump", "node", "project"]
