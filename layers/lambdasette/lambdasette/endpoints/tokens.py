"""The token API: `/-/api/tokens` to create and list, `/-/api/tokens/<id>` to show,
`/-/api/tokens/<id>/-/revoke` to revoke. Callers see and revoke their own tokens; root all."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lambdasette.auth import tokens
from lambdasette.auth.actions import normalize_restrictions, restrictions_within
from lambdasette.auth.permissions import ROOT
from lambdasette.errors import ApiError
from lambdasette.instance import Lambdasette
from lambdasette.web.body import read_object
from lambdasette.web.responses import json_response

PREFIX = "/-/api/tokens"
TOKEN_BODY_LIMIT = 64 * 1024
CREATE_KEYS = {"restrictions", "expires_after"}


def handles(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _status(record: tokens.TokenRecord, now: int) -> str:
    if record.revoked:
        return "revoked"
    if record.expires is not None and now >= record.expires:
        return "expired"
    return "active"


def _shown(record: tokens.TokenRecord, now: int) -> dict[str, Any]:
    return {**record.public(), "status": _status(record, now)}


async def dispatch(ds: Lambdasette, request: Request, path: str, actor: dict[str, Any] | None) -> Response:
    if ds.tokens is None:
        raise ApiError(404, "API tokens are not configured on this instance")
    if actor is None:
        raise ApiError(401, "Authentication required: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    rest = path[len(PREFIX):].strip("/")
    parts = rest.split("/") if rest else []
    method = request.method
    if not parts or parts == ["create"]:
        if method == "POST":
            return await create(ds, request, actor)
        if method in ("GET", "HEAD") and not parts:
            return list_tokens(ds, request, actor)
    elif len(parts) == 1 and method in ("GET", "HEAD"):
        return show(ds, parts[0], actor)
    elif len(parts) == 3 and parts[1:] == ["-", "revoke"] and method == "POST":
        return revoke(ds, parts[0], actor)
    else:
        raise ApiError(404, "Not found")
    raise ApiError(405, "Method not allowed")


async def create(ds: Lambdasette, request: Request, actor: dict[str, Any]) -> Response:
    data = await read_object(request, TOKEN_BODY_LIMIT, empty={})
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
    secret, record = tokens.create(ds.tokens, actor["id"], restrictions or None, expires_after)
    return json_response({"ok": True, "token": secret, **_shown(record, now)}, status=201)


def list_tokens(ds: Lambdasette, request: Request, actor: dict[str, Any]) -> Response:
    wanted = request.query_params.get("actor")
    if actor["id"] != ROOT:
        if wanted not in (None, actor["id"]):
            raise ApiError(403, "You may list only your own tokens")
        wanted = actor["id"]
    now = int(time.time())
    shown = [_shown(r, now) for r in ds.tokens.list(wanted)]
    return json_response({"ok": True, "tokens": shown}, headers={"Cache-Control": "private, no-store"})


def _own(ds: Lambdasette, token_id: str, actor: dict[str, Any], verb: str) -> tokens.TokenRecord:
    record = ds.tokens.get(token_id)
    if record is None:
        raise ApiError(404, "Token not found")
    if actor["id"] != ROOT and record.actor != actor["id"]:
        raise ApiError(403, f"You may {verb} only your own tokens")
    return record


def show(ds: Lambdasette, token_id: str, actor: dict[str, Any]) -> Response:
    record = _own(ds, token_id, actor, "see")
    return json_response({"ok": True, "token": _shown(record, int(time.time()))},
                         headers={"Cache-Control": "private, no-store"})


def revoke(ds: Lambdasette, token_id: str, actor: dict[str, Any]) -> Response:
    _own(ds, token_id, actor, "revoke")
    ds.tokens.revoke(token_id)
    record = ds.tokens.get(token_id)
    if record is None:
        raise ApiError(404, "Token not found")
    return json_response({"ok": True, "token": _shown(record, int(time.time()))})
