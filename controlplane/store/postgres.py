"""PostgresStore: the scale-out Store on PostgreSQL (psycopg 3, a connection pool, JSONB documents).

Several cara-server replicas may share one database. Each update runs `SELECT ... FOR UPDATE`,
the mutator and `UPDATE` in one transaction, so concurrent updates of one object queue on its
row lock and never lose each other's changes; other rows are untouched. A call returns after
COMMIT, which PostgreSQL makes durable (`synchronous_commit=on`, its default). The schema is
migrated at open under an advisory lock, so replicas starting together migrate once. Mutators
run on the event loop between awaits: keep them pure functions of the object they are given.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

import psycopg
import psycopg.conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from controlplane.api import Event, NodeHistory, PathChange, ProjectPhase, ThroughputSample, Transition

from ._kinds import Kind, KindStore, M, history_batches, history_of, prefix_end, require_utc
from .base import AlreadyExists, Lease, NotFound, StoreError

#: pg_advisory_xact_lock key taken while migrating ("cara" in ASCII).
MIGRATION_LOCK: Final = 0x63617261
#: pg_advisory_xact_lock key append_events holds while it inserts ("evts" in ASCII).
EVENTS_LOCK: Final = 0x65767473
#: Seconds to wait for a new connection when the URL does not say (libpq waits forever otherwise).
CONNECT_TIMEOUT_S: Final = 10
#: Compare-and-set attempts of an update before it locks the row instead (lost only to a concurrent writer).
OPTIMISTIC_TRIES: Final = 3
#: The most updates one batch carries (one read and one write for all of them).
MAX_BATCH: Final = 256
#: Batches of one kind at the database at once: while one waits for its commit, the next is read and written.
MAX_BATCHES_IN_FLIGHT: Final = 4

#: The most appended rows (events, transitions, history entries) one transaction carries.
MAX_APPEND_BATCH: Final = 1024

#: Schema migrations: entry i takes the database from schema_version i to i + 1. Append only.
#: Names are COLLATE "C" so that "ordered by name" is the same byte order as in SQLite and Python.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        'CREATE TABLE nodes (name text COLLATE "C" PRIMARY KEY, doc jsonb NOT NULL)',
        "CREATE INDEX nodes_labels ON nodes USING gin ((doc -> 'metadata' -> 'labels'))",
        'CREATE TABLE projects (name text COLLATE "C" PRIMARY KEY, phase text NOT NULL, node_ref text,'
        " doc jsonb NOT NULL)",
        "CREATE INDEX projects_phase ON projects (phase)",
        "CREATE INDEX projects_node_ref ON projects (node_ref)",
        "CREATE INDEX projects_labels ON projects USING gin ((doc -> 'metadata' -> 'labels'))",
        'CREATE TABLE node_leases (name text COLLATE "C" PRIMARY KEY REFERENCES nodes (name) ON DELETE CASCADE,'
        " renewed_at timestamptz NOT NULL)",
        # One row: the replica that runs the controllers, until expires_at (its own clock) passes.
        "CREATE TABLE leader_lease (id smallint PRIMARY KEY CHECK (id = 1), holder text NOT NULL,"
        " acquired_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)",
    ),
    (
        # A Node's revision changes on every write (list_nodes_changed); values come from one sequence, so a
        # Node deleted and created again never gets back a revision a cache may still hold.
        "CREATE SEQUENCE node_revision",
        "ALTER TABLE nodes ADD COLUMN revision bigint NOT NULL DEFAULT 0",
        "CREATE FUNCTION nodes_bump_revision() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN NEW.revision := nextval('node_revision'); RETURN NEW; END $$",
        "CREATE TRIGGER nodes_revision BEFORE INSERT OR UPDATE OF doc ON nodes"
        " FOR EACH ROW EXECUTE FUNCTION nodes_bump_revision()",
    ),
    (
        # Node history (throughput samples, path changes) beside the Node, so Node documents stay small.
        "CREATE TABLE node_history (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        ' name text COLLATE "C" NOT NULL REFERENCES nodes (name) ON DELETE CASCADE, kind text NOT NULL,'
        " doc jsonb NOT NULL)",
        "CREATE INDEX node_history_name ON node_history (name, kind, seq)",
    ),
    (
        # Events: bounded by count (append_events trims), kept when their object is deleted, as in Kubernetes.
        "CREATE TABLE events (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL,"
        ' name text COLLATE "C" NOT NULL, doc jsonb NOT NULL)',
        "CREATE INDEX events_object ON events (kind, name, seq)",
        # Transitions (availability): bounded by age (prune_transitions keeps each subject's last one).
        "CREATE TABLE transitions (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        ' subject text COLLATE "C" NOT NULL, at timestamptz NOT NULL, good boolean NOT NULL)',
        "CREATE INDEX transitions_subject ON transitions (subject, at)",
    ),
    (
        # The whole lease: its marks (goodbye, rejected facts) reach the leader and survive a restart. Additive: the
        # marks hold only while marks_at is the row's renewed_at, so a row that a replica still on the previous
        # release wrote or renewed (its time only) reads as unmarked.
        "ALTER TABLE node_leases ADD COLUMN released boolean NOT NULL DEFAULT false,"
        " ADD COLUMN rejected boolean NOT NULL DEFAULT false, ADD COLUMN facts_at timestamptz,"
        " ADD COLUMN marks_at timestamptz",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


@contextmanager
def _pg_errors(kind: str = "", name: str = "") -> Iterator[None]:
    """_pg_errors is the one place psycopg exceptions become store errors."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        if not kind:
            raise StoreError(f"postgresql: {exc}") from exc
        raise AlreadyExists(kind, name) from exc
    except PoolTimeout as exc:
        raise StoreError(f"postgresql: no database connection available: {exc}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"postgresql: {exc}") from exc


def _conninfo(url: str) -> str:
    """_conninfo validates url and adds a connect timeout unless it has one; raises ValueError."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"invalid PostgreSQL URL: {exc}") from exc
    if "connect_timeout" in params:
        return url
    return psycopg.conninfo.make_conninfo(url, connect_timeout=CONNECT_TIMEOUT_S)


async def _migrate(conninfo: str) -> None:
    """_migrate creates or upgrades the schema to SCHEMA_VERSION, once even when replicas race."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        if row is None:
            await conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(f"postgresql: schema version {version} is newer than this program's {SCHEMA_VERSION}")
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                await conn.execute(statement)
        await conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))


@dataclass(slots=True, eq=False)
class _Queued(Generic[M]):
    """_Queued is one update waiting for its batch: the object's name, its mutator and the caller's future."""

    name: str
    mutate: Callable[[M], M]
    future: asyncio.Future[M]


class _UpdateBatch(Generic[M]):
    """_UpdateBatch applies one kind's updates in batches: the updates queued while the previous batch was at the
    database go together, as one `SELECT ... WHERE name = ANY(...)`, each mutator, and one
    `UPDATE ... FROM unnest(...)` that writes each row only while its xmin is still the one read (compare and
    set). One statement is one transaction, so the batch costs one commit. Up to MAX_BATCHES_IN_FLIGHT batches
    are at the database at once, never two with the same name. An update whose row another writer changed in
    between, or whose batch the database ended as a deadlock (replicas writing the same rows), is applied alone
    (`_update_one`). A lone update costs what it did unbatched: one read and one write."""

    def __init__(self, kind: Kind[M], pool: AsyncConnectionPool) -> None:
        self._kind: Kind[M] = kind
        self._pool = pool
        self._queue: deque[_Queued[M]] = deque()
        # Drainers: the tasks applying batches (at most MAX_BATCHES_IN_FLIGHT); in flight: the names they write.
        self._drainers: set[asyncio.Task[None]] = set()
        self._in_flight: set[str] = set()
        self._read = f"SELECT name, doc::text, xmin::text FROM {kind.table} WHERE name = ANY(%b::text[])"
        columns = ", ".join(kind.columns)
        arrays = ", ".join(["%b::text[]"] * (len(kind.columns) + 3))  # binary: no escaping of each document
        assignments = "".join(f"{column} = v.{column}, " for column in kind.columns)
        self._write = (
            f"UPDATE {kind.table} AS t SET {assignments}doc = v.doc::jsonb"
            f" FROM unnest({arrays}) AS v (name, xmin, {columns + ', ' if columns else ''}doc)"
            " WHERE t.name = v.name AND t.xmin = v.xmin::xid RETURNING t.name"
        )

    async def submit(self, name: str, mutate: Callable[[M], M]) -> M:
        """submit queues the update and returns the object as stored; raises what the mutator raised, NotFound
        or StoreError."""
        future: asyncio.Future[M] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(name, mutate, future))
        if len(self._drainers) < MAX_BATCHES_IN_FLIGHT:
            drainer = asyncio.create_task(self._drain(), name=f"cara-store:{self._kind.table}-updates")
            self._drainers.add(drainer)
            drainer.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                self._in_flight.update(job.name for job in batch)
                try:
                    await self._apply(batch)
                finally:
                    self._in_flight.difference_update(job.name for job in batch)
        except BaseException as exc:  # cancelled with the loop: nobody waits in vain
            for job in self._queue:
                _settle(job.future, StoreError(f"postgresql: update not applied: {exc!r}"))
            self._queue.clear()
            raise

    def _take(self) -> list[_Queued[M]]:
        """_take is the next batch: queued updates of distinct names, in order, none of a name another batch is
        writing; an update of such a name waits for a later batch (it must read what the first one wrote)."""
        taken: dict[str, _Queued[M]] = {}
        later: list[_Queued[M]] = []
        while self._queue and len(taken) < MAX_BATCH:
            job = self._queue.popleft()
            if job.future.done():  # its caller is gone (cancelled)
                continue
            if job.name in taken or job.name in self._in_flight:
                later.append(job)
            else:
                taken[job.name] = job
        self._queue.extendleft(reversed(later))
        return list(taken.values())

    async def _apply(self, batch: list[_Queued[M]]) -> None:
        kind: Kind[M] = self._kind
        try:
            with _pg_errors():
                async with self._pool.connection() as conn:
                    cur = await conn.execute(self._read, ([job.name for job in batch],))
                    rows: dict[str, tuple[str, str]] = {name: (doc, xmin) for name, doc, xmin in await cur.fetchall()}
                    mutated: list[tuple[_Queued[M], M]] = []
                    arrays: list[list[Any]] = [[] for _ in range(len(kind.columns) + 3)]
                    for job in batch:
                        row = rows.get(job.name)
                        try:
                            obj: M = self._mutated(job, row)
                        except Exception as exc:  # that update's own failure: nothing of it is written
                            _settle(job.future, exc)
                            continue
                        assert row is not None
                        mutated.append((job, obj))
                        row_values = (job.name, row[1], *kind.values(obj), obj.to_wire_json())
                        for array, value in zip(arrays, row_values, strict=True):
                            array.append(value)
                    if mutated:
                        await self._write_all(conn, mutated, arrays)
        except Exception as exc:  # the connection or a statement failed: what is not settled failed with it
            for job in batch:
                _settle(job.future, exc)

    def _mutated(self, job: _Queued[M], row: tuple[str, str] | None) -> M:
        if row is None:
            raise NotFound(self._kind.name, job.name)
        return self._kind.check_mutated(job.name, job.mutate(self._kind.load(row[0])))

    async def _write_all(
        self, conn: psycopg.AsyncConnection[Any], mutated: list[tuple[_Queued[M], M]], arrays: list[list[Any]]
    ) -> None:
        """_write_all writes the mutated objects in one statement, then each one that lost its race alone."""
        try:
            cur = await conn.execute(self._write, arrays)
            written = {str(name) for (name,) in await cur.fetchall()}
        except psycopg.errors.DeadlockDetected:
            written = set()
        for job, obj in mutated:
            if job.name in written:
                _settle(job.future, obj)
                continue
            try:  # another writer came between the read and the write: alone, from a fresh read
                _settle(job.future, await _update_one(conn, self._kind, job.name, job.mutate))
            except psycopg.Error as exc:
                _settle(job.future, StoreError(f"postgresql: {exc}"))
            except Exception as exc:  # NotFound, or what the mutator raised
                _settle(job.future, exc)


R = TypeVar("R")


class _AppendBatch(Generic[R]):
    """_AppendBatch writes appends (events, transitions, history entries) in batches: the rows queued while the
    previous batch was at the database go together, in one transaction by one drainer, so a burst of writes (a
    fleet starting, each Node turning Ready) costs a commit per batch, not one per write; events are appended under
    one lock anyway. A lone append costs what it did unbatched. Every caller of a failed batch gets its StoreError."""

    def __init__(
        self, pool: AsyncConnectionPool, write: Callable[[psycopg.AsyncConnection[Any], list[R]], Awaitable[None]]
    ) -> None:
        self._pool, self._write = pool, write
        self._queue: deque[tuple[list[R], asyncio.Future[None]]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, rows: list[R]) -> None:
        """submit queues rows and returns once they are committed; raises StoreError."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name="cara-store:appends")
        await future

    async def _drain(self) -> None:
        batch: list[tuple[list[R], asyncio.Future[None]]] = []
        try:
            while self._queue:
                batch, size = [], 0
                while self._queue and (not batch or size + len(self._queue[0][0]) <= MAX_APPEND_BATCH):
                    rows, future = self._queue.popleft()
                    if not future.done():  # else its caller is gone (cancelled)
                        batch.append((rows, future))
                        size += len(rows)
                outcome: StoreError | None = None
                try:
                    with _pg_errors():
                        async with self._pool.connection() as conn, conn.transaction():
                            await self._write(conn, [row for rows, _ in batch for row in rows])
                except StoreError as exc:
                    outcome = exc
                for _, future in batch:
                    _settle(future, outcome)
        except BaseException as exc:  # cancelled with the loop: nobody waits in vain
            for _, future in [*batch, *self._queue]:
                _settle(future, StoreError(f"postgresql: append not written: {exc!r}"))
            self._queue.clear()
            raise
        finally:
            self._drainer = None  # no await since the queue was seen empty: a later submit starts a new drainer


#: An event to append: its object's kind and name, the document, and how many events to keep.
_EventRow = tuple[str, str, Jsonb, int]
#: A history entry to append: the Node's name, the entry's kind, its document, and how many of that kind to keep.
_HistoryRow = tuple[str, str, Jsonb, int]
#: A transition to append: subject, time, good.
_TransitionRow = tuple[str, datetime, bool]


async def _insert_events(conn: psycopg.AsyncConnection[Any], rows: list[_EventRow]) -> None:
    """_insert_events appends events in their order, then trims all events to the newest limit (the smallest asked):
    those whose seq is within limit of the last (counting back limit rows instead read that many index entries)."""
    # One appender at a time, across replicas: seqs then commit in their order (events_after's rule).
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
    await conn.execute(
        "INSERT INTO events (kind, name, doc) SELECT k, n, d FROM unnest(%s::text[], %s::text[],"
        " %s::jsonb[]) WITH ORDINALITY AS t (k, n, d, i) ORDER BY i",
        ([kind for kind, _, _, _ in rows], [name for _, name, _, _ in rows], [doc for _, _, doc, _ in rows]),
    )
    limit = min(limit for _, _, _, limit in rows)
    await conn.execute("DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - %s", (limit,))


async def _insert_history(conn: psycopg.AsyncConnection[Any], rows: list[_HistoryRow]) -> None:
    """_insert_history appends history entries in their order, those of Nodes that still exist (each one's row
    held with FOR KEY SHARE, which a delete waits for and an update does not), then trims each Node's list of each
    kind it was given to the newest limit."""
    await conn.execute(
        "INSERT INTO node_history (name, kind, doc) SELECT t.n, t.k, t.d FROM unnest(%s::text[], %s::text[],"
        " %s::jsonb[]) WITH ORDINALITY AS t (n, k, d, i) JOIN nodes ON nodes.name = t.n ORDER BY t.i"
        " FOR KEY SHARE OF nodes",
        ([name for name, _, _, _ in rows], [kind for _, kind, _, _ in rows], [doc for _, _, doc, _ in rows]),
    )
    lists = sorted({(name, kind) for name, kind, _, _ in rows})
    await conn.execute(
        "DELETE FROM node_history h USING unnest(%s::text[], %s::text[]) AS t (n, k)"
        " WHERE h.name = t.n AND h.kind = t.k AND h.seq <= (SELECT seq FROM node_history"
        " WHERE name = t.n AND kind = t.k ORDER BY seq DESC LIMIT 1 OFFSET %s)",
        ([name for name, _ in lists], [kind for _, kind in lists], min(limit for _, _, _, limit in rows)),
    )


async def _insert_transitions(conn: psycopg.AsyncConnection[Any], rows: list[_TransitionRow]) -> None:
    """_insert_transitions appends transitions in one statement."""
    await conn.execute(
        "INSERT INTO transitions (subject, at, good) SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::bool[])",
        ([subject for subject, _, _ in rows], [at for _, at, _ in rows], [good for _, _, good in rows]),
    )


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    """_settle resolves future with outcome (raised when it is an exception) unless it is already done."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


async def _update_one(conn: psycopg.AsyncConnection[Any], kind: Kind[M], name: str, mutate: Callable[[M], M]) -> M:
    """_update_one is a read and a conditional write, two statements outside a transaction: the UPDATE applies
    only while the row is still the version read (its xmin, the transaction that wrote it: compare and set), and
    is tried again from a fresh read when another writer came between. After OPTIMISTIC_TRIES lost races, the row
    is locked instead. Raises NotFound, what the mutator raised, and psycopg's errors."""
    assignments = ", ".join(f"{column} = %s" for column in (*kind.columns, "doc"))
    for _ in range(OPTIMISTIC_TRIES):
        cur = await conn.execute(f"SELECT doc::text, xmin::text FROM {kind.table} WHERE name = %s", (name,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(kind.name, name)
        obj: M = kind.check_mutated(name, mutate(kind.load(row[0])))
        cur = await conn.execute(
            f"UPDATE {kind.table} SET {assignments}::jsonb WHERE name = %s AND xmin = %s::xid",
            (*kind.values(obj), obj.to_wire_json(), name, row[1]),
        )
        if cur.rowcount == 1:
            return obj
    async with conn.transaction():
        cur = await conn.execute(f"SELECT doc::text FROM {kind.table} WHERE name = %s FOR UPDATE", (name,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(kind.name, name)
        obj = kind.check_mutated(name, mutate(kind.load(row[0])))
        await conn.execute(
            f"UPDATE {kind.table} SET {assignments} WHERE name = %s", (*kind.values(obj), Jsonb(obj.to_wire()), name)
        )
    return obj


class PostgresStore(KindStore):
    """PostgresStore implements Store on a PostgreSQL database; open it with `await PostgresStore.open`."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        # Batches: table → the batcher of that kind's updates (`_UpdateBatch`), made on first use.
        self._batches: dict[str, _UpdateBatch[Any]] = {}
        self._events: _AppendBatch[_EventRow] = _AppendBatch(pool, _insert_events)
        self._transitions: _AppendBatch[_TransitionRow] = _AppendBatch(pool, _insert_transitions)
        self._history: _AppendBatch[_HistoryRow] = _AppendBatch(pool, _insert_history)

    @classmethod
    async def open(cls, url: str, *, min_size: int = 2, max_size: int = 10) -> PostgresStore:
        """open connects, migrates the schema and starts a pool of min_size..max_size connections.

        Raises ValueError for a malformed URL and StoreError when the database cannot be reached.
        """
        conninfo = _conninfo(url)
        with _pg_errors():
            await _migrate(conninfo)
            pool = AsyncConnectionPool(
                conninfo,
                min_size=min_size,
                max_size=max_size,
                kwargs={"autocommit": True},
                open=False,
                name="cara-store",
            )
            try:
                await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            except BaseException:
                await pool.close()
                raise
        return cls(pool)

    # The row operations KindStore builds the Node and Project methods on.

    async def _create(self, kind: Kind[M], obj: M) -> M:
        doc = obj.to_wire()
        columns = ", ".join(("name", *kind.columns, "doc"))
        marks = ", ".join(["%s"] * (len(kind.columns) + 2))
        with _pg_errors(kind.name, obj.name):
            async with self._pool.connection() as conn:
                await conn.execute(
                    f"INSERT INTO {kind.table} ({columns}) VALUES ({marks})",
                    (obj.name, *kind.values(obj), Jsonb(doc)),
                )
        return kind.load(doc)

    async def _get(self, kind: Kind[M], name: str) -> M:
        with _pg_errors(kind.name, name):
            async with self._pool.connection() as conn:
                cur = await conn.execute(f"SELECT doc::text FROM {kind.table} WHERE name = %s", (name,))
                row = await cur.fetchone()
        if row is None:
            raise NotFound(kind.name, name)
        return kind.load(row[0])

    async def _list_docs(
        self,
        kind: Kind[M],
        *,
        labels: Mapping[str, str] | None,
        phases: Sequence[ProjectPhase] | None = None,
        node_ref: str | None = None,
    ) -> list[str]:
        clauses: list[str] = []
        params: list[Any] = []
        if labels:
            clauses.append("doc -> 'metadata' -> 'labels' @> %s")  # served by the GIN index
            params.append(Jsonb(dict(labels)))
        if phases is not None:
            clauses.append("phase = ANY(%s)")
            params.append([ProjectPhase(phase).value for phase in phases])
        if node_ref is not None:
            clauses.append("node_ref = %s")
            params.append(node_ref)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with _pg_errors():
            async with self._pool.connection() as conn:
                cur = await conn.execute(f"SELECT doc::text FROM {kind.table}{where} ORDER BY name", params)
                rows = await cur.fetchall()
        return [str(row[0]) for row in rows]

    async def _revisions(self, kind: Kind[M]) -> dict[str, int]:
        with _pg_errors():
            async with self._pool.connection() as conn:
                rows = await (await conn.execute(f"SELECT name, revision FROM {kind.table}")).fetchall()
        return {str(name): int(revision) for name, revision in rows}

    async def _get_revisioned(self, kind: Kind[M], names: Sequence[str] | None) -> list[tuple[str, int]]:
        sql = f"SELECT doc::text, revision FROM {kind.table}"
        params: list[Any] = []
        if names is not None:
            sql += " WHERE name = ANY(%s)"
            params.append(list(names))
        with _pg_errors():
            async with self._pool.connection() as conn:
                rows = await (await conn.execute(sql, params)).fetchall()
        return [(str(doc), int(revision)) for doc, revision in rows]

    async def _update(self, kind: Kind[M], name: str, mutate: Callable[[M], M]) -> M:
        """_update queues the write for the kind's batcher (`_UpdateBatch`), which applies the updates queued
        together with one read and one conditional write."""
        batch = self._batches.get(kind.table)
        if batch is None:
            batch = self._batches[kind.table] = _UpdateBatch(kind, self._pool)
        stored: M = await batch.submit(name, mutate)
        return stored

    async def _delete(self, kind: Kind[M], name: str) -> None:
        with _pg_errors(kind.name, name):
            async with self._pool.connection() as conn:
                cur = await conn.execute(f"DELETE FROM {kind.table} WHERE name = %s", (name,))
        if cur.rowcount == 0:
            raise NotFound(kind.name, name)

    # Leases, leadership and lifecycle.

    async def save_leases(self, leases: Mapping[str, Lease]) -> None:
        """save_leases persists name → lease, marks included, in one statement; unknown names are skipped.

        A lease never moves backwards: one older than the stored one (renewed_at) is ignored, marks and all.
        """
        if not leases:
            return
        names = list(leases)
        held = [leases[name] for name in names]
        times = [require_utc(lease.renewed_at, "lease time") for lease in held]
        facts = [None if lease.facts_at is None else require_utc(lease.facts_at, "lease time") for lease in held]
        with _pg_errors():
            async with self._pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO node_leases (name, renewed_at, marks_at, released, rejected, facts_at)"
                    " SELECT n.name, l.at, l.at, l.released, l.rejected, l.facts_at"
                    " FROM unnest(%s::text[], %s::timestamptz[], %s::boolean[], %s::boolean[], %s::timestamptz[])"
                    " AS l (name, at, released, rejected, facts_at)"
                    " JOIN nodes n ON n.name = l.name"
                    " ON CONFLICT (name) DO UPDATE SET renewed_at = EXCLUDED.renewed_at, marks_at = EXCLUDED.marks_at,"
                    " released = EXCLUDED.released, rejected = EXCLUDED.rejected, facts_at = EXCLUDED.facts_at"
                    " WHERE node_leases.renewed_at < EXCLUDED.renewed_at",
                    (names, times, [lease.released for lease in held], [lease.rejected for lease in held], facts),
                )

    async def load_leases(self) -> dict[str, Lease]:
        """load_leases returns every persisted node lease, marks included (those written with its renewal), in UTC."""
        with _pg_errors():
            async with self._pool.connection() as conn:
                rows = await (
                    await conn.execute(
                        "SELECT name, renewed_at, marked AND released, marked AND rejected,"
                        " CASE WHEN marked THEN facts_at END"
                        " FROM (SELECT *, marks_at IS NOT DISTINCT FROM renewed_at AS marked FROM node_leases) AS l"
                    )
                ).fetchall()
        return {
            str(name): Lease(
                at.astimezone(UTC),
                released=bool(released),
                rejected=bool(rejected),
                facts_at=None if facts_at is None else facts_at.astimezone(UTC),
            )
            for name, at, released, rejected, facts_at in rows
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
        """append_history adds entries and trims each list to its newest limit, in one transaction with the appends
        queued meanwhile (_insert_history); entries of a Node that is gone are dropped."""
        rows = [
            (name, kind, Jsonb(entry.to_wire()), limit)
            for kind, entries in history_batches(throughput, paths)
            for entry in entries
        ]
        if rows:
            await self._history.submit(rows)

    async def get_history(self, name: str) -> NodeHistory:
        """get_history returns the kept entries of the Node, oldest first; raises NotFound."""
        with _pg_errors():
            async with self._pool.connection() as conn, conn.transaction():
                if await (await conn.execute("SELECT 1 FROM nodes WHERE name = %s", (name,))).fetchone() is None:
                    raise NotFound("Node", name)
                cur = await conn.execute("SELECT kind, doc FROM node_history WHERE name = %s ORDER BY seq", (name,))
                rows = await cur.fetchall()
        return history_of(name, rows)

    async def count_projects(self) -> dict[str, int]:
        """count_projects returns phase → number of Projects, from the indexed phase column."""
        with _pg_errors():
            async with self._pool.connection() as conn:
                rows = await (await conn.execute("SELECT phase, COUNT(*) FROM projects GROUP BY phase")).fetchall()
        return {str(phase): int(count) for phase, count in rows}

    # Events and transitions.

    async def append_events(self, events: Sequence[Event], *, limit: int) -> None:
        """append_events stores events and trims all events to the newest limit, in one transaction with the appends
        queued meanwhile (_AppendBatch, _insert_events); a seq an aborted append took counts towards the limit."""
        if not events:
            return
        await self._events.submit(
            [(e.involved_object.kind, e.involved_object.name, Jsonb(e.to_wire()), limit) for e in events]
        )

    async def list_events(
        self, *, kind: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """list_events returns the newest limit (None: all) kept events about kind/name, oldest first."""
        filters = [(column, value) for column, value in (("kind", kind), ("name", name)) if value is not None]
        where = " AND ".join(f"{column} = %s" for column, _ in filters)
        with _pg_errors():
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    f"SELECT doc FROM events {'WHERE ' + where if where else ''} ORDER BY seq DESC LIMIT %s",
                    [*(value for _, value in filters), limit],
                )
                rows = await cur.fetchall()
        return [Event.model_validate(doc) for (doc,) in reversed(rows)]

    async def events_after(
        self, cursor: int | None, *, kind: str | None = None, name: str | None = None
    ) -> tuple[list[Event], int]:
        """events_after is the change feed of events; the cursor is the last seq read. append_events holds
        EVENTS_LOCK while it inserts, so a seq is visible only after every smaller one was committed (or never
        will be): no event of a slower writer can land behind the cursor."""
        filters = [(column, value) for column, value in (("kind", kind), ("name", name)) if value is not None]
        where = "".join(f" AND {column} = %s" for column, _ in filters)
        with _pg_errors():
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events")
                row = await cur.fetchone()
                last = int(row[0]) if row is not None else 0
                if cursor is None:
                    return [], last
                cur = await conn.execute(
                    f"SELECT doc FROM events WHERE seq > %s AND seq <= %s{where} ORDER BY seq",
                    [cursor, last, *(value for _, value in filters)],
                )
                rows = await cur.fetchall()
        return [Event.model_validate(doc) for (doc,) in rows], max(last, cursor)

    async def append_transitions(self, transitions: Sequence[Transition]) -> None:
        """append_transitions stores transitions, in one transaction with the appends queued meanwhile."""
        rows = [(t.subject, require_utc(t.time, "transition time"), t.good) for t in transitions if t.time]
        if not rows:
            return
        await self._transitions.submit(rows)

    async def list_transitions(self, prefix: str, since: datetime) -> list[Transition]:
        """list_transitions returns each matching subject's transitions since `since` and its last one before."""
        low, high, at = prefix, prefix_end(prefix), require_utc(since, "since")
        with _pg_errors():
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT subject, at, good FROM transitions WHERE subject >= %s AND subject < %s AND at >= %s"
                    " UNION ALL SELECT t.subject, t.at, t.good FROM transitions t JOIN"
                    " (SELECT MAX(seq) AS seq FROM transitions WHERE subject >= %s AND subject < %s AND at < %s"
                    " GROUP BY subject) last ON t.seq = last.seq ORDER BY 1, 2",
                    (low, high, at, low, high, at),
                )
                rows = await cur.fetchall()
        return [Transition(subject=subject, time=when.astimezone(UTC), good=good) for subject, when, good in rows]

    async def prune_transitions(self, before: datetime) -> int:
        """prune_transitions deletes transitions older than before except each subject's last one."""
        at = require_utc(before, "before")
        with _pg_errors():
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "DELETE FROM transitions WHERE at < %s AND seq NOT IN"
                    " (SELECT MAX(seq) FROM transitions WHERE at < %s GROUP BY subject)",
                    (at, at),
                )
                return cur.rowcount

    async def try_acquire_leadership(self, holder: str, ttl_s: float, now: datetime) -> bool:
        """try_acquire_leadership takes the leader lease if it is free or expired, or renews it if holder has it.

        Returns whether holder leads until now + ttl_s. One atomic statement: two replicas racing
        for an expired lease cannot both win. Expiry is judged on the callers' clocks (keep them
        NTP-synced); a leader renews every ttl_s / 3 or so and stops leading when a renewal fails.
        """
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        now = require_utc(now, "now")
        expires = now + timedelta(seconds=ttl_s)
        with _pg_errors():
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "INSERT INTO leader_lease AS l (id, holder, acquired_at, expires_at) VALUES (1, %s, %s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at,"
                    " acquired_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.acquired_at"
                    " ELSE EXCLUDED.acquired_at END"
                    " WHERE l.holder = EXCLUDED.holder OR l.expires_at <= %s"
                    " RETURNING holder",
                    (holder, now, expires, now),
                )
                return await cur.fetchone() is not None

    async def close(self) -> None:
        """close closes the pool's connections; the store is unusable afterwards."""
        await self._pool.close()
