"""The token API: `/-/api/tokens` to create and list, `/-/api/tokens/<id>` to show,
`/-/api/tokens/<id>/-/revoke` to revoke.

Every operation needs `create-token` on the calling token itself (its actor granted it, and its
restrictions, if any, include it). What a caller may manage - see, and revoke - depends on the
token it calls with:

- a token minted from another token, or one with restrictions: itself and the tokens minted
  from it (at any depth), never its actor's other tokens: those may hold more than it does;
- an unrestricted root of its chain (a token the CLI made, or `serve --root`'s): every token
  of its actor, and for the actor `root` every actor's tokens.

Tokens outside that are answered as missing (404), so their ids reveal nothing. In what is
shown, names of databases and tables the caller may not see are left out of restrictions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from lambdasette.auth import tokens
from lambdasette.auth.actions import normalize_restrictions, restrictions_within
from lambdasette.auth.permissions import ROOT
from lambdasette.errors import ApiError, InvalidToken, reject_unknown_keys
from lambdasette.names import fold
from lambdasette.web.body import parse_object
from lambdasette.web.context import Context
from lambdasette.web.responses import json_response

TOKEN_BODY_LIMIT = 64 * 1024
CREATE_KEYS = {"restrictions", "expires_after", "description"}
NO_STORE = {"Cache-Control": "private, no-store"}


@dataclass
class Caller:
    """Who calls the token API, and which tokens it may manage."""

    ctx: Context
    store: tokens.TokenStore
    actor: dict[str, Any]
    token: tokens.TokenRecord

    @property
    def everyone(self) -> bool:
        """An unrestricted root-of-chain token of `root`: every actor's tokens."""
        return self.actor_wide and self.token.actor == ROOT

    @property
    def actor_wide(self) -> bool:
        """An unrestricted root of its chain: every token of its actor."""
        return not self.token.restrictions and not self.token.ancestors

    def manages(self, record: tokens.TokenRecord) -> bool:
        if self.everyone:
            return True
        if record.actor != self.token.actor:
            return False
        return self.actor_wide or record.id == self.token.id or self.token.id in record.ancestors

    def shown(self, record: tokens.TokenRecord, known: dict[str, tokens.TokenRecord],
              now: int) -> dict[str, Any]:
        """A record as this caller may see it; `known`: records by id, for its chain."""
        out = record.public()
        out["status"] = tokens.chain_status(record, known, now)
        out["ended"] = tokens.ended(record, known, now)
        parent = known.get(record.parent) if record.parent else None
        if parent is None or not self.manages(parent):
            out["parent"] = None  # a token the caller may not see: not even its id
        restrictions, partial = self.visible(record.restrictions)
        out["restrictions"] = restrictions
        if partial:
            out["restrictions_partial"] = True
        return out

    def visible(self, restrictions: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """`restrictions` without the databases and tables the caller may not see (neither
        view nor name in its own restrictions), and whether any were left out."""
        ds, actor = self.ctx.ds, self.actor
        own = self.token.restrictions
        own_dbs = set(own.get("d", {})) | set(own.get("r", {}))
        own_tables = {(db, fold(t)) for db, tables in own.get("r", {}).items() for t in tables}
        out: dict[str, Any] = {}
        partial = False
        if "a" in restrictions:
            out["a"] = restrictions["a"]
        for db, actions in restrictions.get("d", {}).items():
            if db in own_dbs or ds.can(actor, "view-database", db):
                out.setdefault("d", {})[db] = actions
            else:
                partial = True
        for db, per_table in restrictions.get("r", {}).items():
            for table, actions in per_table.items():
                if (db, fold(table)) in own_tables or ds.can(actor, "view-table", db, table):
                    out.setdefault("r", {}).setdefault(db, {})[table] = actions
                else:
                    partial = True
        return out, partial

    def record(self, token_id: str) -> tokens.TokenRecord:
        """A token this caller may manage, by id; 404 for any other (or none) - an id that
        cannot be one of ours is not looked up."""
        record = self.store.get(token_id) if tokens.valid_id(token_id) else None
        if record is None or not self.manages(record):
            raise ApiError(404, "Token not found")
        return record


def caller_of(ctx: Context) -> Caller:
    """The token store and the signed-in caller: 404 without a store, 401 when anonymous
    (even on a public instance: tokens are always someone's), 403 without create-token.
    Every token operation starts here, in the JSON API and on the tokens pages."""
    if ctx.ds.tokens is None:
        raise ApiError(404, "API tokens are not configured on this instance")
    if ctx.actor is None or ctx.token is None:
        raise ApiError(401, "Authentication required: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    ctx.ds.require(ctx.actor, "create-token", message="Permission denied: need create-token")
    return Caller(ctx, ctx.ds.tokens, ctx.actor, ctx.token)


def chain_of(caller: Caller, record: tokens.TokenRecord) -> dict[str, tokens.TokenRecord]:
    """`record` and the tokens it was minted from, by id (what `Caller.shown` needs)."""
    known = caller.store.get_many(record.ancestors) if record.ancestors else {}
    known[record.id] = record
    return known


def create(ctx: Context) -> Response:
    """`POST /-/api/tokens` (or `/-/api/tokens/create`): mint a token for the caller, from
    the caller's token: it is valid only while that one (and its own chain) is."""
    if len(ctx.body) > TOKEN_BODY_LIMIT:
        raise ApiError(413, f"Request body exceeded maximum size of {TOKEN_BODY_LIMIT} bytes")
    caller = caller_of(ctx)
    data = parse_object(ctx.body, empty={})
    reject_unknown_keys(data, CREATE_KEYS)
    secret, _, shown = mint(caller, data.get("restrictions"), data.get("expires_after"),
                            data.get("description"))
    return json_response({"ok": True, "token": secret, **shown}, status=201, headers=NO_STORE)


def mint(caller: Caller, raw_restrictions: Any, expires_after: Any,
         description: Any = None) -> tuple[str, tokens.TokenRecord, dict[str, Any]]:
    """Every rule of creating a token, for the JSON API and the tokens page alike: the new
    token's secret (shown once), its record, and the record as the caller sees it. ApiError
    for what may not be made: a token minted with a token holds at most what that token
    holds, for no longer."""
    try:
        restrictions = normalize_restrictions(raw_restrictions)
    except ValueError as exc:
        raise ApiError(400, f"Invalid restrictions: {exc}") from None
    if expires_after is not None and (
        isinstance(expires_after, bool) or not isinstance(expires_after, int) or expires_after <= 0
    ):
        raise ApiError(400, "expires_after must be a positive whole number of seconds")
    held = caller.token.restrictions
    if held:
        restrictions = restrictions or dict(held)
        wider = restrictions_within(restrictions, held)
        if wider:
            raise ApiError(403, "A token cannot grant more than the token that creates it: "
                           + ", ".join(wider))
    now = int(time.time())
    if caller.token.expires is not None:
        remaining = caller.token.expires - now
        if remaining <= 0:  # it expired while this request was being handled
            raise InvalidToken("Token has expired")
        if expires_after is None:
            expires_after = remaining
        elif expires_after > remaining:
            raise ApiError(403, f"expires_after can be at most {remaining} seconds: "
                           "the token that creates it expires then")
    try:
        secret, record = tokens.new_record(caller.token.actor, restrictions or None, expires_after,
                                           now=now, parent=caller.token, description=description)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    caller.ctx.recheck()  # the caller's token is still valid right before the new one is stored
    caller.store.put(record)
    shown = caller.shown(record, {caller.token.id: caller.token, record.id: record}, now)
    return secret, record, shown


def listing(caller: Caller, wanted: str | None) -> list[tuple[tokens.TokenRecord, dict[str, Any]]]:
    """The tokens the caller may manage (root's unrestricted tokens: every actor's, or
    `wanted`'s), oldest first, each with how the caller sees it; 403 for another actor's."""
    if not caller.everyone:
        if wanted not in (None, caller.token.actor):
            raise ApiError(403, "You may list only your own tokens")
        wanted = caller.token.actor
    now = int(time.time())
    records = caller.store.list(wanted)
    known = {r.id: r for r in records}  # a chain is one actor's, so all of it is here
    return [(r, caller.shown(r, known, now)) for r in records if caller.manages(r)]


def list_tokens(ctx: Context) -> Response:
    """`GET /-/api/tokens`: the tokens the caller may manage (root's unrestricted tokens:
    every actor's, or `?actor=`'s)."""
    shown = [s for _, s in listing(caller_of(ctx), ctx.args.get("actor"))]
    return json_response({"ok": True, "tokens": shown}, headers=NO_STORE)


def show(ctx: Context) -> Response:
    """`GET /-/api/tokens/<id>`: one token the caller may manage."""
    caller = caller_of(ctx)
    record = caller.record(ctx.path_params["token_id"])
    shown = caller.shown(record, chain_of(caller, record), int(time.time()))
    return json_response({"ok": True, "token": shown}, headers=NO_STORE)


def revoke(ctx: Context) -> Response:
    """`POST /-/api/tokens/<id>/-/revoke`: revoke a token the caller may manage, and so every
    token minted from it."""
    shown = revoke_token(caller_of(ctx), ctx.path_params["token_id"])
    return json_response({"ok": True, "token": shown}, headers=NO_STORE)


def revoke_token(caller: Caller, token_id: str) -> dict[str, Any]:
    """Revoke a token the caller may manage (404 for any other): the token as shown after."""
    caller.record(token_id)
    caller.ctx.recheck()
    caller.store.revoke(token_id)
    record = caller.store.get(token_id)
    if record is None:
        raise ApiError(404, "Token not found")
    return caller.shown(record, chain_of(caller, record), int(time.time()))
