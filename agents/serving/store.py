"""The server's durable state in one SQLite file: served requests and per-tenant online state.

Two tables:

- ``requests``: one row per routing decision the server handed out (its id, tenant, targets, the
  chosen model, predictions), and its realized ``score`` once feedback arrives;
- ``tenants``: each tenant's :class:`~agents.serving.tenants.TenantState` as JSON.

Durability rules:

- accepted feedback is committed with ``synchronous=FULL`` (the WAL is fsynced) *before* the
  server acknowledges it, together with the tenant states it changed, in one transaction: after a
  crash or restart, every acknowledged feedback item and its effect on the controller are there;
- served-request rows are written in batches (one transaction per event-loop turn) with
  ``synchronous=NORMAL``; a request's response waits for its batch's commit, so any id a client
  has seen survives a crash of the process (a power loss may drop the last batches; feedback for
  those ids is then answered 404).

Every SQLite call runs on one dedicated thread, so the event loop never blocks on the disk and the
calls are serialized in submission order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created REAL NOT NULL,
    endpoint TEXT NOT NULL,
    tau REAL NOT NULL,
    tau_served REAL NOT NULL,
    tau_input REAL NOT NULL,
    model TEXT NOT NULL,
    expected_accuracy REAL NOT NULL,
    expected_cost_usd REAL NOT NULL,
    score REAL,
    cost_usd REAL,
    feedback_at REAL
);
CREATE INDEX IF NOT EXISTS requests_created ON requests (created);
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
"""


@dataclasses.dataclass(frozen=True)
class ServedRecord:
    """One routing decision handed out with an id (a row of ``requests``)."""

    id: str
    tenant: str
    created: float
    endpoint: str
    tau: float
    tau_served: float
    tau_input: float
    model: str
    expected_accuracy: float
    expected_cost_usd: float

    def row(self) -> tuple[Any, ...]:
        """The values in column order."""
        return dataclasses.astuple(self)


@dataclasses.dataclass(frozen=True)
class StoredRequest:
    """A served request as read back for feedback."""

    id: str
    tenant: str
    tau: float
    model: str
    score: float | None
    cost_usd: float | None


class Store:
    """The SQLite state file, used from one event loop.

    Args:
        path: The SQLite file (created with its parent directories if missing).

    Raises:
        ValueError: If the file exists but is not a state file of this server.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="proteus-store")
        self._connection: sqlite3.Connection | None = None
        self._pending: list[ServedRecord] = []
        self._pending_future: asyncio.Future[None] | None = None
        self.write_errors = 0

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> dict[str, dict[str, Any]]:
        """Open (or create) the file; returns the saved tenant states by name."""
        return await self._run(self._open)

    def _open(self) -> dict[str, dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise ValueError(f"{self.path} has state schema version {version}; this server reads version {SCHEMA_VERSION}.")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=5000")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            tenants = {name: json.loads(state) for name, state in connection.execute("SELECT name, state FROM tenants")}
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{self.path} is not a usable `proteus serve` state file (SQLite): {exc}") from None
        self._connection = connection
        return tenants

    async def close(self) -> None:
        """Write what is pending, checkpoint the WAL and close the file."""
        if self._connection is None:
            return
        self._submit_pending()
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        assert self._connection is not None
        self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._connection.close()
        self._connection = None

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # ------------------------------------------------------------------ served requests
    def record(self, record: ServedRecord) -> asyncio.Future[None]:
        """Queue a served request; the returned future resolves when its batch is committed."""
        loop = asyncio.get_running_loop()
        self._pending.append(record)
        if self._pending_future is None:
            self._pending_future = loop.create_future()
            loop.call_soon(self._submit_pending)
        return self._pending_future

    def _submit_pending(self) -> None:
        """Hand the queued records to the store thread now (keeps submission order)."""
        batch, future = self._pending, self._pending_future
        self._pending, self._pending_future = [], None
        if not batch or future is None:
            return
        job = asyncio.get_running_loop().run_in_executor(self._executor, self._insert, [r.row() for r in batch])

        def done(job: asyncio.Future[None]) -> None:
            if future.done():
                return
            error = job.exception()
            if error is not None:
                self.write_errors += 1
                future.set_exception(error)
            else:
                future.set_result(None)

        job.add_done_callback(done)

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._connection is not None
        with _transaction(self._connection):
            self._connection.executemany("INSERT OR REPLACE INTO requests (id, tenant, created, endpoint, tau, tau_served, tau_input, model, "
                                         "expected_accuracy, expected_cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    async def forget(self, request_id: str) -> None:
        """Delete a served request (its upstream call failed: there is nothing to score)."""
        self._submit_pending()
        await self._run(self._delete, request_id)

    def _delete(self, request_id: str) -> None:
        assert self._connection is not None
        self._connection.execute("DELETE FROM requests WHERE id = ? AND score IS NULL", (request_id,))

    # ------------------------------------------------------------------ feedback
    async def lookup(self, ids: Iterable[str]) -> dict[str, StoredRequest]:
        """The stored requests among ``ids`` (queued records are written first)."""
        self._submit_pending()
        return await self._run(self._lookup, list(ids))

    def _lookup(self, ids: list[str]) -> dict[str, StoredRequest]:
        assert self._connection is not None
        found: dict[str, StoredRequest] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._connection.execute(f"SELECT id, tenant, tau, model, score, cost_usd FROM requests WHERE id IN ({marks})", chunk):
                found[row[0]] = StoredRequest(*row)
        return found

    async def commit_feedback(self, scores: list[tuple[str, float, float | None]], tenant_states: dict[str, dict[str, Any]]) -> None:
        """Durably store feedback ``(id, score, cost)`` and the tenant states it produced, in one transaction.

        Raises:
            RuntimeError: If a request was scored meanwhile or disappeared (nothing is written then).
        """
        await self._run(self._commit_feedback, scores, tenant_states)

    def _commit_feedback(self, scores: list[tuple[str, float, float | None]], tenant_states: dict[str, dict[str, Any]]) -> None:
        assert self._connection is not None
        connection = self._connection
        now = time.time()
        connection.execute("PRAGMA synchronous=FULL")
        try:
            with _transaction(connection):
                for request_id, score, cost in scores:
                    cursor = connection.execute("UPDATE requests SET score = ?, cost_usd = ?, feedback_at = ? WHERE id = ? AND score IS NULL",
                                                (score, cost, now, request_id))
                    if cursor.rowcount != 1:
                        raise RuntimeError(f"request {request_id!r} was scored or removed concurrently")
                connection.executemany("INSERT INTO tenants (name, state, updated) VALUES (?, ?, ?) "
                                       "ON CONFLICT(name) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                                       [(name, json.dumps(state), now) for name, state in tenant_states.items()])
        finally:
            connection.execute("PRAGMA synchronous=NORMAL")

    # ------------------------------------------------------------------ upkeep
    async def prune(self, older_than_s: float) -> int:
        """Delete served requests older than ``older_than_s`` seconds; returns how many."""
        return await self._run(self._prune, time.time() - older_than_s)

    def _prune(self, before: float) -> int:
        assert self._connection is not None
        return self._connection.execute("DELETE FROM requests WHERE created < ?", (before,)).rowcount


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: Any) -> None:
        self.connection.execute("ROLLBACK" if kind is not None else "COMMIT")
