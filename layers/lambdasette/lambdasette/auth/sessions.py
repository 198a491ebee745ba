"""Signed-in browsers: a session started with a token acts as that token.

Signing in with a token (`start`) makes a random session id - the only thing the browser
keeps, in an HttpOnly cookie - and stores a `SessionRecord` under the SHA-256 of that id, so
a copy of the store holds no usable session. Each request with the cookie finds the session
(`resolve`) and then checks its token and the token's whole chain, exactly as a bearer token
is checked: the session ends when its token is revoked or expires (or any token it was
minted from is), at its own `expires` (never after the token's, and at most `MAX_AGE` after
sign-in), and when the browser signs out (`end`). Nothing is fanned out on revocation: the
check on every request is what ends it.

Each session also holds a CSRF token (`csrf`), which every form and every cookie-
authenticated POST must carry (`web.app` checks it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from lambdasette.auth import tokens
from lambdasette.auth.tokens import SessionRecord, TokenRecord, TokenStore
from lambdasette.errors import InvalidToken

# A working day: long enough not to be a nuisance, short enough that a forgotten browser
# does not stay signed in for the life of a long-lived token.
MAX_AGE = 12 * 3600
# What `secrets.token_urlsafe(32)` makes; anything else in the cookie is not ours.
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def session_key(session_id: str) -> str:
    """What the store keys a session by: the SHA-256 of its id."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def well_formed(session_id: str | None) -> bool:
    """Could this cookie value be a session id of ours? (No store lookup for junk.)"""
    return bool(session_id) and _SESSION_ID.match(session_id or "") is not None


def start(store: TokenStore, record: TokenRecord, now: int | None = None) -> tuple[str, SessionRecord]:
    """A new session acting as the (already verified) token `record`: the session id for the
    cookie, and the stored record. It ends at `MAX_AGE` from now, or when the token expires
    if that is sooner (a token never outlives the tokens it was minted from)."""
    now = int(time.time()) if now is None else now
    expires = now + MAX_AGE
    if record.expires is not None:
        expires = min(expires, record.expires)
    session_id = secrets.token_urlsafe(32)
    session = SessionRecord(key=session_key(session_id), token_id=record.id,
                            csrf=secrets.token_urlsafe(32), created=now, expires=expires,
                            ancestors=list(record.ancestors))
    store.put_session(session)
    return session_id, session


def resolve(store: TokenStore, session_id: str,
            now: int | None = None) -> tuple[SessionRecord, TokenRecord] | None:
    """The session and its token, both valid now; None when the session is unknown, has
    ended, or its token (or chain) is no longer valid. Two reads: the session, then one
    batch of its token and chain."""
    if not well_formed(session_id):
        return None
    now = int(time.time()) if now is None else now
    session = store.get_session(session_key(session_id))
    if session is None or session.expired(now):
        return None
    try:
        record = tokens.verify_id(store, session.token_id, session.ancestors, now)
    except InvalidToken:
        return None
    return session, record


def end(store: TokenStore, session_id: str) -> None:
    """Sign out: the session is gone from the store (its cookie is cleared by the caller)."""
    if well_formed(session_id):
        store.delete_session(session_key(session_id))


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token with what a request carried."""
    return bool(given) and hmac.compare_digest(expected.encode("utf-8"), (given or "").encode("utf-8"))
