"""B10: the one writer (reserved concurrency 1) is reached only through its front, the read
function, which authenticates, authorizes and checks every POST and answers every refusal
itself with the JSON error contract - so requests without a valid credential (or permission,
or a valid body) never occupy the writer. Through the real handlers on a local cloud, and the
forwarding itself with a stand-in Lambda client."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdasette.handlers import lambda_app
from localcloud import LocalCloud, http_event

from .test_localcloud import scope


def event(method: str, path: str, body: Any = None, token: str | None = None, query: bytes = b"") -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    data = json.dumps(body).encode() if body is not None else b""
    return http_event(scope(method, path, query, headers), data, "local", "localhost:3000")


def answer(outcome: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    assert outcome["ok"], outcome
    result = outcome["result"]
    body = result.get("body") or ""
    text = base64.b64decode(body).decode() if result.get("isBase64Encoded") else body
    return result["statusCode"], {k.lower(): v for k, v in (result.get("headers") or {}).items()}, \
        (json.loads(text) if text else None)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    tmp = tmp_path_factory.mktemp("front")
    db = tmp / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.commit()
    conn.close()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
            patch.setenv(name, os.environ.get(name, "testing"))
        patch.delenv("AWS_CA_BUNDLE", raising=False)
        # Private: every request needs a token. Its own stack: moto keeps one set of resources
        # per process, and other modules' clouds may have made the default stack's.
        local = LocalCloud(tmp / "state", [db], read_workers=1, stack="writer-front")
        try:
            local.start()
            yield local
        finally:
            local.stop()


def test_refusals_are_answered_by_the_front(cloud: LocalCloud) -> None:
    root = cloud.mint_token("root")
    alice = cloud.mint_token("alice")  # may read, not write
    writer = cloud.functions["WriteFunction"]
    before = writer.invocations
    insert = {"row": {"body": "x"}}
    refusals = [
        (event("POST", "/notes/notes/-/insert", insert), 401),                                    # no token
        (event("POST", "/notes/notes/-/insert", insert, "nope"), 401),                            # not ours
        (event("POST", "/notes/notes/-/insert", insert, "lstok_0000000000000000_bogus"), 401),    # unknown
        (event("POST", "/notes/notes/-/insert", insert, "lstok_" + "a" * 3000 + "_x"), 401),      # 2 KB id
        (event("POST", "/notes/notes/-/insert", insert, alice), 403),                             # no permission
        (event("POST", "/notes/notes/-/insert", {"rows": "x"}, root), 400),                       # bad body
        (event("POST", "/notes/notes/-/insert", {"row": {}, "bogus": 1}, root), 400),
        (event("POST", "/nope/notes/-/insert", insert, root), 404),
        (event("POST", "/notes/-/execute-write", {"sql": "select 1"}, alice), 403),
        (event("POST", "/-/api/tokens", {}, alice), 403),                                         # no create-token
    ]
    for request, status in refusals:
        code, headers, body = answer(cloud.invoke("ReadFunction", request))
        assert code == status and body["ok"] is False and body["status"] == status, (request["rawPath"], body)
        assert headers["content-type"].startswith("application/json") and "x-lambdasette-forward" not in headers
        if status == 401:
            assert headers["www-authenticate"].startswith("Bearer")
    # A read-only POST is the front's own too.
    code, _, body = answer(cloud.invoke("ReadFunction", event("POST", "/notes/notes/-/count", None, root)))
    assert code == 200 and body["count"] == 0
    assert writer.invocations == before, "a refused or read-only request reached the single writer"


def test_valid_writes_go_through_to_the_writer(cloud: LocalCloud) -> None:
    root = cloud.mint_token("root")
    writer = cloud.functions["WriteFunction"]
    before = writer.invocations
    code, headers, body = answer(cloud.invoke("ReadFunction", event(
        "POST", "/notes/notes/-/insert", {"row": {"body": "through the front"}}, root)))
    assert code == 201 and headers["x-lambdasette-txid"].isdigit() and body["rows"][0]["body"] == "through the front"
    # The token API's writes (a token stored, one revoked) are the writer's too.
    code, _, minted = answer(cloud.invoke("ReadFunction", event("POST", "/-/api/tokens", {"expires_after": 60}, root)))
    assert code == 201 and minted["token"].startswith("lstok_")
    code, _, revoked = answer(cloud.invoke("ReadFunction", event(
        "POST", f"/-/api/tokens/{minted['id']}/-/revoke", None, root)))
    assert code == 200, revoked
    code, _, body = answer(cloud.invoke("ReadFunction", event("GET", "/notes/notes.json", None, minted["token"])))
    assert code == 401
    assert writer.invocations == before + 3


class Throttled(Exception):
    pass


class FakeLambda:
    """boto3's Lambda client, as far as the front uses it."""

    class exceptions:  # noqa: N801 - boto3's spelling
        TooManyRequestsException = Throttled

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes, self.calls = outcomes, 0

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        outcome = self.outcomes.pop(0) if self.outcomes else Throttled()
        if isinstance(outcome, Exception):
            raise outcome

        class Body:
            def read(self) -> bytes:
                return json.dumps(outcome[0]).encode()

        return {"Payload": Body(), **({"FunctionError": "Unhandled"} if outcome[1] else {})}


FORWARD = {"statusCode": 202, "headers": {"x-lambdasette-forward": "1", "vary": "Cookie, Authorization",
                                          "access-control-allow-origin": "*"}, "body": ""}
WRITTEN = {"statusCode": 201, "headers": {"content-type": "application/json"}, "body": '{"ok": true}'}


def front(client: FakeLambda) -> Any:
    return lambda_app.forwarding(lambda event, context: dict(FORWARD), "writer", client=client)


def test_a_busy_writer_is_retried_then_a_json_429(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeLambda([Throttled(), Throttled(), (WRITTEN, False)])
    assert front(client)({}, None) == WRITTEN and client.calls == 3
    monkeypatch.setattr(lambda_app, "WRITER_BUSY_WAIT_S", 0.3)
    client = FakeLambda([])
    busy = front(client)({}, None)
    assert busy["statusCode"] == 429 and busy["headers"]["Retry-After"] == "1"
    assert json.loads(busy["body"])["ok"] is False and busy["headers"]["access-control-allow-origin"] == "*"
    assert "x-lambdasette-forward" not in busy["headers"] and client.calls > 1


def test_a_failed_or_unreachable_writer_is_a_json_error_never_retried() -> None:
    client = FakeLambda([RuntimeError("read timeout")])
    unreachable = front(client)({}, None)
    assert unreachable["statusCode"] == 503 and client.calls == 1  # the write may have been made
    assert "may or may not" in json.loads(unreachable["body"])["error"]
    client = FakeLambda([({"errorMessage": "boom"}, True)])
    failed = front(client)({}, None)
    assert failed["statusCode"] == 502 and json.loads(failed["body"])["ok"] is False


def test_answers_that_need_no_writer_pass_through() -> None:
    client = FakeLambda([])
    plain = {"statusCode": 401, "headers": {"content-type": "application/json"}, "body": "{}"}
    handler = lambda_app.forwarding(lambda event, context: plain, "writer", client=client)
    assert handler({}, None) is plain and client.calls == 0


def test_only_a_read_function_that_knows_the_writer_is_a_front(tmp_path: Path) -> None:
    env = {"LAMBDASETTE_DATA_DIR": str(tmp_path), "LAMBDASETTE_PUBLIC": "on"}
    assert lambda_app.build("read", {**env, "LAMBDASETTE_WRITE_FUNCTION": "w"}).app.state.lambdasette.options.forward_writes
    assert not lambda_app.build("read", env).app.state.lambdasette.options.forward_writes
    assert not lambda_app.build("write", {**env, "LAMBDASETTE_WRITE_FUNCTION": "w"}).app.state.lambdasette.options.forward_writes


def form(path: str, fields: dict[str, str], cookies: dict[str, str] | None = None,
         origin: str | None = None) -> dict[str, Any]:
    """A browser's form POST, as API Gateway delivers it."""
    import urllib.parse

    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    return http_event(scope("POST", path, b"", headers), urllib.parse.urlencode(fields).encode(),
                      "local", "localhost:3000")


def page(path: str, cookies: dict[str, str]) -> str:
    """The HTML of a page a signed-in browser asks for."""
    headers = [(b"accept", b"text/html"),
               (b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode())]
    return http_event(scope("GET", path, b"", headers), b"", "local", "localhost:3000")


def cookies_of(outcome: dict[str, Any]) -> dict[str, str]:
    result = outcome["result"]
    found = {}
    for cookie in result.get("cookies") or []:
        name, _, rest = cookie.partition("=")
        found[name] = rest.split(";", 1)[0]
    return found


def test_the_pages_forms_go_through_the_same_front(cloud: LocalCloud) -> None:
    """Signing in and out and the API tokens page's forms (main's pages) write the token
    store: only a valid one reaches the writer; a bogus token, a missing CSRF value, another
    site's post, an id that cannot be a token's are the front's to refuse."""
    import re

    root = cloud.mint_token("root")
    writer = cloud.functions["WriteFunction"]
    csrf = "c" * 43
    login = {"csrf_token": csrf, "next": "/"}
    before = writer.invocations
    refused = [
        form("/-/login", {**login, "token": "nope"}, {"ls_csrf": csrf}),                          # not a token
        form("/-/login", {**login, "token": "lstok_0000000000000000_bogus"}, {"ls_csrf": csrf}),  # unknown
        form("/-/login", {**login, "token": "lstok_" + "a" * 3000 + "_x"}, {"ls_csrf": csrf}),    # not its shape
        form("/-/login", {**login, "token": root}, {"ls_csrf": "d" * 43}),                        # CSRF mismatch
        form("/-/login", {**login, "token": root}, {"ls_csrf": csrf}, origin="https://evil.example"),
        form("/-/logout", {"csrf_token": csrf}, {"ls_session": "not-a-session"}),
        form("/-/api/tokens", {"csrf_token": csrf}, {"ls_session": "s" * 43}),                   # no such session
    ]
    for request in refused:
        outcome = cloud.invoke("ReadFunction", request)
        # Refused (401, 403), or sent to sign in (302); never a session (at most one cleared).
        assert outcome["ok"] and outcome["result"]["statusCode"] in (302, 401, 403), outcome
        assert cookies_of(outcome).get("ls_session", '""') == '""', outcome
    assert writer.invocations == before, "a refused sign-in reached the single writer"

    # A real sign-in starts a session (a write to the token store): the writer's.
    outcome = cloud.invoke("ReadFunction", form("/-/login", {**login, "token": root}, {"ls_csrf": csrf}))
    assert outcome["result"]["statusCode"] == 303 and writer.invocations == before + 1
    session = {"ls_session": cookies_of(outcome)["ls_session"]}
    html = answer_text(cloud.invoke("ReadFunction", page("/-/api/tokens/create", session)))
    token_csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    before = writer.invocations
    refused = [
        form("/-/api/tokens", {"csrf_token": "wrong", "expiry": "never"}, session),               # CSRF
        form("/-/api/tokens", {"expiry": "never"}, session),                                      # none at all
        form("/-/api/tokens", {"csrf_token": token_csrf, "expiry": "after", "expiry_amount": "x"}, session),
        form("/-/api/tokens/zzz/-/revoke", {"csrf_token": token_csrf}, session),                 # not an id
        form("/-/api/tokens/0123456789abcdef/-/revoke", {"csrf_token": token_csrf}, session),    # unknown id
    ]
    for request in refused:
        outcome = cloud.invoke("ReadFunction", request)
        assert outcome["result"]["statusCode"] in (400, 403, 404), outcome
    assert writer.invocations == before, "a refused form reached the single writer"
    # The forms that do write: a token created, then revoked; then signing out.
    created = cloud.invoke("ReadFunction", form("/-/api/tokens", {"csrf_token": token_csrf, "expiry": "never"},
                                                session))
    text = answer_text(created)
    assert created["result"]["statusCode"] == 200 and "lstok_" in text
    token_id = re.search(r"lstok_([0-9a-f]{16})_", text).group(1)  # type: ignore[union-attr]
    revoked = cloud.invoke("ReadFunction", form(f"/-/api/tokens/{token_id}/-/revoke", {"csrf_token": token_csrf},
                                                session))
    assert revoked["result"]["statusCode"] == 303
    out = cloud.invoke("ReadFunction", form("/-/logout", {"csrf_token": token_csrf}, session))
    assert out["result"]["statusCode"] == 303 and writer.invocations == before + 3


def answer_text(outcome: dict[str, Any]) -> str:
    assert outcome["ok"], outcome
    result = outcome["result"]
    body = result.get("body") or ""
    return base64.b64decode(body).decode() if result.get("isBase64Encoded") else body


def test_every_post_route_refuses_at_the_front(cloud: LocalCloud) -> None:
    """Every POST route main has (write API, execute-write, stored queries, set-column-type,
    the token API): with no token, a bogus one, or one without the permission, the writer is
    invoked zero times."""
    from lambdasette.app import ROUTES

    alice = cloud.mint_token("alice")  # may read, write nothing
    writer = cloud.functions["WriteFunction"]
    paths = {
        ("database-action", "create"): "/notes/-/create",
        ("database-action", "execute-write"): "/notes/-/execute-write",
        ("database-action", "queries/store"): "/notes/-/queries/store",
        ("table-action", "set-column-type"): "/notes/notes/-/set-column-type",
        ("table-action", "insert"): "/notes/notes/-/insert",
        ("table-action", "upsert"): "/notes/notes/-/upsert",
        ("table-action", "drop"): "/notes/notes/-/drop",
        ("table-action", "alter"): "/notes/notes/-/alter",
        ("table-action", "update"): "/notes/q/-/update",
        ("table-action", "delete"): "/notes/q/-/delete",
        ("table-action", "count"): "/notes/notes/-/count",
        ("row-action", "update"): "/notes/notes/1/-/update",
        ("row-action", "delete"): "/notes/notes/1/-/delete",
        ("special", "api/tokens"): "/-/api/tokens",
        ("special", "api/tokens/create"): "/-/api/tokens/create",
        ("special", "api/tokens/{token_id}/-/revoke"): "/-/api/tokens/0123456789abcdef/-/revoke",
    }
    posts = {(r.kind, r.action) for r in ROUTES if "POST" in r.methods and not r.formats}
    assert posts - set(paths) == set(), f"a POST route without a case here: {posts - set(paths)}"
    body = {"row": {"body": "x"}, "sql": "insert into notes (body) values ('x')", "table": "t",
            "column": "body", "column_type": "url", "name": "q"}
    before = writer.invocations
    for path in paths.values():
        for token in (None, "nope", "lstok_0000000000000000_" + "b" * 43, alice):
            code, _, answered = answer(cloud.invoke("ReadFunction", event("POST", path, body, token)))
            if path.endswith("/-/count") and token == alice:
                assert code == 200, answered  # a read: alice may
                continue
            assert code in (400, 401, 403, 404), (path, token and token[:12], code, answered)
    assert writer.invocations == before, "a request without a valid credential or permission reached the writer"


def test_a_cold_read_function_imports_no_boto3_for_a_get(tmp_path: Path) -> None:
    """The front's Lambda client (and the DynamoDB token store's) are made on first use: the
    read function's cold start and an anonymous GET import neither boto3 nor botocore (some
    0.1-0.4 s of a cold start), though the function knows the writer and the tokens table."""
    import subprocess
    import sys

    conn = sqlite3.connect(tmp_path / "notes.db")
    conn.execute("create table notes (id integer primary key, body text)")
    conn.commit()
    conn.close()
    handler = Path(__file__).resolve().parents[1] / "functions" / "read" / "app.py"
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("app", {str(handler)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
class Context:
    aws_request_id = "cold"
    def get_remaining_time_in_millis(self):
        return 30000
http = {{"method": "GET", "path": "/notes/notes.json", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4",
         "userAgent": "t"}}
event = {{"version": "2.0", "routeKey": "GET /{{proxy+}}", "rawPath": "/notes/notes.json",
          "rawQueryString": "", "headers": {{"host": "x"}}, "isBase64Encoded": False,
          "requestContext": {{"http": http, "requestId": "r", "stage": "$default", "domainName": "x",
                              "apiId": "a", "accountId": "1", "routeKey": "GET /{{proxy+}}",
                              "time": "", "timeEpoch": 0}}}}
assert module.handler(event, Context())["statusCode"] == 200
assert "boto3" not in sys.modules and "botocore" not in sys.modules, "a GET imported boto3"
"""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
           "LAMBDASETTE_DATA_DIR": str(tmp_path), "LAMBDASETTE_PUBLIC": "on",
           "LAMBDASETTE_WRITE_FUNCTION": "writer", "LAMBDASETTE_TOKENS_TABLE": "tokens"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
