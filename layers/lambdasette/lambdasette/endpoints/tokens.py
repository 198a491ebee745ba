"""The token API: `/-/api/tokens` to create and list, `/-/api/tokens/<id>` to show,
`/-/api/tokens/<id>/-/revoke` to revoke. Callers see and revoke their own tokens; root all."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from lambdasette.auth import tokens
from lambdasette.auth.actions import normalize_restrictions, restrictions_within
from lambdasette.auth.permissions import ROOT
from lambdasette.errors import ApiError
from lambdasette.web.body import parse_object
from lambdasette.web.context import Context
from lambdasette.web.responses import json_response

TOKEN_BODY_LIMIT = 64 * 1024
CREATE_KEYS = {"restrictions", "expires_after"}


def _status(record: tokens.TokenRecord, now: int) -> str:
    if record.revoked:
        return "revoked"
    if record.expires is not None and now >= record.expires:
        return "expired"
    return "active"


def _shown(record: tokens.TokenRecord, now: int) -> dict[str, Any]:
    return {**record.public(), "status": _status(record, now)}


def _caller(ctx: Context) -> tuple[tokens.TokenStore, dict[str, Any]]:
    """The token store and the signed-in caller: 404 without a store, 401 when anonymous
    (even on a public instance: tokens are always someone's)."""
    if ctx.ds.tokens is None:
        raise ApiError(404, "API tokens are not configured on this instance")
    if ctx.actor is None:
        raise ApiError(401, "Authentication required: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    return ctx.ds.tokens, ctx.actor


def create(ctx: Context) -> Response:
    """`POST /-/api/tokens` (or `/-/api/tokens/create`): mint a token for the caller."""
    store, actor = _caller(ctx)
    ds = ctx.ds
    if len(ctx.body) > TOKEN_BODY_LIMIT:
        raise ApiError(413, f"Request body exceeded maximum size of {TOKEN_BODY_LIMIT} bytes")
    data = parse_object(ctx.body, empty={})
    unknown = sorted(set(data) - CREATE_KEYS)
    if unknown:
        raise ApiError(400, f"Invalid keys: {', '.join(unknown)}")
    ds.require(actor, "create-token", message="Permission denied: need create-token")
    try:
        restrictions = normalize_restrictions(data.get("restrictions"))
    except ValueError as exc:
        raise ApiError(400, f"Invalid restrictions: {exc}") from None
    expires_after = data.get("expires_after")
    if expires_after is not None and (
        isinstance(expires_after, bool) or not isinstance(expires_after, int) or expires_after <= 0
    ):
        raise ApiError(400, "expires_after must be a positive whole number of seconds")
    # A token minted with a token holds at most what that token holds, for no longer.
    held = actor.get("_r")
    if held:
        restrictions = restrictions or dict(held)
        wider = restrictions_within(restrictions, held)
        if wider:
            raise ApiError(403, "A token cannot grant more than the token that creates it: "
                           + ", ".join(wider))
    now = int(time.time())
    held_until = actor.get("token_expires")
    if held_until is not None:
        remaining = held_until - now
        if expires_after is None:
            expires_after = remaining
        elif expires_after > remaining:
            raise ApiError(403, f"expires_after can be at most {remaining} seconds: "
                           "the token that creates it expires then")
    secret, record = tokens.create(store, actor["id"], restrictions or None, expires_after)
    return json_response({"ok": True, "token": secret, **_shown(record, now)}, status=201)


def list_tokens(ctx: Context) -> Response:
    """`GET /-/api/tokens`: the caller's tokens (root: everyone's, or `?actor=`)."""
    store, actor = _caller(ctx)
    wanted = ctx.args.get("actor")
    if actor["id"] != ROOT:
        if wanted not in (None, actor["id"]):
            raise ApiError(403, "You may list only your own tokens")
        wanted = actor["id"]
    now = int(time.time())
    shown = [_shown(r, now) for r in store.list(wanted)]
    return json_response({"ok": True, "tokens": shown}, headers={"Cache-Control": "private, no-store"})


def _own(store: tokens.TokenStore, token_id: str, actor: dict[str, Any], verb: str) -> tokens.TokenRecord:
    record = store.get(token_id)
    if record is None:
        raise ApiError(404, "Token not found")
    if actor["id"] != ROOT and record.actor != actor["id"]:
        raise ApiError(403, f"You may {verb} only your own tokens")
    return record


def show(ctx: Context) -> Response:
    """`GET /-/api/tokens/<id>`: one of the caller's tokens."""
    store, actor = _caller(ctx)
    record = _own(store, ctx.path_params["token_id"], actor, "see")
    return json_response({"ok": True, "token": _shown(record, int(time.time()))},
                         headers={"Cache-Control": "private, no-store"})


def revoke(ctx: Context) -> Response:
    """`POST /-/api/tokens/<id>/-/revoke`: revoke one of the caller's tokens."""
    store, actor = _caller(ctx)
    token_id = ctx.path_params["token_id"]
    _own(store, token_id, actor, "revoke")
    store.revoke(token_id)
    record = store.get(token_id)
    if record is None:
        raise ApiError(404, "Token not found")
    return json_response({"ok": True, "token": _shown(record, int(time.time()))})
