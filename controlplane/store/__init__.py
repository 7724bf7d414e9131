"""Persistence: `open_store(url)` picks the SQLite or PostgreSQL backend of the Store protocol by URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .base import AlreadyExists, Conflict, NodeChanges, NodeMutator, NotFound, ProjectMutator, Store, StoreError
from .leases import Lease, LeaseTable
from .sqlite import SqliteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore

#: The file name of the default SQLite store inside the server's data directory.
DEFAULT_FILE: Final = "cara.db"

ACCEPTED_FORMS: Final = (
    "sqlite:///ABSOLUTE/PATH.db, sqlite:///:memory:, postgresql://[USER[:PASSWORD]@]HOST[:PORT]/DB[?PARAMS]"
)


def default_store_url(data_dir: str | Path) -> str:
    """default_store_url is the SQLite file in the server's data directory, used when --store is not given."""
    return f"sqlite://{Path(data_dir).absolute() / DEFAULT_FILE}"


def _redact(url: str) -> str:
    """_redact hides the password of a URL so that error messages can show the rest."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:)[^/@]*@", r"\1***@", url)


async def open_store(url: str) -> Store:
    """open_store opens (creating and migrating as needed) the store that url names.

    Raises ValueError naming the URL and the accepted forms when the URL is not one of them, and
    StoreError when the database cannot be opened.
    """
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path == "/:memory:":
            return await SqliteStore.open(":memory:")
        if path.startswith("/") and "?" not in path and "#" not in path and path.rstrip("/") != "":
            return await SqliteStore.open("/" + path.lstrip("/"))
    elif url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # imported on use: psycopg costs ~10 MiB a SQLite server never needs

        try:
            return await PostgresStore.open(url)
        except ValueError as exc:
            raise ValueError(f"bad store URL {_redact(url)!r}: {exc}; accepted forms: {ACCEPTED_FORMS}") from exc
    raise ValueError(f"bad store URL {_redact(url)!r}; accepted forms: {ACCEPTED_FORMS}")


def __getattr__(name: str) -> Any:
    """__getattr__ imports PostgresStore (and so psycopg) only when someone asks for it."""
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_FILE",
    "AlreadyExists",
    "Conflict",
    "Lease",
    "LeaseTable",
    "NodeChanges",
    "NodeMutator",
    "NotFound",
    "PostgresStore",
    "ProjectMutator",
    "SqliteStore",
    "Store",
    "StoreError",
    "default_store_url",
    "open_store",
]
