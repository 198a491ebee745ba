"""API tokens: shown once, stored as a hash, with restrictions, expiry and revocation.

A token is `lstok_<id>_<secret>`. The store keeps the id, a SHA-256 of the secret (compared
in constant time), the actor, restrictions, created/expiry/last-used times, a revoked flag and
the token's chain: the ids of the tokens it was minted from (root first, its parent last).
A token is valid only while every token of its chain is (`verify`, `recheck`): revoking or
the expiry of a token reaches every token minted from it, at any depth. A record without a
chain (every token made by the CLI, and tokens stored before chains existed) is a root.
`TokenStore` is the interface; `LocalTokenStore` keeps tokens in a SQLite file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lambdasette.auth.actions import normalize_restrictions
from lambdasette.errors import InvalidToken

PREFIX = "lstok_"
LAST_USED_EVERY = 60  # seconds: last-used time is written at most this often
# Every request reads the whole chain, so its length is bounded: a token minted from a token
# minted from ... at most this many tokens deep (one batch read either way).
MAX_CHAIN = 16
# Far enough for any real use; keeps `created + expires_after` a 64-bit integer everywhere.
MAX_LIFESPAN = 100 * 365 * 24 * 3600
# A root token may do everything. Made without a lifespan - by `serve --root` (a new one at
# every start), `token create root`, local-cloud's `--root-token` - it lasts a day, so the
# ones nobody remembers do not stay valid for ever. Other actors' tokens never expire unless
# a lifespan is given, as in Datasette.
ROOT_TOKEN_LIFESPAN = 24 * 3600


def cli_lifespan(actor: str, expires_after: int | None) -> int | None:
    """The lifespan of a token made from the command line: `expires_after` seconds if given
    (0: never expires, as Datasette's `--expires-after 0`); else a day for root, none for others."""
    if expires_after is None:
        return ROOT_TOKEN_LIFESPAN if actor == "root" else None
    return expires_after or None
# A line or two that says what a token is for; long enough for that, short enough for a list.
MAX_DESCRIPTION = 500


@dataclass
class TokenRecord:
    id: str
    actor: str
    secret_hash: str
    restrictions: dict[str, Any] = field(default_factory=dict)
    created: int = 0
    expires: int | None = None
    last_used: int | None = None
    revoked: bool = False
    # The tokens this one was minted from, root first and its parent last; empty for a root.
    ancestors: list[str] = field(default_factory=list)
    # What its maker says it is for (shown in lists; never used in a decision).
    description: str | None = None
    # When it was revoked (None for tokens revoked before this was recorded).
    revoked_at: int | None = None

    @property
    def parent(self) -> str | None:
        return self.ancestors[-1] if self.ancestors else None

    def expired(self, now: int) -> bool:
        return self.expires is not None and now >= self.expires

    def public(self) -> dict[str, Any]:
        """Everything but the hash: what the token API may show."""
        return {
            "id": self.id,
            "actor": self.actor,
            "restrictions": self.restrictions,
            "created": self.created,
            "expires": self.expires,
            "last_used": self.last_used,
            "revoked": self.revoked,
            "revoked_at": self.revoked_at,
            "parent": self.parent,
            "description": self.description,
        }


@dataclass
class SessionRecord:
    """A signed-in browser (see `auth.sessions`): it acts as the token `token_id` (whose chain,
    `ancestors`, is kept here so that one batch read checks them all), until `expires` at the
    latest. `key` is the SHA-256 of the session id in the cookie - the id itself is never
    stored - and `csrf` the token every form and cookie-authenticated POST must carry."""

    key: str
    token_id: str
    csrf: str
    created: int
    expires: int
    ancestors: list[str] = field(default_factory=list)

    def expired(self, now: int) -> bool:
        return now >= self.expires


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Every token id is `secrets.token_hex(8)` and every secret `secrets.token_urlsafe(32)`. Anything
# else is refused by its shape before any store is asked: a 2 KB id would otherwise reach
# DynamoDB, which refuses keys over 2,048 bytes with an error of its own.
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,128}")


def valid_id(token_id: str) -> bool:
    """Could `token_id` be the id of one of our tokens (16 lower-case hex digits)?"""
    return _TOKEN_ID.fullmatch(token_id) is not None


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) for a token in our format (`lstok_<16 hex digits>_<secret>`), None for
    anything else."""
    if not token.startswith(PREFIX):
        return None
    token_id, sep, secret = token[len(PREFIX):].partition("_")
    if not sep or not valid_id(token_id) or _SECRET.fullmatch(secret) is None:
        return None
    return token_id, secret


def new_record(actor: str, restrictions: Any, expires_after: int | None,
               now: int | None = None, parent: TokenRecord | None = None,
               description: str | None = None) -> tuple[str, TokenRecord]:
    """A new token and its record; ValueError for what cannot be stored. `parent`: the token
    it is minted from (the caller checks that it holds no more than the parent)."""
    if not actor:
        raise ValueError("A token needs an actor")
    if not valid_text(actor):
        raise ValueError("The actor must be valid Unicode text")
    description = check_description(description)
    if expires_after is not None and (isinstance(expires_after, bool) or not isinstance(expires_after, int)
                                      or expires_after <= 0):
        raise ValueError("expires_after must be a positive number of seconds")
    if expires_after is not None and expires_after > MAX_LIFESPAN:
        raise ValueError(f"expires_after can be at most {MAX_LIFESPAN} seconds (100 years)")
    ancestors: list[str] = []
    if parent is not None:
        ancestors = [*parent.ancestors, parent.id]
        if len(ancestors) >= MAX_CHAIN:
            raise ValueError(f"A token can be minted from tokens at most {MAX_CHAIN - 1} deep")
    now = int(time.time()) if now is None else now
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(
        id=token_id,
        actor=actor,
        secret_hash=hash_secret(secret),
        restrictions=normalize_restrictions(restrictions),
        created=now,
        expires=now + expires_after if expires_after else None,
        ancestors=ancestors,
        description=description,
    )
    return f"{PREFIX}{token_id}_{secret}", record


def check_description(description: Any) -> str | None:
    """A token's description as stored: None for none (or only blanks), else text of at most
    MAX_DESCRIPTION characters that every store can hold; ValueError otherwise."""
    if description is None:
        return None
    if not isinstance(description, str):
        raise ValueError("description must be a string")
    description = description.strip()
    if not description:
        return None
    if len(description) > MAX_DESCRIPTION:
        raise ValueError(f"description can be at most {MAX_DESCRIPTION} characters")
    if not valid_text(description) or "\x00" in description:
        raise ValueError("description must be valid Unicode text without NUL characters")
    return description


def valid_text(text: str) -> bool:
    """Encodable as UTF-8: no lone surrogates, which no store, SQLite or JSON answer can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class TokenStore(Protocol):
    """Where token records live: `LocalTokenStore` (a SQLite file) or `DynamoDBTokenStore`."""

    def put(self, record: TokenRecord) -> None:
        """Store a new record (an existing id is an error)."""
        ...

    def get(self, token_id: str) -> TokenRecord | None:
        """The record, read consistently (a revocation holds from the next request)."""
        ...

    def get_many(self, token_ids: list[str]) -> dict[str, TokenRecord]:
        """The records that exist among `token_ids` (at most MAX_CHAIN of them), by id, read
        consistently and in one round trip: how a token's chain is checked on every request."""
        ...

    def list(self, actor: str | None = None) -> list[TokenRecord]:
        """Every record, or one actor's, oldest first."""
        ...

    def revoke(self, token_id: str, when: int | None = None) -> bool:
        """Mark revoked at `when` (epoch seconds; now by default); False if there is no such
        token. Revoking a revoked token keeps its first `revoked_at`."""
        ...

    def touch(self, token_id: str, when: int) -> None:
        """Record last use at `when` (epoch seconds)."""
        ...

    def put_session(self, session: SessionRecord) -> None:
        """Store a new session (never mistaken for a token by any other method)."""
        ...

    def get_session(self, key: str) -> SessionRecord | None:
        """The session whose id hashes to `key`, read consistently; None if there is none."""
        ...

    def delete_session(self, key: str) -> None:
        """Forget a session (signing out); no error if it is already gone."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def create(store: TokenStore, actor: str, restrictions: Any = None,
           expires_after: int | None = None, parent: TokenRecord | None = None,
           description: str | None = None) -> tuple[str, TokenRecord]:
    """Make a token and store its record; ValueError for what cannot be stored."""
    token, record = new_record(actor, restrictions, expires_after, parent=parent, description=description)
    store.put(record)
    return token, record


def verify(store: TokenStore, token: str, now: int | None = None) -> TokenRecord | None:
    """The record for a valid token; None if not ours; InvalidToken if bad/expired/revoked,
    or if a token it was minted from is.

    Cost: one consistent read of the token; a token minted from another adds one batch read
    of its whole chain (a root token, e.g. every token the CLI makes, adds nothing)."""
    if not token.startswith(PREFIX):
        return None
    parsed = parse_token(token)
    if parsed is None:  # ours by its prefix, but no token we ever made: no store asked
        raise InvalidToken("Invalid token")
    token_id, secret = parsed
    record = store.get(token_id)
    # Compare even when the id is unknown, so timing does not reveal which ids exist.
    expected = record.secret_hash if record else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(secret)) or record is None:
        raise InvalidToken("Invalid token")
    now = int(time.time()) if now is None else now
    _check(record, now)
    if record.ancestors:
        _check_chain(record, store.get_many(record.ancestors), now)
    if record.last_used is None or now - record.last_used >= LAST_USED_EVERY:
        store.touch(record.id, now)
        record.last_used = now
    return record


def verify_id(store: TokenStore, token_id: str, ancestors: list[str], now: int | None = None) -> TokenRecord:
    """The record of token `token_id` if it and its chain (`ancestors`, as recorded when the
    caller last saw it) are valid now - how a signed-in session acts as its token without
    holding its secret; InvalidToken otherwise. One batch read; last use is recorded as for
    `verify`."""
    now = int(time.time()) if now is None else now
    found = store.get_many([token_id, *ancestors])
    record = found.get(token_id)
    if record is None:
        raise InvalidToken("Token has been revoked")
    _check(record, now)
    if record.ancestors != ancestors:  # chains never change; read the recorded one all the same
        found.update(store.get_many(record.ancestors))
    _check_chain(record, found, now)
    if record.last_used is None or now - record.last_used >= LAST_USED_EVERY:
        store.touch(record.id, now)
        record.last_used = now
    return record


def recheck(store: TokenStore, record: TokenRecord, now: int | None = None) -> None:
    """InvalidToken unless the verified token `record` and its whole chain are still valid:
    the check right before a write commits. One batch read of the token and its chain."""
    now = int(time.time()) if now is None else now
    found = store.get_many([record.id, *record.ancestors])
    current = found.get(record.id)
    if current is None:
        raise InvalidToken("Token has been revoked")
    _check(current, now)
    _check_chain(record, found, now)


def chain_status(record: TokenRecord, known: dict[str, TokenRecord], now: int) -> str:
    """`active`, `expired` or `revoked`, counting the tokens it was minted from (`known`, by
    id; a missing one counts as revoked)."""
    for token in [record, *(known.get(i) for i in record.ancestors)]:
        if token is None or token.revoked:
            return "revoked"
        if token.expired(now):
            return "expired"
    return "active"


def ended(record: TokenRecord, known: dict[str, TokenRecord], now: int) -> int | None:
    """When the token stopped working (epoch seconds), counting its chain; None while it is
    active or when the time is not known (revoked before revocation times were recorded)."""
    times = []
    for token in [record, *(known.get(i) for i in record.ancestors)]:
        if token is None:
            continue
        if token.revoked and token.revoked_at is not None:
            times.append(token.revoked_at)
        if token.expires is not None and token.expires <= now:
            times.append(token.expires)
    if chain_status(record, known, now) == "active" or not times:
        return None
    return min(times)


def _check(record: TokenRecord, now: int) -> None:
    if record.revoked:
        raise InvalidToken("Token has been revoked")
    if record.expired(now):
        raise InvalidToken("Token has expired")


def _check_chain(record: TokenRecord, found: dict[str, TokenRecord], now: int) -> None:
    for ancestor_id in record.ancestors:
        ancestor = found.get(ancestor_id)
        # A missing ancestor was deleted (DynamoDB's TTL removes only long-expired tokens):
        # fail closed, as for a revoked one.
        if ancestor is None or ancestor.revoked or ancestor.actor != record.actor:
            raise InvalidToken("Token has been revoked: a token it was minted from was revoked")
        if ancestor.expired(now):
            raise InvalidToken("Token has expired: a token it was minted from has expired")


class LocalTokenStore:
    """Tokens in a local SQLite file (the embedded default)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                """create table if not exists tokens (
                    id text primary key, actor text not null, secret_hash text not null,
                    restrictions text not null, created integer not null, expires integer,
                    last_used integer, revoked integer not null default 0, ancestors text,
                    description text, revoked_at integer)"""
            )
            conn.execute("create index if not exists tokens_by_actor on tokens (actor, created)")
            # Sessions have a table of their own: nothing that reads tokens can meet one.
            conn.execute(
                """create table if not exists sessions (
                    key text primary key, token_id text not null, ancestors text,
                    csrf text not null, created integer not null, expires integer not null)"""
            )
            self._migrate(conn)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Stores made before token chains lack the `ancestors` column (their tokens are all
        roots, which is what a NULL there means); older stores also lack `description` and
        `revoked_at` (NULL: none, and not known)."""
        columns = {row[1] for row in conn.execute("pragma table_info(tokens)")}
        for column, kind in (("ancestors", "text"), ("description", "text"), ("revoked_at", "integer")):
            if column in columns:
                continue
            try:
                conn.execute(f"alter table tokens add column {column} {kind}")
            except sqlite3.OperationalError as exc:  # another process migrated it first
                if "duplicate column" not in str(exc):
                    raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection, kept open (a lookup happens on every request), used under a lock;
        # other processes (the `token` CLI) see and make changes through the file as usual.
        with self._conn_lock:
            if self._conn is None:
                self._conn = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False)
                self._conn.row_factory = sqlite3.Row
            with self._conn:
                yield self._conn

    @staticmethod
    def _record(row: sqlite3.Row) -> TokenRecord:
        return TokenRecord(
            id=row["id"], actor=row["actor"], secret_hash=row["secret_hash"],
            restrictions=json.loads(row["restrictions"]), created=row["created"],
            expires=row["expires"], last_used=row["last_used"], revoked=bool(row["revoked"]),
            ancestors=json.loads(row["ancestors"]) if row["ancestors"] else [],
            description=row["description"], revoked_at=row["revoked_at"],
        )

    def put(self, record: TokenRecord) -> None:
        with self._connect() as conn:
            conn.execute(
                "insert into tokens (id, actor, secret_hash, restrictions, created, expires,"
                " last_used, revoked, ancestors, description, revoked_at)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.actor, record.secret_hash, json.dumps(record.restrictions),
                 record.created, record.expires, record.last_used, int(record.revoked),
                 json.dumps(record.ancestors) if record.ancestors else None, record.description,
                 record.revoked_at),
            )

    def get(self, token_id: str) -> TokenRecord | None:
        with self._connect() as conn:
            row = conn.execute("select * from tokens where id = ?", (token_id,)).fetchone()
        return self._record(row) if row else None

    def get_many(self, token_ids: list[str]) -> dict[str, TokenRecord]:
        if not token_ids:
            return {}
        marks = ", ".join("?" * len(token_ids))
        with self._connect() as conn:
            rows = conn.execute(f"select * from tokens where id in ({marks})", list(token_ids)).fetchall()
        return {row["id"]: self._record(row) for row in rows}

    def list(self, actor: str | None = None) -> list[TokenRecord]:
        with self._connect() as conn:
            if actor is None:
                rows = conn.execute("select * from tokens order by created, id").fetchall()
            else:
                rows = conn.execute(
                    "select * from tokens where actor = ? order by created, id", (actor,)
                ).fetchall()
        return [self._record(r) for r in rows]

    def revoke(self, token_id: str, when: int | None = None) -> bool:
        when = int(time.time()) if when is None else when
        with self._connect() as conn:
            cursor = conn.execute(
                "update tokens set revoked = 1,"
                " revoked_at = case when revoked then revoked_at else ? end where id = ?",
                (when, token_id))
        return cursor.rowcount > 0

    def touch(self, token_id: str, when: int) -> None:
        with self._connect() as conn:
            conn.execute("update tokens set last_used = ? where id = ?", (when, token_id))

    def put_session(self, session: SessionRecord) -> None:
        with self._connect() as conn:
            # Ended sessions are tidied up here, when someone signs in (DynamoDB's TTL does it there).
            conn.execute("delete from sessions where expires <= ?", (session.created,))
            conn.execute(
                "insert into sessions (key, token_id, ancestors, csrf, created, expires)"
                " values (?, ?, ?, ?, ?, ?)",
                (session.key, session.token_id, json.dumps(session.ancestors), session.csrf,
                 session.created, session.expires),
            )

    def get_session(self, key: str) -> SessionRecord | None:
        with self._connect() as conn:
            row = conn.execute("select * from sessions where key = ?", (key,)).fetchone()
        if row is None:
            return None
        return SessionRecord(key=row["key"], token_id=row["token_id"], csrf=row["csrf"],
                             created=row["created"], expires=row["expires"],
                             ancestors=json.loads(row["ancestors"]) if row["ancestors"] else [])

    def delete_session(self, key: str) -> None:
        with self._connect() as conn:
            conn.execute("delete from sessions where key = ?", (key,))

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_store(*, table: str | None = None, path: Path | None = None) -> TokenStore | None:
    """The DynamoDB store when a table is named, else the local file, else none."""
    if table:
        from lambdasette.auth.store_dynamodb import DynamoDBTokenStore

        return DynamoDBTokenStore(table)
    if path is not None:
        return LocalTokenStore(path)
    return None
