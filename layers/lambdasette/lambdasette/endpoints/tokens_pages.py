"""The API tokens pages, for a signed-in browser: the list (`GET /-/api/tokens`), the create
form (`GET /-/api/tokens/create`, posted to `/-/api/tokens`), the new secret shown once, a
page per token (`GET /-/api/tokens/<id>`) and revoking it (a form posted to
`/-/api/tokens/<id>/-/revoke`).

Every rule is the token API's own (`endpoints.tokens`: who may manage which tokens, what a
new token may hold and for how long): these pages only turn forms into its arguments and
its answers into HTML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from lambdasette.args import Args
from lambdasette.auth.actions import actions_at
from lambdasette.endpoints import tokens as token_api
from lambdasette.errors import ApiError
from lambdasette.tilde import tilde_decode, tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.html import render
from lambdasette.web.humanize import relative, restrictions, timestamp

PAGE_SIZE = 25
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def row(shown: dict[str, Any], now: int) -> dict[str, Any]:
    """A token as the pages show it: the token API's view plus readable times."""
    return {
        **shown,
        "restrictions_partial": shown.get("restrictions_partial", False),
        "restriction_lines": restrictions(shown["restrictions"]),
        "created_text": relative(shown["created"], now),
        "last_used_text": relative(shown["last_used"], now),
        "expires_text": relative(shown["expires"], now, never="never"),
        "ended_text": relative(shown["ended"], now, never="") if shown.get("ended") else "",
        "created_at": timestamp(shown["created"]),
        "last_used_at": timestamp(shown["last_used"]),
        "expires_at": timestamp(shown["expires"]),
        "ended_at": timestamp(shown.get("ended")),
    }


def list_page(ctx: Context) -> Response:
    """`GET /-/api/tokens` for a browser: the tokens the signer may manage, newest first,
    `PAGE_SIZE` a page (`?page=N`); root's unrestricted token sees everyone's (`?actor=`)."""
    caller = token_api.caller_of(ctx)
    wanted = ctx.args.get("actor") or None
    listed = token_api.listing(caller, wanted)
    listed.reverse()
    now = int(time.time())
    try:
        number = max(int(ctx.args.get("page") or "1"), 1)
    except ValueError:
        raise ApiError(400, "page must be a whole number") from None
    pages = max((len(listed) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    number = min(number, pages)
    chunk = listed[(number - 1) * PAGE_SIZE: number * PAGE_SIZE]

    def page_url(n: int) -> str:
        return "/-/api/tokens?" + Args([("actor", wanted)] if wanted else []).replaced(
            [("page", str(n))]).query_string()

    return render(ctx, "tokens.html", {
        "tokens": [row(shown, now) for _, shown in chunk],
        "total": len(listed), "page": number, "pages": pages,
        "prev_url": page_url(number - 1) if number > 1 else None,
        "next_url": page_url(number + 1) if number < pages else None,
        "everyone": caller.everyone, "wanted": wanted or "",
        "json_url": "/-/api/tokens.json" + (f"?{Args([('actor', wanted)]).query_string()}" if wanted else ""),
    })


@dataclass
class Choice:
    """One checkbox of the create form: the form value, what it grants, and whether it is ticked."""

    value: str
    action: str
    label: str
    checked: bool = False


@dataclass
class Level:
    """The checkboxes for one place: the instance, a database or a table."""

    name: str
    choices: list[Choice] = field(default_factory=list)
    tables: list[Level] = field(default_factory=list)


def choices(ctx: Context, ticked: set[str]) -> tuple[Level, list[Level]]:
    """What the signer may put in a token's restrictions: the actions it may do itself
    (restrictions included) over the instance, each database and each table it may see."""
    ds, actor = ctx.ds, ctx.actor
    instance = Level("instance", [
        Choice(f"a:{a}", a, f"{a} everywhere", f"a:{a}" in ticked)
        for a in actions_at("instance") if ds.can(actor, a)
    ])
    databases = []
    for name in ds.database_names():
        db = tilde_encode(name)
        level = Level(name, [
            Choice(f"d:{db}:{a}", a, f"{a} on database {name}", f"d:{db}:{a}" in ticked)
            for a in actions_at("database") if ds.can(actor, a, name)
        ])
        _, schema = ctx.open(name)
        for table in sorted(schema.tables.values(), key=lambda t: t.name.lower()):
            if table.hidden or ds.table_config(name, table.name).hidden:
                continue  # FTS index tables and the like: the instance-wide and database boxes cover them
            tb = tilde_encode(table.name)
            offered = actions_at("table", view=table.is_view)
            table_level = Level(table.name, [
                Choice(f"r:{db}:{tb}:{a}", a, f"{a} on {name}/{table.name}", f"r:{db}:{tb}:{a}" in ticked)
                for a in offered if ds.can(actor, a, name, table.name)
            ])
            if table_level.choices:
                level.tables.append(table_level)
        if level.choices or level.tables:
            databases.append(level)
    return instance, databases


def parse_restrictions(values: list[str]) -> dict[str, Any]:
    """The ticked checkboxes as Datasette's `_r` shape (names tilde-encoded in the values,
    so a `:` in a name cannot split a value wrongly); 400 for a value no form makes."""
    out: dict[str, Any] = {}
    for value in values:
        parts = value.split(":")
        try:
            if parts[0] == "a" and len(parts) == 2:
                out.setdefault("a", []).append(parts[1])
            elif parts[0] == "d" and len(parts) == 3:
                out.setdefault("d", {}).setdefault(tilde_decode(parts[1]), []).append(parts[2])
            elif parts[0] == "r" and len(parts) == 4:
                db, table = tilde_decode(parts[1]), tilde_decode(parts[2])
                out.setdefault("r", {}).setdefault(db, {}).setdefault(table, []).append(parts[3])
            else:
                raise ValueError(value)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Invalid restriction in the form") from None
    return out


def parse_expiry(form: Args) -> int | None:
    """`expires_after` in seconds from the form: None for never; 400 for a bad amount."""
    if form.get("expiry", "never") != "after":
        return None
    amount, unit = (form.get("expiry_amount") or "").strip(), form.get("expiry_unit") or ""
    if unit not in UNITS or not (amount.isascii() and amount.isdigit() and 0 < len(amount) < 10) \
            or int(amount) < 1:
        raise ApiError(400, "Expiry: give a whole number of at least 1, in minutes, hours or days")
    return int(amount) * UNITS[unit]


def create_form(ctx: Context, form: Args | None = None, *, message: str | None = None,
                status: int = 200) -> Response:
    """`GET /-/api/tokens/create` for a browser: the form (with what was entered, and the
    problem, when a post of it is refused)."""
    caller = token_api.caller_of(ctx)
    form = form or Args()
    ticked = set(form.getlist("restrict"))
    instance, databases = choices(ctx, ticked)
    now = int(time.time())
    limit = caller.token.expires
    return render(ctx, "token_create.html", {
        "instance": instance, "databases": databases, "message": message,
        "description": form.get("description") or "",
        "expiry": form.get("expiry") or "never", "expiry_amount": form.get("expiry_amount") or "1",
        "expiry_unit": form.get("expiry_unit") or "hours",
        "scope": form.get("scope") or "all",
        "held": restrictions(caller.token.restrictions) if caller.token.restrictions else None,
        "limit_text": f"{timestamp(limit)} ({relative(limit, now)})" if limit else None,
    }, status=status)


def create(ctx: Context) -> Response:
    """`POST /-/api/tokens` from the form: mint the token under the token API's rules and
    show its secret, once (the answer is never stored: `no-store`, and no redirect puts it
    in a URL)."""
    assert ctx.form is not None
    caller = token_api.caller_of(ctx)
    form = ctx.form
    try:
        restricted = form.get("scope") == "restricted"
        raw = parse_restrictions(form.getlist("restrict")) if restricted else None
        if restricted and not raw:
            raise ApiError(400, "Tick at least one action, or let the token do everything you can")
        secret, _, shown = token_api.mint(caller, raw, parse_expiry(form), form.get("description"))
    except ApiError as exc:
        if exc.status >= 500:
            raise
        return create_form(ctx, form, message="; ".join(exc.messages), status=exc.status)
    return render(ctx, "token_created.html", {
        "secret": secret, "token": row(shown, int(time.time())),
        "try_url": ctx.absolute(first_readable_path(raw)),
    })


def first_readable_path(raw: dict[str, Any] | None) -> str:
    """A URL the new token can read, for the page's example: the instance when it may list
    it, else its first database, else its first table (a token narrowed to one table gets
    403 for `/.json`)."""
    if not raw or "view-instance" in raw.get("a", []) or "vi" in raw.get("a", []) or not (
            raw.get("d") or raw.get("r")):
        return "/.json"
    if raw.get("d"):
        return f"/{tilde_encode(next(iter(raw['d'])))}.json"
    for database, tables in raw["r"].items():
        for table in tables:
            return f"/{tilde_encode(database)}/{tilde_encode(table)}.json"
    return "/.json"


def token_page(ctx: Context) -> Response:
    """`GET /-/api/tokens/<id>` for a browser: one token the signer may manage, with its
    revoke button."""
    caller = token_api.caller_of(ctx)
    record = caller.record(ctx.path_params["token_id"])
    now = int(time.time())
    shown = caller.shown(record, token_api.chain_of(caller, record), now)
    return render(ctx, "token.html", {"token": row(shown, now),
                                      "own": ctx.token is not None and ctx.token.id == record.id})


def revoke(ctx: Context) -> Response:
    """`POST /-/api/tokens/<id>/-/revoke` from a token's page: revoke it (and every token
    minted from it), then show its page again."""
    token_id = ctx.path_params["token_id"]
    token_api.revoke_token(token_api.caller_of(ctx), token_id)
    return Response(b"", status_code=303, headers={"Location": f"/-/api/tokens/{tilde_encode(token_id)}"})
