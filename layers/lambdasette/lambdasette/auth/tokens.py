"""API tokens: shown once, stored as a hash, with restrictions, expiry and revocation.

A token is `lstok_<id>_<secret>`. The store keeps the id, a SHA-256 of the secret (compared
in constant time), the actor, restrictions, created/expiry/last-used times and a revoked flag.
`TokenStore` is the interface; `LocalTokenStore` keeps tokens in a SQLite file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
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
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) for a token in our format, None for anything else."""
    if not token.startswith(PREFIX):
        return None
    token_id, sep, secret = token[len(PREFIX):].partition("_")
    if not sep or not token_id or not secret:
        return None
    return token_id, secret


def new_record(actor: str, restrictions: Any, expires_after: int | None,
               now: int | None = None) -> tuple[str, TokenRecord]:
    if not actor:
        raise ValueError("A token needs an actor")
    if expires_after is not None and expires_after <= 0:
        raise ValueError("expires_after must be a positive number of seconds")
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
    )
    return f"{PREFIX}{token_id}_{secret}", record


class TokenStore(Protocol):
    """Where token records live: `LocalTokenStore` (a SQLite file) or `DynamoDBTokenStore`."""

    def put(self, record: TokenRecord) -> None:
        """Store a new record (an existing id is an error)."""
        ...

    def get(self, token_id: str) -> TokenRecord | None:
        """The record, read consistently (a revocation holds from the next request)."""
        ...

    def list(self, actor: str | None = None) -> list[TokenRecord]:
        """Every record, or one actor's, oldest first."""
        ...

    def revoke(self, token_id: str) -> bool:
        """Mark revoked; False if there is no such token."""
        ...

    def touch(self, token_id: str, when: int) -> None:
        """Record last use at `when` (epoch seconds)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def create(store: TokenStore, actor: str, restrictions: Any = None,
           expires_after: int | None = None) -> tuple[str, TokenRecord]:
    token, record = new_record(actor, restrictions, expires_after)
    store.put(record)
    return token, record


def verify(store: TokenStore, token: str, now: int | None = None) -> TokenRecord | None:
    """The record for a valid token; None if not ours; InvalidToken if bad/expired/revoked."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    record = store.get(token_id)
    # Compare even when the id is unknown, so timing does not reveal which ids exist.
    expected = record.secret_hash if record else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(secret)) or record is None:
        raise InvalidToken("Invalid token")
    now = int(time.time()) if now is None else now
    if record.revoked:
        raise InvalidToken("Token has been revoked")
    if record.expires is not None and now >= record.expires:
        raise InvalidToken("Token has expired")
    if record.last_used is None or now - record.last_used >= LAST_USED_EVERY:
        store.touch(record.id, now)
        record.last_used = now
    return record


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
                    last_used integer, revoked integer not null default 0)"""
            )
            conn.execute("create index if not exists tokens_by_actor on tokens (actor, created)")

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
        )

    def put(self, record: TokenRecord) -> None:
        with self._connect() as conn:
            conn.execute(
                "insert into tokens values (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.actor, record.secret_hash, json.dumps(record.restrictions),
                 record.created, record.expires, record.last_used, int(record.revoked)),
            )

    def get(self, token_id: str) -> TokenRecord | None:
        with self._connect() as conn:
            row = conn.execute("select * from tokens where id = ?", (token_id,)).fetchone()
        return self._record(row) if row else None

    def list(self, actor: str | None = None) -> list[TokenRecord]:
        with self._connect() as conn:
            if actor is None:
                rows = conn.execute("select * from tokens order by created, id").fetchall()
            else:
                rows = conn.execute(
                    "select * from tokens where actor = ? order by created, id", (actor,)
                ).fetchall()
        return [self._record(r) for r in rows]

    def revoke(self, token_id: str) -> bool:
        with self._connect() as conn:
            cursor = conn.execute("update tokens set revoked = 1 where id = ?", (token_id,))
        return cursor.rowcount > 0

    def touch(self, token_id: str, when: int) -> None:
        with self._connect() as conn:
            conn.execute("update tokens set last_used = ? where id = ?", (when, token_id))

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
