"""The one way data changes: a transaction on a database's single writer connection.

Each database has one read-write connection and one lock, so writes to it run one at a time
in this process (in Lambda the write function's reserved concurrency of 1 extends that to the
whole deployment). A request's work runs inside `BEGIN IMMEDIATE ... COMMIT`: all of it lands
or none of it does. It is acknowledged only after the storage says the commit is durable.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from lambdasette.errors import ApiError
from lambdasette.query.schema import Schema, SchemaCache, Table
from lambdasette.storage.base import Storage

T = TypeVar("T")


class Transaction:
    """What a write's work receives: the connection inside `BEGIN IMMEDIATE` (`conn`),
    sqlite-utils' Database over it (`db`, for table creation and transforms), and the tables
    as they stand at this point of the transaction (`schema()`, `table(name)`), in the same
    model the read side uses (`query.schema.Table`)."""

    def __init__(self, db: Any, database: str, schemas: SchemaCache) -> None:
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.database = database
        self._schemas = schemas
        # Set by work that finds the connection changed in a way no write may leave behind
        # (`writes.sql.run`): the writer closes it after the rollback and opens a new one.
        self.discard = False

    def schema(self) -> Schema:
        """The schema now: introspected again only after a statement changed it."""
        return self._schemas.get(self.database, self.conn)

    def table(self, name: str) -> Table | None:
        return self.schema().get(name)


class Writer:
    """One connection and one lock per database; see `run`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._databases: dict[str, Any] = {}
        self._schemas = SchemaCache()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _database(self, name: str) -> Any:
        db = self._databases.get(name)
        if db is None:
            import sqlite_utils  # only writers need it

            db = sqlite_utils.Database(self.storage.write_connection(name), execute_plugins=False)
            self._databases[name] = db
        return db

    def run(self, name: str, work: Callable[[Transaction], T], *,
            before_commit: Callable[[], None] | None = None) -> tuple[T, int | None]:
        """Run `work(tx)` in one transaction on database `name`;
        returns its result and the replica's transaction id once the commit is durable.
        `before_commit()` runs after `work`, inside the transaction and the lock, right
        before COMMIT: whatever it raises rolls everything back (the caller's token is
        re-checked there, so one revoked while the write waited writes nothing).

        Raises DatabaseNotFound, ReplicaUnavailable (nothing acknowledged), ApiError from
        `work`, and ApiError for what SQLite refused: 400 for the data's fault (a constraint,
        a bad value), 503 when the database is locked by another process."""
        try:
            return self._run(name, work, before_commit)
        except sqlite3.Error as exc:
            raise refused(exc) from None

    def _run(self, name: str, work: Callable[[Transaction], T],
             before_commit: Callable[[], None] | None) -> tuple[T, int | None]:
        with self._lock(name):
            if self.storage.is_stale(name):
                # Someone else wrote to the replica: never build on an old copy.
                self._close(name)
                self.storage.refresh(name)
            db = self._database(name)
            conn: sqlite3.Connection = db.conn
            conn.execute("BEGIN IMMEDIATE")
            tx = Transaction(db, name, self._schemas)
            try:
                result = work(tx)
                if before_commit is not None:
                    before_commit()
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if tx.discard:
                    self._close(name)
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result, self.storage.make_durable(name)

    def _close(self, name: str) -> None:
        db = self._databases.pop(name, None)
        if db is not None:
            db.conn.close()


def refused(exc: sqlite3.Error) -> ApiError:
    """A statement SQLite refused: the data's fault (400) or a busy database (503)."""
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "database is locked" in message:
        return ApiError(503, "The database is busy; try again", headers={"Retry-After": "1"})
    return ApiError(400, message)
