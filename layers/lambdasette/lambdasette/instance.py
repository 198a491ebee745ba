"""The application's shared state: storage, settings, metadata and caches."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from lambdasette import column_types
from lambdasette.auth import authorizer, permissions, sessions, tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import SessionRecord, TokenRecord, TokenStore
from lambdasette.errors import ApiError, ForwardToWriter, InvalidToken
from lambdasette.metadata import CannedQuery, Metadata, TableConfig
from lambdasette.names import fold
from lambdasette.query import execute, internal
from lambdasette.query.internal import StoredQuery
from lambdasette.query.schema import Schema, SchemaCache, Table
from lambdasette.settings import Settings
from lambdasette.storage.base import Storage
from lambdasette.storage.versions import DataVersions, VersionedCache


@dataclass
class Options:
    cors: bool = False
    public: bool = True
    role: str = "all"  # "read", "write" or "all": which requests this process serves
    # A Lambda container serves one request at a time, so a worker-thread hop is pure
    # overhead there; the local server runs queries in threads to stay concurrent.
    threaded: bool = True
    # A front for the one writer (the read function, which API Gateway sends POSTs to): it
    # authenticates and authorizes a POST as the writer would, answers every refusal itself,
    # and hands a request to the write function only where it would write
    # (ForwardToWriter) - so a request without a valid credential never occupies the writer.
    forward_writes: bool = False


def actor_of(record: TokenRecord) -> dict[str, Any]:
    """The actor a token speaks for, as permissions see it (and `/-/actor.json` shows it)."""
    actor: dict[str, Any] = {"id": record.actor, "token": "lstok", "token_id": record.id}
    if record.restrictions:
        actor["_r"] = record.restrictions
    if record.expires is not None:
        actor["token_expires"] = record.expires
    return actor


@dataclass
class Lambdasette:
    storage: Storage
    settings: Settings = field(default_factory=Settings)
    metadata: Metadata = field(default_factory=Metadata)
    options: Options = field(default_factory=Options)
    tokens: TokenStore | None = None  # None when tokens are not configured
    policy: Policy = field(default_factory=Policy)

    def __post_init__(self) -> None:
        self.schemas = SchemaCache()
        self.versions = DataVersions(self.storage.connect)
        self.cache = VersionedCache()
        self._writer: Any = None
        if self.options.forward_writes:
            self._writer = _ForwardingWriter(self)
            if self.tokens is not None:
                self.tokens = _ForwardingStore(self.tokens)

    def can(self, actor: dict[str, Any] | None, action: str, database: str | None = None,
            table: str | None = None) -> bool:
        if action == "execute-sql" and not self.settings.default_allow_sql:
            return False  # Datasette's default_allow_sql=off: a global deny, root included
        if table is not None and authorizer.is_internal(table):
            return False  # SQLite's, Litestream's and lambdasette's own tables: nobody's
        return permissions.allowed(self.policy, self.options.public, actor, action, database, table)

    def require(self, actor: dict[str, Any] | None, action: str, database: str | None = None,
                table: str | None = None, message: str | None = None) -> None:
        """403 unless `actor` may do `action` (anonymous callers of a private instance never
        get this far: they are turned away with a 401 first)."""
        if not self.can(actor, action, database, table):
            raise ApiError(403, message or f"Permission denied: {action}")

    def hidden_tables(self, actor: dict[str, Any] | None, database: str, schema: Schema) -> frozenset[str]:
        """The tables and views of `database` (folded: `names.fold`) the actor may not view: neither
        read nor named. SQLite's internal tables are among them for everyone, and so is every
        view that reads a hidden table."""
        uniform = not self.policy.has_table_rules(database) and not (actor and actor.get("_r"))
        if uniform and self.can(actor, "view-table", database):
            return schema.always_hidden  # the hot path: every user table is visible
        owners = schema.owners()
        return schema.closed({
            fold(name) for name in schema.tables
            if not self.can(actor, "view-table", database, owners.get(name, name))
        })

    @staticmethod
    def credential(authorization: str | None) -> str | None:
        """The bearer token of an `Authorization` header: None without one (other schemes
        carry no lambdasette credential); InvalidToken, without asking the store, for one that
        cannot be a token of ours - a typo must never quietly make a caller anonymous."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = value.strip()
        if tokens.parse_token(token) is None:
            raise InvalidToken("Invalid token: not an lstok_<id>_<secret> token")
        return token

    def authenticate(self, token: str) -> tuple[dict[str, Any], TokenRecord]:
        """The actor and record of a token that is valid now, with its whole chain;
        InvalidToken otherwise."""
        if self.tokens is None:
            raise InvalidToken("Invalid token: this instance has no token store")
        record = tokens.verify(self.tokens, token)
        if record is None:
            raise InvalidToken("Invalid token: not an lstok_ token")
        return actor_of(record), record

    def signed_in(self, session_id: str) -> tuple[SessionRecord, TokenRecord] | None:
        """The session a browser's cookie names and the token it acts as, both valid now
        (the token's chain included); None for no such session, an ended one, or one whose
        token is no longer valid."""
        if self.tokens is None:
            return None
        return sessions.resolve(self.tokens, session_id)

    def recheck(self, record: TokenRecord | None) -> None:
        """InvalidToken unless the token a request was authenticated with (None: anonymous)
        is still valid, chain included - right before a write commits."""
        if record is not None and self.tokens is not None:
            tokens.recheck(self.tokens, record)

    @property
    def writer(self) -> Any:
        """The writer (one connection and lock per database), made on the first write."""
        if self._writer is None:
            from lambdasette.writes.transaction import Writer

            self._writer = Writer(self.storage)
        return self._writer

    def database_names(self) -> list[str]:
        return self.storage.names()

    def connection(self, database: str) -> sqlite3.Connection:
        """This thread's read connection to `database`; DatabaseNotFound if there is none."""
        return self.storage.read_connection(database)

    def schema(self, database: str, conn: sqlite3.Connection) -> Schema:
        return self.schemas.get(database, conn)

    def canned_query(self, database: str, name: str) -> StoredQuery | None:
        """The named query `/<database>/<name>` runs, if there is one: a query from metadata
        `queries:` (0.65's canned queries, trusted) or one stored through the API (1.0a41's
        stored queries). Nothing here checks who may see it (`query_allowed`)."""
        configured = self.metadata.queries(database).get(name)
        if configured is not None:
            return from_metadata(database, configured)
        return self.stored_queries(database).get(name)

    def canned_queries(self, database: str) -> dict[str, StoredQuery]:
        """Every named query of `database`, by name: metadata's, then the stored ones (a stored
        query never has a metadata query's name: storing one checks)."""
        queries = {name: from_metadata(database, q) for name, q in self.metadata.queries(database).items()}
        for name, query in self.stored_queries(database).items():
            queries.setdefault(name, query)
        return queries

    def stored_queries(self, database: str) -> dict[str, StoredQuery]:
        """The queries stored in `database` through the API (`query.internal`), read once per
        data version."""
        return self._internal(database, "stored-queries",
                              lambda conn: internal.read_stored_queries(conn, database))

    def column_types(self, database: str, table: Table) -> dict[str, tuple[str, Any]]:
        """The column types assigned to `table`'s columns: column -> (type, config). As in
        1.0a41, an assignment the column's SQLite type no longer fits (after an alter) is left
        out, and so is an unknown type."""
        assigned = self._internal(database, "column-types", internal.read_column_types).get(table.name, {})
        out = {}
        for column, (name, config) in assigned.items():
            kind = column_types.TYPES.get(name)
            declared = table.column_types.get(column)
            if kind is not None and declared is not None and kind.applies_to(declared):
                out[column] = (name, config)
        return out

    def _internal(self, database: str, key: str, read: Any) -> Any:
        def compute() -> Any:
            conn = self.storage.connect(database)
            try:
                return read(conn)
            finally:
                conn.close()

        return self.cached(database, ("internal", key), compute)

    def query_allowed(self, actor: dict[str, Any] | None, action: str, query: StoredQuery) -> bool:
        """May `actor` do `action` (view-query, update-query, delete-query) on `query`? As
        1.0a41 decides: the rules for the action, plus its owner may view it and update or
        delete a query stored through the API; a private query is its owner's alone."""
        actor_id = actor.get("id") if actor else None
        owner = actor_id is not None and query.owner_id is not None and str(actor_id) == str(query.owner_id)
        if query.is_private and not owner:
            return False
        if owner and (action == "view-query" or query.source == "user"):
            from lambdasette.auth.actions import restrictions_allow

            if restrictions_allow(actor.get("_r") if actor else None, action, query.database, query.name):
                return True
        return self.can(actor, action, query.database, query.name)

    def table_config(self, database: str, table: str) -> TableConfig:
        return self.metadata.table(database, table)

    def time_limit(self, requested: str | None = None) -> int:
        """`_timelimit` may lower `sql_time_limit_ms`, never raise it."""
        limit = self.settings.sql_time_limit_ms
        if requested is not None:
            try:
                limit = min(limit, int(requested))
            except ValueError:
                pass
        return limit

    def cached(self, database: str, key: Any, compute: Any) -> Any:
        """A figure that depends only on the data, computed once per data version."""
        version = self.storage.data_version(database)
        if version is None:
            version = self.versions.version(database)
        value = self.cache.get(database, version, key)
        if value is None:
            value = compute()
            if value is not None:
                self.cache.put(database, version, key, value)
        return value

    def count(
        self, database: str, conn: sqlite3.Connection, sql: str, params: dict[str, Any],
        time_limit_ms: int,
    ) -> int | None:
        """A row count, or None if it ran out of time - its own, or what was left of the
        request's (see `query.execute.Deadline`). A count that ran out of its own full limit
        is remembered for the data version (`execute.within_deadline`): asking again costs
        nothing."""
        found = execute.within_deadline(
            lambda key, compute: self.cached(database, key, compute),
            ("count", sql, tuple(sorted(params.items()))), time_limit_ms,
            lambda limit: execute.scalar(conn, sql, params, time_limit_ms=limit),
        )
        return None if isinstance(found, execute.TimedOut) else found


class _ForwardingWriter:
    """A front's writer: a request that gets this far (authenticated, authorized, its body
    valid, its database there) is the write function's to serve."""

    def __init__(self, ds: Lambdasette) -> None:
        self.ds = ds

    def run(self, database: str, *args: Any, **kwargs: Any) -> Any:
        # DatabaseNotFound (404) is the front's to answer. (Not `connection`: a fresh read
        # would wait for this copy to catch up with the replica - the writer's business.)
        self.ds.storage.info(database)
        raise ForwardToWriter()


class _ForwardingStore:
    """A front's token store: lookups (verifying tokens and sessions, listing tokens) and the
    last-used time are its own; storing or revoking a token, and starting or ending a
    session (signing in and out), are the write function's - the read function may not
    write the tokens table (its policy allows reads and the last-used update only)."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    def put(self, record: TokenRecord) -> None:
        raise ForwardToWriter()

    def revoke(self, token_id: str, when: int | None = None) -> bool:
        raise ForwardToWriter()

    def put_session(self, session: SessionRecord) -> None:
        raise ForwardToWriter()

    def delete_session(self, key: str) -> None:
        raise ForwardToWriter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def from_metadata(database: str, query: CannedQuery) -> StoredQuery:
    """A metadata `queries:` entry as 1.0a41 holds a query from its configuration: trusted
    (`view-query` alone runs it), source "config"."""
    options = query.options
    params = options.get("params")
    return StoredQuery(
        database=database, name=query.name, sql=query.sql, title=query.title,
        description=query.description, description_html=options.get("description_html"),
        parameters=tuple(str(p) for p in params) if isinstance(params, list) else (),
        is_write=query.write, is_private=False, is_trusted=True, source="config", owner_id=None,
        options={k: options[k] for k in internal.OPTION_FIELDS if options.get(k) is not None},
        config=dict(options),
    )

