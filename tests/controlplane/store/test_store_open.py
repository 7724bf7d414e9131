"""open_store: URL forms, schema migration at open, durability settings, reopen and close."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest

from controlplane.store import (
    ACCEPTED_FORMS,
    PostgresStore,
    SqliteStore,
    StoreError,
    default_store_url,
    open_store,
    postgres,
    sqlite,
)
from tests.factories import node, project

from .conftest import StoreUrlFactory


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mysql://db/cara",
        "sqlite://relative.db",
        "sqlite:///",
        "sqlite:///tmp/cara.db?mode=ro",
        "/var/lib/cara/cara.db",
        "postgresql://cara@[::1/cara",
        "postgresql://cara@localhost/cara?bogus=1",
    ],
)
async def test_a_bad_url_names_itself_and_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError) as error:
        await open_store(url)
    assert repr(url) in str(error.value)
    assert ACCEPTED_FORMS in str(error.value)


async def test_a_bad_url_never_shows_its_password() -> None:
    with pytest.raises(ValueError) as error:
        await open_store("postgres-ql://cara:s3cret@db.example/cara")
    assert "s3cret" not in str(error.value)
    assert "postgres-ql://cara:***@db.example/cara" in str(error.value)


async def test_an_unreachable_postgresql_is_a_store_error() -> None:
    # Port 1 on loopback: nothing listens, so the connection is refused at once.
    with pytest.raises(StoreError, match="postgresql"):
        await open_store("postgresql://cara:x@127.0.0.1:1/cara")


async def test_memory_and_default_file_urls(tmp_path: Path) -> None:
    memory = await open_store("sqlite:///:memory:")
    try:
        assert isinstance(memory, SqliteStore)
        await memory.create_node(node("n"))
        assert [n.name for n in await memory.list_nodes()] == ["n"]
    finally:
        await memory.close()
    url = default_store_url(tmp_path / "data")
    assert url == f"sqlite://{tmp_path}/data/cara.db"
    (tmp_path / "data").mkdir()  # cara-server makes its own data directory; the store makes no folder
    store = await open_store(url)
    await store.close()
    assert (tmp_path / "data" / "cara.db").is_file()


async def test_a_store_url_whose_folder_does_not_exist_is_an_error(tmp_path: Path) -> None:
    """A mistyped --store must not start the server on a new, empty store in a folder it made up."""
    with pytest.raises(StoreError, match="does not exist"):
        await open_store(f"sqlite://{tmp_path}/no/such/dir/cara.db")
    assert not (tmp_path / "no").exists()


async def test_an_unusable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match="sqlite"):
        await open_store(f"sqlite://{tmp_path}")  # a directory, not a database file
    with pytest.raises(StoreError, match="does not exist"):
        await open_store(f"sqlite://{tmp_path}/file/cara.db")
    (tmp_path / "garbage.db").write_bytes(b"this is not an SQLite database, not at all" * 100)
    with pytest.raises(StoreError, match="sqlite"):
        await open_store(f"sqlite://{tmp_path}/garbage.db")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_sqlite_runs_in_wal_mode_with_full_sync(store_url: StoreUrlFactory) -> None:
    """synchronous and foreign_keys hold per connection: they are read on the store's own, as it closes."""
    url = store_url()
    seen: dict[str, int] = {}

    class Inspected(sqlite3.Connection):
        def close(self) -> None:
            for pragma in ("synchronous", "foreign_keys"):
                seen[pragma] = self.execute(f"PRAGMA {pragma}").fetchone()[0]
            super().close()

    store = await SqliteStore.open(url.removeprefix("sqlite://"), connection_class=Inspected)
    await store.close()
    assert seen == {"synchronous": 2, "foreign_keys": 1}  # synchronous FULL: the WAL is fsynced at every commit
    with sqlite3.connect(url.removeprefix("sqlite://")) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == sqlite.SCHEMA_VERSION


async def test_reopen_keeps_everything_and_migrates_once(store_url: StoreUrlFactory) -> None:
    url = store_url()
    first = await open_store(url)
    await first.create_node(node("edge-1"))
    await first.create_project(project("shop"))
    await first.close()
    # Several replicas opening at once: the migration runs once and none of them fails.
    reopened = await asyncio.gather(*(open_store(url) for _ in range(3)))
    try:
        for store in reopened:
            assert [n.name for n in await store.list_nodes()] == ["edge-1"]
            assert [p.name for p in await store.list_projects()] == ["shop"]
    finally:
        for store in reopened:
            await store.close()


async def test_a_newer_schema_is_refused(store_url: StoreUrlFactory) -> None:
    url = store_url()
    store = await open_store(url)
    await store.close()
    if isinstance(store, PostgresStore):
        with psycopg.connect(url, autocommit=True) as raw:
            raw.execute("UPDATE schema_version SET version = 99")
        want = f"schema version 99 is newer than this program's {postgres.SCHEMA_VERSION}"
    else:
        with sqlite3.connect(url.removeprefix("sqlite://")) as raw:
            raw.execute("PRAGMA user_version = 99")
        want = f"schema version 99 is newer than this program's {sqlite.SCHEMA_VERSION}"
    with pytest.raises(StoreError, match=want):
        await open_store(url)


async def test_a_closed_store_refuses_work(store_url: StoreUrlFactory) -> None:
    store = await open_store(store_url())
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError):
        await store.get_node("edge-1")
