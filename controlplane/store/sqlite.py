"""SqliteStore: the embedded default Store, one SQLite file in WAL mode driven by one worker thread.

Durability: `journal_mode=WAL` + `synchronous=FULL`, so a write is on disk when its transaction
commits, and every call returns only after its commit (a SIGKILL never loses an acknowledged write).

Concurrency: one thread owns the connection and runs every statement, so the event loop never
blocks on SQLite and writes are serialized (each mutator's read-modify-write is atomic). Writes
queued together are group-committed: each runs in its own SAVEPOINT inside one `BEGIN IMMEDIATE`
transaction and one fsync covers them all; a job that raises rolls back to its savepoint only (a job that writes
after its reads and checks, with statements whose partial effect would not matter, needs none: SQLite undoes a failed
statement itself).
`BEGIN IMMEDIATE` also serializes against other processes on the same file (`busy_timeout`).
Mutators run on the worker thread: keep them pure functions of the object they are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from controlplane.api import (
    Event,
    Node,
    NodeHistory,
    PathChange,
    Project,
    ProjectPhase,
    ThroughputSample,
    Transition,
)

from ._kinds import Kind, KindStore, M, history_batches, history_of, prefix_end, require_utc
from .base import AlreadyExists, Lease, NotFound, StoreError

T = TypeVar("T")

#: How long a write waits for another process holding the file's write lock before failing.
BUSY_TIMEOUT_MS: Final = 10_000
#: The most writes one group commit carries; bounds the latency of the first job in a batch.
MAX_BATCH: Final = 512
#: Names per `IN (...)` query: well under SQLite's limit of bound parameters.
_IN_CHUNK: Final = 500
#: An in-memory database for tests: nothing survives close().
MEMORY: Final = ":memory:"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

#: Schema migrations: entry i takes the file from user_version i to i + 1. Append only.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "CREATE TABLE nodes (name TEXT PRIMARY KEY, doc TEXT NOT NULL)",
        "CREATE TABLE projects (name TEXT PRIMARY KEY, phase TEXT NOT NULL, node_ref TEXT, doc TEXT NOT NULL)",
        "CREATE INDEX projects_phase ON projects (phase)",
        "CREATE INDEX projects_node_ref ON projects (node_ref)",
        # Lease times are integer microseconds since the epoch (UTC): exact, and ordered as numbers.
        "CREATE TABLE node_leases ("
        " name TEXT PRIMARY KEY REFERENCES nodes (name) ON DELETE CASCADE,"
        " renewed_at_us INTEGER NOT NULL)",
    ),
    (
        # A Node's revision changes on every write (list_nodes_changed); values come from one counter, so a
        # Node deleted and created again never gets back a revision a cache may still hold.
        "ALTER TABLE nodes ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE node_revision (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)",
        "INSERT INTO node_revision (id, value) VALUES (1, 0)",
        *(
            f"CREATE TRIGGER nodes_revision_{event.split()[0].lower()} AFTER {event} ON nodes BEGIN"
            " UPDATE node_revision SET value = value + 1;"
            " UPDATE nodes SET revision = (SELECT value FROM node_revision) WHERE name = NEW.name; END"
            for event in ("INSERT", "UPDATE OF doc")
        ),
    ),
    (
        # Node history (throughput samples, path changes) beside the Node, so Node documents stay small.
        "CREATE TABLE node_history (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " name TEXT NOT NULL REFERENCES nodes (name) ON DELETE CASCADE, kind TEXT NOT NULL, doc TEXT NOT NULL)",
        "CREATE INDEX node_history_name ON node_history (name, kind, seq)",
    ),
    (
        # Events: bounded by count (append_events trims), kept when their object is deleted, as in Kubernetes.
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, name TEXT NOT NULL,"
        " doc TEXT NOT NULL)",
        "CREATE INDEX events_object ON events (kind, name, seq)",
        # Transitions (availability): bounded by age (prune_transitions keeps each subject's last one).
        "CREATE TABLE transitions (seq INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL,"
        " at_us INTEGER NOT NULL, good INTEGER NOT NULL)",
        "CREATE INDEX transitions_subject ON transitions (subject, at_us)",
    ),
    (
        # The revision is set by the statement that writes the Node (`_NEXT_REVISION`), not by triggers: the
        # AFTER UPDATE trigger wrote every Node row twice, document included.
        "DROP TRIGGER nodes_revision_insert",
        "DROP TRIGGER nodes_revision_update",
    ),
    (
        # The whole lease: its marks (goodbye, rejected facts) reach the leader and survive a restart. Additive: the
        # marks hold only while marks_at_us is the row's renewed_at_us, so a row that a previous release's server
        # wrote or renewed (its time only) reads as unmarked.
        "ALTER TABLE node_leases ADD COLUMN released INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE node_leases ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE node_leases ADD COLUMN facts_at_us INTEGER",
        "ALTER TABLE node_leases ADD COLUMN marks_at_us INTEGER",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)
#: Every write of a Node takes the next value of the one counter as its revision: these two statements, in the
#: write's transaction (a Node deleted and created again never gets back a revision a cache may still hold).
_BUMP_REVISION: Final = "UPDATE node_revision SET value = value + 1"
_NEXT_REVISION: Final = "(SELECT value FROM node_revision)"


@contextmanager
def _sqlite_errors(kind: str = "", name: str = "") -> Iterator[None]:
    """_sqlite_errors is the one place sqlite3 exceptions become store errors."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) and kind:
            raise AlreadyExists(kind, name) from exc
        raise StoreError(f"sqlite: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite: {exc}") from exc


def _micros(value: datetime) -> int:
    return (require_utc(value, "lease time") - _EPOCH) // _MICROSECOND


def _from_micros(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


def _dump(obj: Node | Project | ThroughputSample | PathChange | Event) -> str:
    return obj.to_wire_json()


@dataclass(slots=True, eq=False)
class _Job:
    """_Job is one unit of work for the worker thread, and the future of the event loop that waits for it; fn None
    means stop."""

    fn: Callable[[sqlite3.Connection], Any] | None
    write: bool
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None
    # single: the job reads and checks first and then writes so that a failure leaves nothing that matters (SQLite
    # undoes a failed statement; a Node write's revision bump before it leaves only a gap in the counter), so it
    # runs without a savepoint: two statements fewer on every heartbeat's write.
    single: bool = False


#: An outcome the worker hands back to the event loop: the job, and whether fn returned (the value) or raised.
_Outcome = tuple[_Job, bool, Any]


def _settle(outcomes: list[_Outcome]) -> None:
    """_settle resolves the futures of finished jobs; it runs on their event loop (one call per batch)."""
    for job, ok, value in outcomes:
        future = job.future
        if future is None or future.done():  # its caller is gone (cancelled)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _hand_back(outcomes: list[_Outcome]) -> None:
    """_hand_back passes finished jobs to their event loops: one wake-up per loop and batch, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        loop = outcome[0].loop
        if loop is not None:
            by_loop.setdefault(loop, []).append(outcome)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, settled)


def _wanted(job: _Job) -> bool:
    """_wanted says whether a job's caller still waits (a job cancelled before it ran is not run)."""
    return job.future is None or not job.future.cancelled()


class _Worker:
    """_Worker owns the connection on its own thread and runs jobs in order, group-committing writes."""

    def __init__(self, path: str, connection_class: type[sqlite3.Connection] = sqlite3.Connection) -> None:
        self._path = path
        self._connection_class = connection_class
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"sqlite-store:{path}", daemon=True)
        self._closed = False

    def _job(self, fn: Callable[[sqlite3.Connection], Any] | None, *, write: bool, single: bool = False) -> _Job:
        loop = asyncio.get_running_loop()
        return _Job(fn, write, loop, loop.create_future(), single)

    async def start(self) -> None:
        """start opens and migrates the database on the worker thread; returns when done."""
        opened = self._job(_migrate, write=False)
        self._jobs.put(opened)
        self._thread.start()
        assert opened.future is not None
        await opened.future

    async def call(self, fn: Callable[[sqlite3.Connection], T], *, write: bool, single: bool = False) -> T:
        """call runs fn(connection) on the worker; a write's result is returned only after its commit. single: a
        failure of fn leaves nothing that matters (see _Job), so it needs no savepoint of its own."""
        if self._closed:
            raise StoreError("sqlite: store is closed")
        job = self._job(fn, write=write, single=single)
        self._jobs.put(job)
        assert job.future is not None
        result: T = await job.future
        return result

    async def stop(self) -> None:
        """stop lets queued jobs finish, closes the connection and ends the thread."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_Job(None, write=False))
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        try:
            # isolation_level=None: no implicit transactions; this module issues BEGIN/COMMIT itself.
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=True, factory=self._connection_class
            )
        except sqlite3.Error as exc:
            self._fail_all(StoreError(f"sqlite: cannot open {self._path}: {exc}"))
            return
        try:
            self._loop(conn)
        finally:
            conn.close()

    def _loop(self, conn: sqlite3.Connection) -> None:
        held: deque[_Job] = deque()
        while True:
            job = held.popleft() if held else self._jobs.get()
            if job.fn is None:
                self._fail_all(StoreError("sqlite: store is closed"))
                return
            if not job.write:
                _hand_back([self._run_one(conn, job)] if _wanted(job) else [])
                continue
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    following = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if not following.write or following.fn is None:
                    held.append(following)  # reads and stop wait until this batch has committed
                    break
                batch.append(following)
            _hand_back(self._run_batch(conn, batch))

    @staticmethod
    def _run_one(conn: sqlite3.Connection, job: _Job) -> _Outcome:
        assert job.fn is not None
        try:
            return job, True, job.fn(conn)
        except BaseException as exc:
            return job, False, exc

    @staticmethod
    def _run_batch(conn: sqlite3.Connection, batch: list[_Job]) -> list[_Outcome]:
        outcomes: list[_Outcome] = []
        try:
            with _sqlite_errors():
                conn.execute("BEGIN IMMEDIATE")
                for job in batch:
                    if not _wanted(job):
                        continue
                    assert job.fn is not None
                    if job.single:
                        try:
                            outcomes.append((job, True, job.fn(conn)))
                        except Exception as exc:
                            outcomes.append((job, False, exc))
                        continue
                    conn.execute("SAVEPOINT job")
                    try:
                        outcomes.append((job, True, job.fn(conn)))
                    except Exception as exc:
                        conn.execute("ROLLBACK TO job")
                        outcomes.append((job, False, exc))
                    conn.execute("RELEASE job")
                conn.execute("COMMIT")
        except StoreError as exc:
            # BEGIN, a savepoint or COMMIT failed: nothing of the batch is written, so every job fails.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            return [(job, False, exc) for job in batch]
        return outcomes

    def _fail_all(self, exc: StoreError) -> None:
        failed: list[_Outcome] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job.fn is not None:
                failed.append((job, False, exc))
        _hand_back(failed)


def _migrate(conn: sqlite3.Connection) -> None:
    """_migrate sets the durability pragmas and brings the schema to SCHEMA_VERSION."""
    with _sqlite_errors():
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(f"sqlite: schema version {version} is newer than this program's {SCHEMA_VERSION}")
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class SqliteStore(KindStore):
    """SqliteStore implements Store on one SQLite file (or `:memory:`); open it with `await SqliteStore.open`."""

    def __init__(self, worker: _Worker, path: str) -> None:
        self._worker = worker
        self.path = path

    @classmethod
    async def open(
        cls, path: str | Path, *, connection_class: type[sqlite3.Connection] = sqlite3.Connection
    ) -> SqliteStore:
        """open creates the file if needed and migrates it; raises StoreError, also when its folder does not exist
        (a mistyped path must not start the server on a new, empty store).

        connection_class is the class of the store's one connection (sqlite3.connect's `factory`): a subclass lets
        a test see that connection's own settings, which no other connection shares.
        """
        path = str(path)
        if path != MEMORY and not Path(path).parent.is_dir():
            raise StoreError(f"sqlite: the folder of {path} does not exist (create it first)")
        worker = _Worker(path, connection_class)
        try:
            await worker.start()
        except BaseException:
            await worker.stop()
            raise
        return cls(worker, path)

    # The row operations KindStore builds the Node and Project methods on.

    async def _create(self, kind: Kind[M], obj: M) -> M:
        doc = _dump(obj)
        revision: tuple[str, ...] = ("revision",) if kind.revisioned else ()
        columns = ", ".join(("name", *kind.columns, "doc", *revision))
        marks = ", ".join(["?"] * (len(kind.columns) + 2) + [_NEXT_REVISION] * len(revision))
        sql = f"INSERT INTO {kind.table} ({columns}) VALUES ({marks})"

        def insert(conn: sqlite3.Connection) -> None:
            with _sqlite_errors(kind.name, obj.name):
                if kind.revisioned:
                    conn.execute(_BUMP_REVISION)
                conn.execute(sql, (obj.name, *kind.values(obj), doc))

        await self._worker.call(insert, write=True)
        return kind.load(doc)

    async def _get(self, kind: Kind[M], name: str) -> M:
        def select(conn: sqlite3.Connection) -> str | None:
            with _sqlite_errors(kind.name, name):
                row = conn.execute(f"SELECT doc FROM {kind.table} WHERE name = ?", (name,)).fetchone()
            return None if row is None else str(row[0])

        doc = await self._worker.call(select, write=False)
        if doc is None:
            raise NotFound(kind.name, name)
        return kind.load(doc)

    async def _list_docs(
        self,
        kind: Kind[M],
        *,
        labels: Mapping[str, str] | None,
        phases: Sequence[ProjectPhase] | None = None,
        node_ref: str | None = None,
    ) -> list[str]:
        clauses: list[str] = []
        params: list[str] = []
        for key, value in (labels or {}).items():
            clauses.append("EXISTS (SELECT 1 FROM json_each(doc, '$.metadata.labels') WHERE key = ? AND value = ?)")
            params += [key, value]
        if phases is not None:
            clauses.append(f"phase IN ({', '.join('?' * len(phases))})")
            params += [ProjectPhase(phase).value for phase in phases]
        if node_ref is not None:
            clauses.append("node_ref = ?")
            params.append(node_ref)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT doc FROM {kind.table}{where} ORDER BY name"

        def select(conn: sqlite3.Connection) -> list[str]:
            with _sqlite_errors():
                return [str(row[0]) for row in conn.execute(sql, params)]

        return await self._worker.call(select, write=False)

    async def _revisions(self, kind: Kind[M]) -> dict[str, int]:
        def select(conn: sqlite3.Connection) -> dict[str, int]:
            with _sqlite_errors():
                return dict(conn.execute(f"SELECT name, revision FROM {kind.table}").fetchall())

        return await self._worker.call(select, write=False)

    async def _get_revisioned(self, kind: Kind[M], names: Sequence[str] | None) -> list[tuple[str, int]]:
        def select(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            with _sqlite_errors():
                if names is None:
                    return conn.execute(f"SELECT doc, revision FROM {kind.table}").fetchall()
                rows: list[tuple[str, int]] = []
                for start in range(0, len(names), _IN_CHUNK):
                    chunk = names[start : start + _IN_CHUNK]
                    sql = f"SELECT doc, revision FROM {kind.table} WHERE name IN ({', '.join('?' * len(chunk))})"
                    rows += conn.execute(sql, chunk).fetchall()
                return rows

        return await self._worker.call(select, write=False)

    async def _update(self, kind: Kind[M], name: str, mutate: Callable[[M], M]) -> M:
        assignments = ", ".join(f"{column} = ?" for column in (*kind.columns, "doc"))
        if kind.revisioned:
            assignments += f", revision = {_NEXT_REVISION}"
        sql = f"UPDATE {kind.table} SET {assignments} WHERE name = ?"

        def read_modify_write(conn: sqlite3.Connection) -> M:
            with _sqlite_errors(kind.name, name):
                row = conn.execute(f"SELECT doc FROM {kind.table} WHERE name = ?", (name,)).fetchone()
                if row is None:
                    raise NotFound(kind.name, name)
                obj: M = kind.check_mutated(name, mutate(kind.load(str(row[0]))))
                if kind.revisioned:
                    conn.execute(_BUMP_REVISION)
                conn.execute(sql, (*kind.values(obj), _dump(obj), name))
            return obj

        # The mutated object is returned as it is: decoding the document just written would only rebuild it.
        return await self._worker.call(read_modify_write, write=True, single=True)

    async def _delete(self, kind: Kind[M], name: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            with _sqlite_errors(kind.name, name):
                if conn.execute(f"DELETE FROM {kind.table} WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFound(kind.name, name)

        await self._worker.call(delete, write=True)

    # Leases, leadership and lifecycle.

    async def save_leases(self, leases: Mapping[str, Lease]) -> None:
        """save_leases persists name → lease, marks included, in one transaction; unknown names are skipped.

        A lease never moves backwards: one older than the stored one (renewed_at) is ignored, marks and all.
        """
        rows = [
            (
                name,
                _micros(lease.renewed_at),
                _micros(lease.renewed_at),
                lease.released,
                lease.rejected,
                None if lease.facts_at is None else _micros(lease.facts_at),
                name,
            )
            for name, lease in leases.items()
        ]
        if not rows:
            return

        def upsert(conn: sqlite3.Connection) -> None:
            with _sqlite_errors():
                conn.executemany(
                    "INSERT INTO node_leases (name, renewed_at_us, marks_at_us, released, rejected, facts_at_us)"
                    " SELECT ?, ?, ?, ?, ?, ?"
                    " WHERE EXISTS (SELECT 1 FROM nodes WHERE name = ?)"
                    " ON CONFLICT (name) DO UPDATE SET renewed_at_us = excluded.renewed_at_us,"
                    " marks_at_us = excluded.marks_at_us, released = excluded.released, rejected = excluded.rejected,"
                    " facts_at_us = excluded.facts_at_us"
                    " WHERE excluded.renewed_at_us > node_leases.renewed_at_us",
                    rows,
                )

        await self._worker.call(upsert, write=True)

    async def load_leases(self) -> dict[str, Lease]:
        """load_leases returns every persisted node lease, marks included (those written with its renewal), in UTC."""

        def select(conn: sqlite3.Connection) -> list[tuple[str, int, int, int, int | None]]:
            with _sqlite_errors():
                return conn.execute(
                    "SELECT name, renewed_at_us, marked AND released, marked AND rejected, CASE WHEN marked THEN"
                    " facts_at_us END FROM (SELECT *, marks_at_us IS renewed_at_us AS marked FROM node_leases)"
                ).fetchall()

        return {
            name: Lease(
                _from_micros(us),
                released=bool(released),
                rejected=bool(rejected),
                facts_at=None if facts_us is None else _from_micros(facts_us),
            )
            for name, us, released, rejected, facts_us in await self._worker.call(select, write=False)
        }

    # History.

    async def append_history(
        self,
        name: str,
        *,
        throughput: Sequence[ThroughputSample] = (),
        paths: Sequence[PathChange] = (),
        limit: int,
    ) -> None:
        """append_history adds entries and trims each list to its newest limit, in one transaction."""
        batches = [(kind, [_dump(entry) for entry in entries]) for kind, entries in history_batches(throughput, paths)]
        if not any(docs for _, docs in batches):
            return

        def append(conn: sqlite3.Connection) -> None:
            with _sqlite_errors():
                if conn.execute("SELECT 1 FROM nodes WHERE name = ?", (name,)).fetchone() is None:
                    return
                for kind, docs in batches:
                    if not docs:
                        continue
                    conn.executemany(
                        "INSERT INTO node_history (name, kind, doc) VALUES (?, ?, ?)",
                        [(name, kind, doc) for doc in docs],
                    )
                    conn.execute(
                        "DELETE FROM node_history WHERE name = ? AND kind = ? AND seq <= (SELECT seq FROM node_history"
                        " WHERE name = ? AND kind = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                        (name, kind, name, kind, limit),
                    )

        await self._worker.call(append, write=True)

    async def get_history(self, name: str) -> NodeHistory:
        """get_history returns the kept entries of the Node, oldest first; raises NotFound."""

        def select(conn: sqlite3.Connection) -> list[tuple[str, str]] | None:
            with _sqlite_errors():
                if conn.execute("SELECT 1 FROM nodes WHERE name = ?", (name,)).fetchone() is None:
                    return None
                return conn.execute(
                    "SELECT kind, doc FROM node_history WHERE name = ? ORDER BY seq", (name,)
                ).fetchall()

        rows = await self._worker.call(select, write=False)
        if rows is None:
            raise NotFound("Node", name)
        return history_of(name, rows)

    async def count_projects(self) -> dict[str, int]:
        """count_projects returns phase → number of Projects, from the indexed phase column."""

        def select(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            with _sqlite_errors():
                return conn.execute("SELECT phase, COUNT(*) FROM projects GROUP BY phase").fetchall()

        return dict(await self._worker.call(select, write=False))

    # Events and transitions.

    async def append_events(self, events: Sequence[Event], *, limit: int) -> None:
        """append_events stores events and trims all events to the newest limit, in one transaction."""
        rows = [(e.involved_object.kind, e.involved_object.name, _dump(e)) for e in events]
        if not rows:
            return

        def append(conn: sqlite3.Connection) -> None:
            with _sqlite_errors():
                conn.executemany("INSERT INTO events (kind, name, doc) VALUES (?, ?, ?)", rows)
                conn.execute(
                    "DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (limit,),
                )

        await self._worker.call(append, write=True)

    async def list_events(
        self, *, kind: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """list_events returns the newest limit (None: all) kept events about kind/name, oldest first."""
        where = " AND ".join(f"{column} = ?" for column, value in (("kind", kind), ("name", name)) if value is not None)
        params: list[Any] = [value for value in (kind, name) if value is not None]

        def select(conn: sqlite3.Connection) -> list[tuple[str]]:
            with _sqlite_errors():
                return conn.execute(
                    f"SELECT doc FROM events {'WHERE ' + where if where else ''} ORDER BY seq DESC LIMIT ?",
                    [*params, -1 if limit is None else limit],
                ).fetchall()

        return [Event.model_validate_json(doc) for (doc,) in reversed(await self._worker.call(select, write=False))]

    async def events_after(
        self, cursor: int | None, *, kind: str | None = None, name: str | None = None
    ) -> tuple[list[Event], int]:
        """events_after is the change feed of events; the cursor is the last seq read (one writer thread commits
        in seq order)."""
        filters = [(column, value) for column, value in (("kind", kind), ("name", name)) if value is not None]
        where = "".join(f" AND {column} = ?" for column, _ in filters)

        def select(conn: sqlite3.Connection) -> tuple[list[tuple[str]], int]:
            with _sqlite_errors():
                (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
                if cursor is None:
                    return [], int(last)
                rows = conn.execute(
                    f"SELECT doc FROM events WHERE seq > ? AND seq <= ?{where} ORDER BY seq",
                    [cursor, last, *(value for _, value in filters)],
                ).fetchall()
                return rows, max(int(last), cursor)

        rows, last = await self._worker.call(select, write=False)
        return [Event.model_validate_json(doc) for (doc,) in rows], last

    async def append_transitions(self, transitions: Sequence[Transition]) -> None:
        """append_transitions stores transitions."""
        rows = [(t.subject, _micros(t.time), int(t.good)) for t in transitions if t.time is not None]
        if not rows:
            return

        def append(conn: sqlite3.Connection) -> None:
            with _sqlite_errors():
                conn.executemany("INSERT INTO transitions (subject, at_us, good) VALUES (?, ?, ?)", rows)

        await self._worker.call(append, write=True)

    async def list_transitions(self, prefix: str, since: datetime) -> list[Transition]:
        """list_transitions returns each matching subject's transitions since `since` and its last one before."""
        low, high, at = prefix, prefix_end(prefix), _micros(since)

        def select(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
            with _sqlite_errors():
                return conn.execute(
                    "SELECT subject, at_us, good FROM transitions WHERE subject >= ? AND subject < ? AND at_us >= ?"
                    " UNION ALL SELECT t.subject, t.at_us, t.good FROM transitions t JOIN"
                    " (SELECT MAX(seq) AS seq FROM transitions WHERE subject >= ? AND subject < ? AND at_us < ?"
                    " GROUP BY subject) last ON t.seq = last.seq ORDER BY 1, 2",
                    (low, high, at, low, high, at),
                ).fetchall()

        rows = await self._worker.call(select, write=False)
        return [Transition(subject=subject, time=_from_micros(us), good=bool(good)) for subject, us, good in rows]

    async def prune_transitions(self, before: datetime) -> int:
        """prune_transitions deletes transitions older than before except each subject's last one."""
        at = _micros(before)

        def delete(conn: sqlite3.Connection) -> int:
            with _sqlite_errors():
                return conn.execute(
                    "DELETE FROM transitions WHERE at_us < ? AND seq NOT IN"
                    " (SELECT MAX(seq) FROM transitions WHERE at_us < ? GROUP BY subject)",
                    (at, at),
                ).rowcount

        deleted: int = await self._worker.call(delete, write=True)
        return deleted

    async def try_acquire_leadership(self, holder: str, ttl_s: float, now: datetime) -> bool:
        """try_acquire_leadership always succeeds: one SQLite file has one server, which is the leader."""
        require_utc(now, "now")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        return True

    async def close(self) -> None:
        """close finishes queued work and closes the file; the store is unusable afterwards."""
        await self._worker.stop()
