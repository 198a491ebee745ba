"""The pages beside the JSON: content negotiation, signing in and out, sessions acting as
their tokens, CSRF, the tokens pages, static files - and every value escaped, with a CSP that
allows no inline script (names like `<script>` and `"'><img>` throughout)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import sessions, tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage
from lambdasette.tilde import tilde_encode

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SCRIPT = "<script>alert(1)</script>"
IMG = "\"'><img src=x onerror=alert(1)>"
HOSTILE_DB = "\"'><img src=x>"


def hostile_db(folder: Path) -> Path:
    """A database whose name, table, column and values are all markup."""
    path = folder / f"{HOSTILE_DB}.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(f'create table "{SCRIPT}" (id integer primary key, "{IMG.replace(chr(34), chr(34) * 2)}" text)')
        conn.execute(f'insert into "{SCRIPT}" values (1, ?)', (SCRIPT,))
        conn.execute(f'insert into "{SCRIPT}" values (2, ?)', (IMG,))
        conn.execute("create table plain (id integer primary key, name text)")
        conn.executemany("insert into plain values (?, ?)", [(i, f"row {i}") for i in range(1, 6)])
    conn.close()
    return path


@dataclass
class Env:
    client: TestClient
    store: LocalTokenStore
    ds: Lambdasette
    root: str
    root_record: tokens.TokenRecord

    def sign_in(self, token: str | None = None, client: TestClient | None = None) -> str:
        """Sign `client` in with `token` (root's by default); the session's CSRF token."""
        c = client or self.client
        form = c.get("/-/login", headers=BROWSER)
        assert form.status_code == 200
        r = c.post("/-/login", data={"token": token or self.root, "csrf_token": c.cookies["ls_csrf"],
                                     "next": "/"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        page = c.get("/-/login", headers=BROWSER)
        return csrf_of(page.text)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def make_env(folder: Path, fixture_path: Path, *, public: bool = False, https: bool = False) -> Env:
    store = LocalTokenStore(folder / "tokens.db")
    policy = Policy.parse({"permissions": {"create-token": {"id": ["alice", "root"]}}})
    ds = Lambdasette(storage=LocalStorage([fixture_path, hostile_db(folder)]), options=Options(public=public),
                     tokens=store, policy=policy)
    root, record = tokens.create(store, "root")
    client = TestClient(create_app(ds), base_url="https://localhost" if https else "http://localhost")
    return Env(client, store, ds, root, record)


@pytest.fixture
def env(fixture_path: Path, tmp_path: Path) -> Iterator[Env]:
    e = make_env(tmp_path, fixture_path)
    with e.client:
        yield e


class Tags(HTMLParser):
    """Every element and attribute of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def assert_safe_page(r) -> None:
    """A page: HTML, the page headers, no inline script or style, no markup from the data."""
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "private, no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert SCRIPT not in r.text and "<img" not in r.text
    parsed = Tags()
    parsed.feed(r.text)
    assert not parsed.script_text, "no inline script"
    for tag, attrs in parsed.tags:
        assert tag not in ("img", "style", "iframe", "object", "embed", "base"), tag
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/-/static/"), attrs
        for a in ("href", "src", "action"):
            value = (attrs.get(a) or "").strip().lower()
            assert not value.startswith(("javascript:", "data:", "//")), (tag, attrs)
    # No token anywhere but where a new one is shown, once.
    text = re.sub(r'<code id="secret">lstok_[A-Za-z0-9_-]+</code>', "", r.text, count=1)
    assert "lstok_" not in text.replace('placeholder="lstok_..."', "").replace("(lstok_...)", "")


# -- negotiation -------------------------------------------------------------------------------

def test_extensionless_urls_answer_html_to_browsers_and_json_to_everyone_else(env: Env) -> None:
    c = env.client
    auth = {"Authorization": f"Bearer {env.root}"}
    for path in ["/", "/fixtures", "/fixtures/dogs", "/fixtures/dogs?breed=Corgi", "/fixtures/dogs/3",
                 "/fixtures?sql=select+1", "/fixtures/compound/a,1", "/fixtures/old_dogs"]:
        page = c.get(path, headers={**BROWSER, **auth})
        assert page.status_code == 200, (path, page.text)
        assert_safe_page(page)
        for accept in (None, "*/*", "application/json", "application/json, text/html"):
            api = c.get(path, headers={**auth, **({"Accept": accept} if accept else {})})
            assert api.headers["content-type"].startswith("application/json"), (path, accept)
            assert "Accept" in api.headers["vary"]
        # .json never changes, whatever the client asks for.
        dot = path.replace("?", ".json?", 1) if "?" in path else (path + ".json" if path != "/" else "/.json")
        as_browser, as_api = c.get(dot, headers={**BROWSER, **auth}), c.get(dot, headers=auth)
        assert as_browser.headers["content-type"] == as_api.headers["content-type"]
        assert {**as_browser.json(), "query_ms": 0} == {**as_api.json(), "query_ms": 0}


def test_the_table_page_shows_that_view_and_links_its_json_and_csv(env: Env) -> None:
    c = env.client
    env.sign_in()
    r = c.get("/fixtures/dogs?breed=Corgi&_size=3&_sort_desc=age", headers=BROWSER)
    html = r.text
    assert 'href="/fixtures/dogs.json?breed=Corgi&amp;_size=3&amp;_sort_desc=age"' in html
    assert 'href="/fixtures/dogs.csv?breed=Corgi&amp;_size=3&amp;_sort_desc=age"' in html
    assert html.count("<tr>") == 4  # the header and three rows
    api = c.get("/fixtures/dogs.json?breed=Corgi&_size=3&_sort_desc=age").json()
    for row in api["rows"]:
        assert f'<a href="/fixtures/dogs/{row[0]}">{row[0]}</a>' in html
    nxt = re.search(r'href="([^"]+)" id="next-page"', html).group(1).replace("&amp;", "&")
    assert nxt == api["next_url"].replace("/dogs.json?", "/dogs?")  # the next page, as a page
    second = c.get(nxt, headers=BROWSER)
    assert second.status_code == 200 and "First page" in second.text
    # Foreign keys link to the row they point at; the count and the filter are told.
    assert 'href="/fixtures/owners/' in html
    count = re.search(r'<p id="count">([^<]+)</p>', html).group(1)
    assert count.startswith(f"{api['filtered_table_rows_count']} rows") and "Corgi" in count


def test_every_value_is_escaped(env: Env) -> None:
    c = env.client
    csrf = env.sign_in()
    db, table = tilde_encode(HOSTILE_DB), tilde_encode(SCRIPT)
    pages = ["/", f"/{db}", f"/{db}/{table}", f"/{db}/{table}/1", f"/{db}/{table}/2",
             f"/{db}?sql=select+'{SCRIPT}'+as+x", "/-/api/tokens", "/-/api/tokens/create", "/-/api",
             f"/{db}/{tilde_encode(IMG)}", f"/-/login?next=/{IMG}", f"/{db}/{table}?_facet={tilde_encode(IMG)}"]
    for path in pages:
        r = c.get(path, headers=BROWSER)
        assert r.status_code in (200, 400, 403, 404), (path, r.status_code)
        assert_safe_page(r)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in c.get(f"/{db}/{table}", headers=BROWSER).text
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in c.get(f"/{db}/{table}", headers=BROWSER).text
    # A token described with markup, shown on the list, its page and the page that shows it once.
    r = c.post("/-/api/tokens", data={"csrf_token": csrf, "description": IMG + SCRIPT, "scope": "restricted",
                                      "restrict": [f"r:{db}:{table}:view-table"]})
    assert_safe_page(r)
    assert "view-table on &#34;&#39;&gt;&lt;img src=x&gt;/&lt;script&gt;" in r.text
    token_id = re.search(r'id="token-link">([^<]+)<', r.text).group(1)
    for path in ["/-/api/tokens", f"/-/api/tokens/{token_id}"]:
        assert_safe_page(c.get(path, headers=BROWSER))
    # The next= of the sign-in form stays on this site, escaped.
    r = c.get("/-/login?next=//evil.example/x", headers=BROWSER)
    assert 'name="next" value="/"' in r.text


def test_errors_are_pages_for_browsers_and_json_for_the_api(env: Env) -> None:
    c = env.client
    env.sign_in()
    r = c.get("/fixtures/nope", headers=BROWSER)
    assert r.status_code == 404 and "Table not found" in r.text
    assert_safe_page(r)
    assert c.get("/fixtures/nope").json()["error"] == "Table not found"
    r = c.get("/fixtures/dogs?_size=-1", headers=BROWSER)
    assert r.status_code == 400
    assert_safe_page(r)


# -- signing in and out -------------------------------------------------------------------------

def test_a_private_instance_sends_browsers_to_sign_in_and_the_api_a_401(env: Env) -> None:
    c = env.client
    r = c.get("/fixtures/dogs?breed=Corgi", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "/-/login?next=%2Ffixtures%2Fdogs%3Fbreed%3DCorgi"
    api = c.get("/fixtures/dogs?breed=Corgi")
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    assert c.get("/-/login", headers=BROWSER).status_code == 200  # open
    assert c.get("/-/static/app.css").status_code == 200  # open
    assert c.get("/-/openapi.json").status_code == 401
    # Signing in brings the browser back where it was going.
    c.get("/-/login?next=%2Ffixtures%2Fdogs%3Fbreed%3DCorgi", headers=BROWSER)
    r = c.post("/-/login", data={"token": env.root, "csrf_token": c.cookies["ls_csrf"],
                                 "next": "/fixtures/dogs?breed=Corgi"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/fixtures/dogs?breed=Corgi"


def test_the_session_cookie(env: Env, fixture_path: Path, tmp_path: Path) -> None:
    c = env.client
    c.get("/-/login", headers=BROWSER)
    login_csrf = c.cookies["ls_csrf"]
    r = c.post("/-/login", data={"token": env.root, "csrf_token": login_csrf}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    session_id = c.cookies["ls_session"]
    assert f"ls_session={session_id};" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    assert f"Max-Age={sessions.MAX_AGE}" in cookie
    assert env.root not in cookie and env.root_record.id not in cookie  # opaque: never the token
    assert r.headers["location"] == "/"
    # The store keeps its hash, never the id.
    assert session_id not in (tmp_path / "tokens.db").read_bytes().decode("latin-1")
    # Over HTTPS the cookie is Secure.
    secure = make_env(tmp_path / "s", fixture_path, https=True) if (tmp_path / "s").mkdir() is None else None
    with secure.client as sc:
        sc.get("/-/login", headers=BROWSER)
        r = sc.post("/-/login", data={"token": secure.root, "csrf_token": sc.cookies["ls_csrf"]},
                    follow_redirects=False)
        assert "Secure" in r.headers["set-cookie"]


def test_a_session_acts_as_its_token(env: Env) -> None:
    c = env.client
    token, record = tokens.create(env.store, "alice", {"r": {"fixtures": {"dogs": ["vt"]}}, "a": ["ctk"]})
    env.sign_in(token)
    actor = c.get("/-/actor.json").json()["actor"]
    assert actor["id"] == "alice" and actor["token_id"] == record.id
    assert actor["_r"] == {"a": ["create-token"], "r": {"fixtures": {"dogs": ["view-table"]}}}
    assert c.get("/fixtures/dogs.json").status_code == 200
    assert c.get("/fixtures/owners.json").status_code == 403
    page = c.get("/fixtures/dogs", headers=BROWSER).text
    assert 'id="who-actor">alice<' in page and record.id in page
    # A bearer token always wins over the cookie.
    r = c.get("/-/actor.json", headers={"Authorization": f"Bearer {env.root}"})
    assert r.json()["actor"]["id"] == "root"
    # Every answer to a signed-in browser stays out of shared caches.
    assert c.get("/fixtures/dogs.json").headers["cache-control"] == "private, no-store"


def test_sessions_end_with_their_token_and_on_sign_out(env: Env) -> None:
    c = env.client
    token, record = tokens.create(env.store, "root", expires_after=3600)
    csrf = env.sign_in(token)
    assert c.get("/-/actor.json").json()["actor"]["token_id"] == record.id
    env.store.revoke(record.id)
    r = c.get("/fixtures", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith("/-/login")
    assert 'ls_session=""' in r.headers["set-cookie"]  # the ended session's cookie is cleared
    assert c.get("/fixtures.json").status_code == 401
    # Sign in again, then out: the session is gone, whatever the browser keeps sending.
    csrf = env.sign_in()
    session_id = c.cookies["ls_session"]
    r = c.post("/-/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and 'ls_session=""' in r.headers["set-cookie"]
    c.cookies.set("ls_session", session_id)
    assert c.get("/-/actor.json").status_code == 401
    assert env.store.get_session(sessions.session_key(session_id)) is None


def test_a_session_ends_when_its_token_expires(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    c = env.client
    token, record = tokens.create(env.store, "root", expires_after=120)
    env.sign_in(token)
    assert c.get("/-/actor.json").status_code == 200
    later = time.time() + 121
    monkeypatch.setattr(time, "time", lambda: later)
    assert c.get("/-/actor.json").status_code == 401


def test_a_bad_token_does_not_sign_in(env: Env) -> None:
    c = env.client
    c.get("/-/login", headers=BROWSER)
    for bad in ["nope", env.root + "x", "lstok_abc_def", ""]:
        r = c.post("/-/login", data={"token": bad, "csrf_token": c.cookies["ls_csrf"]}, follow_redirects=False)
        assert r.status_code == 401 and "ls_session" not in r.headers.get("set-cookie", ""), bad
        assert_safe_page(r)


def test_csrf(env: Env) -> None:
    c = env.client
    # The sign-in form: its cookie and its field must match (another site can set neither).
    c.get("/-/login", headers=BROWSER)
    r = c.post("/-/login", data={"token": env.root, "csrf_token": "forged-value-forged-value-forged-val"})
    assert r.status_code == 403 and "CSRF" in r.text
    csrf = env.sign_in()
    # Forms: without the session's token, or with another, nothing happens.
    before = len(env.store.list())
    other = csrf[:-1] + ("B" if csrf.endswith("A") else "A")
    for fields in ({}, {"csrf_token": "x"}, {"csrf_token": other}):
        r = c.post("/-/api/tokens", data={**fields, "description": "forged"})
        assert r.status_code == 403 and "CSRF" in r.text
    assert len(env.store.list()) == before
    # Another site's form is refused even with the token (Origin), and so is a cross-site fetch.
    r = c.post("/-/api/tokens", data={"csrf_token": csrf}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = c.post("/-/api/tokens", data={"csrf_token": csrf}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    # JSON POSTs a session speaks for need the header (the explorer sends it).
    row = {"row": {"id": 900, "name": "Csrf"}}
    assert c.post("/fixtures/owners/-/insert", json=row).status_code == 403
    r = c.post("/fixtures/owners/-/insert", json=row, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    # A bearer token is no ambient credential: never asked for one.
    c.cookies.clear()
    r = c.post("/fixtures/owners/-/insert", json={"row": {"id": 901, "name": "Bearer"}},
               headers={"Authorization": f"Bearer {env.root}"})
    assert r.status_code == 201
    # Nor is an anonymous form-encoded POST to the JSON API (curl -d): it is the API's answer.
    r = c.post("/fixtures/owners/-/insert", content=b'{"row": {"id": 902}}',
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")


def test_sign_in_replaces_the_session(env: Env) -> None:
    c = env.client
    env.sign_in()
    first = c.cookies["ls_session"]
    env.sign_in()
    assert c.cookies["ls_session"] != first
    assert env.store.get_session(sessions.session_key(first)) is None


# -- the tokens pages ---------------------------------------------------------------------------

def test_create_a_restricted_token_and_revoke_it(env: Env) -> None:
    c = env.client
    csrf = env.sign_in()
    form = c.get("/-/api/tokens/create", headers=BROWSER)
    assert_safe_page(form)
    assert 'value="r:fixtures:dogs:view-table"' in form.text
    assert 'value="d:fixtures:execute-sql"' in form.text and 'value="a:create-token"' in form.text
    r = c.post("/-/api/tokens", data={
        "csrf_token": csrf, "description": "dogs, for an hour", "expiry": "after", "expiry_amount": "1",
        "expiry_unit": "hours", "scope": "restricted",
        "restrict": ["r:fixtures:dogs:view-table", "r:fixtures:dogs:insert-row"]})
    assert r.status_code == 200
    secret = re.search(r'<code id="secret">([^<]+)</code>', r.text).group(1)
    token_id = re.search(r'id="token-link">([^<]+)<', r.text).group(1)
    record = env.store.get(token_id)
    assert record.restrictions == {"r": {"fixtures": {"dogs": ["insert-row", "view-table"]}}}
    assert record.expires - record.created == 3600 and record.description == "dogs, for an hour"
    assert record.ancestors == [env.root_record.id]  # minted from the signed-in token
    bearer = {"Authorization": f"Bearer {secret}"}
    # The example on the page is a URL this token can read (not /.json: it may not list the instance).
    example = re.search(r'curl -H "Authorization: Bearer \$TOKEN" (\S+)</pre>', r.text).group(1)
    assert example.endswith("/fixtures/dogs.json")
    assert c.get("/fixtures/dogs.json", headers=bearer).status_code == 200
    assert c.get("/fixtures/owners.json", headers=bearer).status_code == 403
    listed = c.get("/-/api/tokens", headers=BROWSER).text
    assert token_id in listed and "dogs, for an hour" in listed and secret not in listed
    assert "insert-row, view-table on fixtures/dogs" in listed
    page = c.get(f"/-/api/tokens/{token_id}", headers=BROWSER).text
    assert re.search(r'id="last-used">just now', page)
    r = c.post(f"/-/api/tokens/{token_id}/-/revoke", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/-/api/tokens/{token_id}"
    assert 'id="status">revoked<' in c.get(r.headers["location"], headers=BROWSER).text
    assert c.get("/fixtures/dogs.json", headers=bearer).status_code == 401


@pytest.mark.parametrize("fields,message", [
    ({"scope": "restricted"}, "Tick at least one action"),
    ({"expiry": "after", "expiry_amount": "0", "expiry_unit": "hours"}, "at least 1"),
    ({"expiry": "after", "expiry_amount": "x", "expiry_unit": "hours"}, "whole number"),
    ({"expiry": "after", "expiry_amount": "1", "expiry_unit": "weeks"}, "minutes, hours or days"),
    ({"scope": "restricted", "restrict": ["q:nonsense"]}, "Invalid restriction"),
    ({"scope": "restricted", "restrict": ["a:fly"]}, "Unknown action"),
    ({"description": "x" * 501}, "500 characters"),
])
def test_the_create_form_says_what_is_wrong(env: Env, fields: dict, message: str) -> None:
    c = env.client
    csrf = env.sign_in()
    before = len(env.store.list())
    r = c.post("/-/api/tokens", data={"csrf_token": csrf, **fields})
    assert r.status_code in (400, 403) and message in r.text, r.text
    assert_safe_page(r)
    assert len(env.store.list()) == before


def test_a_restricted_signer_can_only_grant_what_it_holds(env: Env) -> None:
    c = env.client
    token, _ = tokens.create(env.store, "alice", {"a": ["ctk"], "r": {"fixtures": {"dogs": ["vt", "ir"]}}},
                             expires_after=600)
    csrf = env.sign_in(token)
    form = c.get("/-/api/tokens/create", headers=BROWSER).text
    offered = set(re.findall(r'name="restrict" value="([^"]+)"', form))
    # What its token allows AND its actor may do: alice may not insert (only root writes here).
    assert offered == {"a:create-token", "r:fixtures:dogs:view-table"}
    assert "ends when it does" in form
    r = c.post("/-/api/tokens", data={"csrf_token": csrf, "scope": "restricted",
                                      "restrict": ["r:fixtures:owners:view-table"]})
    assert r.status_code == 403 and "cannot grant more" in r.text
    # Never longer than the signer's own token.
    r = c.post("/-/api/tokens", data={"csrf_token": csrf, "expiry": "after", "expiry_amount": "2",
                                      "expiry_unit": "hours"})
    assert r.status_code == 403 and "at most" in r.text


def test_who_sees_which_tokens(env: Env) -> None:
    c = env.client
    alice, alice_record = tokens.create(env.store, "alice")
    bob_token, bob_record = tokens.create(env.store, "bob")
    env.sign_in()  # root: everyone's
    listed = c.get("/-/api/tokens", headers=BROWSER).text
    assert alice_record.id in listed and bob_record.id in listed
    only_bob = c.get("/-/api/tokens?actor=bob", headers=BROWSER).text
    assert bob_record.id in only_bob and alice_record.id not in only_bob
    env.sign_in(alice)  # alice: her own
    listed = c.get("/-/api/tokens", headers=BROWSER).text
    assert alice_record.id in listed and bob_record.id not in listed
    r = c.get(f"/-/api/tokens/{bob_record.id}", headers=BROWSER)
    assert r.status_code == 404 and "Token not found" in r.text
    env.sign_in(bob_token)  # bob: no create-token
    r = c.get("/-/api/tokens", headers=BROWSER)
    assert r.status_code == 403 and "create-token" in r.text


def test_the_token_list_is_paginated_newest_first(env: Env) -> None:
    c = env.client
    env.sign_in()
    for i in range(30):
        tokens.create(env.store, "root", description=f"token {i}")
    newest_first = [r.id for r in sorted(env.store.list(), key=lambda r: (r.created, r.id), reverse=True)]
    first = c.get("/-/api/tokens", headers=BROWSER).text
    ids = re.findall(r'data-token-id="([^"]+)"', first)
    assert ids == newest_first[:25]
    older = re.search(r'href="([^"]+)" id="older"', first).group(1).replace("&amp;", "&")
    rest = re.findall(r'data-token-id="([^"]+)"', c.get(older, headers=BROWSER).text)
    assert ids + rest == newest_first  # 31: root's own and the 30


def test_json_token_api_unchanged_for_bearer_clients(env: Env) -> None:
    c = env.client
    auth = {"Authorization": f"Bearer {env.root}"}
    r = c.get("/-/api/tokens", headers=auth)
    assert r.headers["content-type"].startswith("application/json") and r.json()["ok"] is True
    r = c.post("/-/api/tokens", headers=auth, content=b'{"expires_after": 60}')  # curl -d: form type
    assert r.status_code == 201 and r.json()["token"].startswith("lstok_")


# -- static files and cold starts ---------------------------------------------------------------

def test_static_files(env: Env) -> None:
    c = env.client
    r = c.get("/-/static/swagger-ui-5.35.0/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert len(r.content) > 1_000_000  # decompressed by the client
    # With credentials too: the same for everyone.
    r = c.get("/-/static/app.css", headers={"Authorization": f"Bearer {env.root}"})
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    for path in ["/-/static/nope.js", "/-/static/..%2F..%2Fapp.py", "/-/static/../templates/base.html",
                 "/-/static/%2e%2e/html.py", "/-/static/swagger-ui-5.35.0/../../app.py"]:
        # (A client may resolve `..` itself: then it is no static path at all, and private.)
        assert c.get(path).status_code in (401, 404), path


def test_the_json_api_never_imports_jinja2(fixture_path: Path) -> None:
    code = f"""
import sys
from starlette.testclient import TestClient
from lambdasette.app import create_app
from lambdasette.instance import Lambdasette
from lambdasette.storage.local import LocalStorage
c = TestClient(create_app(Lambdasette(storage=LocalStorage([__import__("pathlib").Path({str(fixture_path)!r})]))))
assert c.get("/fixtures/dogs.json").status_code == 200
assert c.get("/fixtures/dogs").status_code == 200
assert "jinja2" not in sys.modules, "the JSON path imported jinja2"
assert not [m for m in sys.modules if m.startswith("lambdasette.endpoints.") and m.split(".")[-1] in
            ("pages", "signin", "static", "tokens_pages", "openapi")], "the JSON path imported a page module"
assert c.get("/fixtures/dogs", headers={{"Accept": "text/html"}}).status_code == 200
assert "jinja2" in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_the_session_id_never_reaches_a_page_or_a_url(env: Env) -> None:
    c = env.client
    csrf = env.sign_in()
    session_id = c.cookies["ls_session"]
    for path in ["/", "/fixtures", "/fixtures/dogs", "/-/api/tokens", "/-/api/tokens/create", "/-/api",
                 "/-/login"]:
        r = c.get(path, headers=BROWSER)
        assert session_id not in r.text and session_id not in json.dumps(dict(r.headers)).replace(
            f"ls_session={session_id}", "")
    r = c.post("/-/api/tokens", data={"csrf_token": csrf})
    secret = re.search(r'<code id="secret">([^<]+)</code>', r.text).group(1)
    assert "location" not in r.headers and secret not in r.headers.get("set-cookie", "")


# -- named queries: metadata's and stored ones, on pages and in the document --------------------

def test_named_queries_on_pages(fixture_path: Path, tmp_path: Path) -> None:
    from lambdasette.metadata import Metadata

    store = LocalTokenStore(tmp_path / "tokens.db")
    metadata = Metadata({"databases": {"fixtures": {"queries": {
        "by_breed": {"sql": "select id, name from dogs where breed = :breed order by id",
                     "title": f"By breed {SCRIPT}"}}}}})
    policy = Policy.parse({"databases": {"fixtures": {"permissions": {"store-query": {"id": "alice"}}}}})
    ds = Lambdasette(storage=LocalStorage([fixture_path]), options=Options(public=True), tokens=store,
                     metadata=metadata, policy=policy)
    alice, _ = tokens.create(store, "alice")
    bob, _ = tokens.create(store, "bob")
    with TestClient(create_app(ds)) as c:
        r = c.post("/fixtures/-/queries/store", headers={"Authorization": f"Bearer {alice}"},
                   json={"query": {"name": "young", "sql": "select id, name from dogs where age < 2",
                                   "title": "Young dogs", "is_private": True}})
        assert r.status_code == 201, r.text
        env = Env(c, store, ds, alice, store.get(alice.split("_")[1]))
        env.sign_in(alice)
        page = c.get("/fixtures", headers=BROWSER)
        assert 'href="/fixtures/by_breed"' in page.text and 'href="/fixtures/young"' in page.text
        r = c.get("/fixtures/by_breed?breed=Corgi", headers=BROWSER)
        assert_safe_page(r)
        assert r.text.count("<tr>") == 1 + len(c.get("/fixtures/by_breed.json?breed=Corgi").json()["rows"])
        assert 'href="/fixtures/by_breed.json?breed=Corgi"' in r.text
        r = c.get("/fixtures/young", headers=BROWSER)
        assert r.status_code == 200 and "Young dogs" in r.text
        assert "/fixtures/young.json" in c.get("/-/openapi.json").json()["paths"]
        # A private stored query is nobody else's: bob's page, like his JSON, says it is missing.
        env.sign_in(bob)
        assert c.get("/fixtures/young", headers=BROWSER).status_code == 404
        assert c.get("/fixtures/young.json").status_code == 404
        assert "young" not in json.dumps(c.get("/-/openapi.json").json()["paths"])


def test_every_page_handler_exists() -> None:
    """The pages' handlers are imported on their first call (`app.ui`): each must be there."""
    import importlib

    from lambdasette.app import ROUTES

    lazy = [r.handler for r in ROUTES if r.handler.__module__ == "lambdasette.app"]
    assert len(lazy) >= 15
    for handler in lazy:
        module, name = handler.__qualname__.split(".")
        assert callable(getattr(importlib.import_module(f"lambdasette.endpoints.{module}"), name))
