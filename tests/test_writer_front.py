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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from lambdasette.handlers import lambda_app
from lambdasette.storage import budget
from localcloud import LocalCloud, http_event, load_template

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


def aws_error(code: str, status: int) -> ClientError:
    """An error answer from the Lambda API, as boto3 raises it (its modeled exceptions, e.g.
    `client.exceptions.TooManyRequestsException`, are ClientErrors with that code)."""
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "Invoke")


def throttled() -> ClientError:
    return aws_error("TooManyRequestsException", 429)


class FakeLambda:
    """boto3's Lambda client, as far as the front uses it: `invoke`, made per read timeout
    (`client_for`). Records the read timeouts asked for and the events sent."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes, self.calls = outcomes, 0
        self.read_timeouts: list[int] = []
        self.events: list[dict[str, Any]] = []

    def client_for(self, read_timeout: int) -> FakeLambda:
        self.read_timeouts.append(read_timeout)
        return self

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        self.events.append(json.loads(Payload))
        outcome = self.outcomes.pop(0) if self.outcomes else throttled()
        if isinstance(outcome, Exception):
            raise outcome

        class Body:
            def read(self) -> bytes:
                return json.dumps(outcome[0]).encode()

        return {"Payload": Body(), **({"FunctionError": "Unhandled"} if outcome[1] else {})}


class Context:
    """A Lambda context with `remaining` seconds to go when made."""

    def __init__(self, remaining: float) -> None:
        self.end = time.monotonic() + remaining

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.end - time.monotonic()) * 1000)


FORWARD = {"statusCode": 500, "headers": {"x-lambdasette-forward": "1", "vary": "Cookie, Authorization",
                                          "access-control-allow-origin": "*"}, "body": ""}
WRITTEN = {"statusCode": 201, "headers": {"content-type": "application/json"}, "body": '{"ok": true}'}


def front(client: FakeLambda) -> Any:
    return lambda_app.forwarding(lambda event, context: dict(FORWARD), "writer", client_for=client.client_for)


def test_a_busy_writer_is_retried_then_a_json_429(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeLambda([throttled(), throttled(), (WRITTEN, False)])
    assert front(client)({}, None) == WRITTEN and client.calls == 3
    monkeypatch.setattr(lambda_app, "WRITER_BUSY_WAIT_S", 0.3)
    client = FakeLambda([])
    busy = front(client)({}, None)
    assert busy["statusCode"] == 429 and busy["headers"]["Retry-After"] == "1"
    assert json.loads(busy["body"])["ok"] is False and busy["headers"]["access-control-allow-origin"] == "*"
    assert "x-lambdasette-forward" not in busy["headers"] and client.calls > 1


def test_a_busy_writer_is_retried_only_while_the_front_has_time() -> None:
    """The busy wait ends WRITER_MIN_S before the front's own deadline (its context's time
    less FRONT_MARGIN_S), well before WRITER_BUSY_WAIT_S; every try's timeouts end by then."""
    remaining = lambda_app.FRONT_MARGIN_S + lambda_app.WRITER_MIN_S + 0.5
    client = FakeLambda([])
    started = time.monotonic()
    busy = front(client)({}, Context(remaining))
    spent = time.monotonic() - started
    assert busy["statusCode"] == 429 and client.calls > 1
    assert spent < remaining - lambda_app.FRONT_MARGIN_S, spent
    assert all(lambda_app.INVOKE_CONNECT_TIMEOUT_S + t <= remaining for t in client.read_timeouts)


def test_the_invocation_ends_within_the_front_s_time() -> None:
    """The read timeout (plus the connection's) ends before the function does, less the
    margin for answering: a writer that does not answer in time gets the front's JSON 503."""
    for remaining in (29.0, 12.3, 6.0, lambda_app.FRONT_MARGIN_S + lambda_app.WRITER_MIN_S + 0.1):
        client = FakeLambda([(WRITTEN, False)])
        assert front(client)({}, Context(remaining)) == WRITTEN
        [read_timeout] = client.read_timeouts
        assert 1 <= read_timeout and lambda_app.INVOKE_CONNECT_TIMEOUT_S + read_timeout <= remaining - lambda_app.FRONT_MARGIN_S
    # Without a context, API Gateway's 30 s still binds.
    client = FakeLambda([(WRITTEN, False)])
    front(client)({}, None)
    assert lambda_app.INVOKE_CONNECT_TIMEOUT_S + client.read_timeouts[0] <= lambda_app.GATEWAY_LIMIT_S - lambda_app.FRONT_MARGIN_S
    # The gateway's own clock: a request it received 20 s ago has at most 10 s left, whatever
    # the function's context says.
    client = FakeLambda([(WRITTEN, False)])
    received = {"requestContext": {"timeEpoch": int((time.time() - 20) * 1000)}, "headers": {}}
    front(client)(received, Context(29.0))
    assert lambda_app.INVOKE_CONNECT_TIMEOUT_S + client.read_timeouts[0] <= 10 - lambda_app.FRONT_MARGIN_S
    # Too little left to reach the writer at all: a JSON 503 saying nothing was written, no try.
    client = FakeLambda([(WRITTEN, False)])
    late = front(client)({}, Context(lambda_app.FRONT_MARGIN_S + lambda_app.WRITER_MIN_S - 0.5))
    assert late["statusCode"] == 503 and client.calls == 0
    assert "nothing was written" in json.loads(late["body"])["error"]


def test_the_front_sets_the_writer_s_deadline_whatever_the_client_sent() -> None:
    client = FakeLambda([(WRITTEN, False)])
    sent = {"headers": {"X-Lambdasette-Deadline-MS": "99999999999999", "x-lambdasette-deadline-ms": "1",
                        "x-request-id": "client's", "content-type": "application/json"}, "body": "{}"}
    ids = {"statusCode": 500, "headers": {**FORWARD["headers"], "x-request-id": "front's"}, "body": ""}
    handler = lambda_app.forwarding(lambda event, context: dict(ids), "writer", client_for=client.client_for)
    before = time.time()
    assert handler(sent, Context(10.0)) == WRITTEN
    [event] = client.events
    headers = event["headers"]
    assert [k for k in headers if k.lower() == "x-lambdasette-deadline-ms"] == ["x-lambdasette-deadline-ms"]
    assert headers["x-request-id"] == "front's" and headers["content-type"] == "application/json"
    deadline = int(headers["x-lambdasette-deadline-ms"]) / 1000
    # When the front stops waiting: within its own time, after the invocation's timeouts.
    assert before < deadline <= time.time() + 10.0 - lambda_app.FRONT_MARGIN_S
    assert event["body"] == "{}"


def probe_budget(event: Any, context: Any, *, front_deadline: bool) -> float:
    """The storage budget `within_budget` gives a function for this event and context."""
    seen: list[float] = []

    def function(event: Any, context: Any) -> None:
        seen.append(budget.deadline(1000.0) - time.monotonic())

    lambda_app.within_budget(function, gateway=True, front_deadline=front_deadline)(event, context)
    return seen[0]


def test_the_writer_stops_waiting_for_storage_before_its_front_stops_waiting() -> None:
    def sent(*values: str) -> dict[str, Any]:
        names = ["x-lambdasette-deadline-ms", "X-Lambdasette-Deadline-Ms"]
        return {"headers": dict(zip(names, values))}

    own = lambda_app.GATEWAY_LIMIT_S - lambda_app.BUDGET_MARGIN_S  # the writer's own (120 s function)
    soon = str(int((time.time() + 8) * 1000))
    assert 4 < probe_budget(sent(soon), Context(120), front_deadline=True) <= 8 - lambda_app.BUDGET_MARGIN_S
    # Only ever shorter: a far deadline leaves the writer's own budget.
    far = str(int((time.time() + 3600) * 1000))
    assert own - 1 < probe_budget(sent(far), Context(120), front_deadline=True) <= own
    # A past one: no waiting for storage at all.
    assert probe_budget(sent("1"), Context(120), front_deadline=True) <= 0
    # Two copies: the earlier wins.
    assert probe_budget(sent(far, soon), Context(120), front_deadline=True) <= 8 - lambda_app.BUDGET_MARGIN_S
    # Malformed: ignored, whatever it would mean to int() or float().
    for bad in ("", " 1", "1 ", "+1", "-1", "1e3", "1.0", "0x10", "\u0661\u0662", "1" * 17, "１２"):
        assert own - 1 < probe_budget(sent(bad), Context(120), front_deadline=True) <= own, repr(bad)
    # The read function never reads it: there it could only be a client's.
    assert own - 1 < probe_budget(sent("1"), Context(120), front_deadline=False) <= own


def test_the_template_s_read_function_outlasts_what_the_front_waits() -> None:
    """The read function's timeout (the template's) is longer than anything the front waits
    for the writer, so its JSON 503 for a writer that did not answer in time is always sent."""
    template = load_template()
    timeout = template["Resources"]["ReadFunction"]["Properties"].get(
        "Timeout", template["Globals"]["Function"]["Timeout"])
    assert timeout < lambda_app.GATEWAY_LIMIT_S  # and the gateway's 30 s outlasts the function
    client = FakeLambda([throttled(), (WRITTEN, False)])
    started = time.monotonic()
    assert front(client)({}, Context(timeout)) == WRITTEN
    assert all(lambda_app.INVOKE_CONNECT_TIMEOUT_S + t < timeout - (time.monotonic() - started)
               for t in client.read_timeouts)
    assert lambda_app.WRITER_BUSY_WAIT_S + lambda_app.WRITER_MIN_S < timeout


def test_invoke_failures_say_whether_anything_was_written() -> None:
    """Only a read timeout, a dropped connection or Lambda's own internal error leave the
    write unknown; an event too large is a 413; anything refused before the writer ran, or
    never sent, is a 503 that says nothing was written. None is retried."""
    cases = [
        (ReadTimeoutError(endpoint_url="https://lambda"), 503, "may or may not"),
        (ConnectionClosedError(endpoint_url="https://lambda"), 503, "may or may not"),
        (aws_error("ServiceException", 500), 503, "may or may not"),
        (aws_error("RequestTooLargeException", 413), 413, "too large"),
        (aws_error("SerializedRequestEntityTooLargeException", 413), 413, "too large"),
        (aws_error("AccessDeniedException", 403), 503, "nothing was written"),
        (aws_error("ResourceNotFoundException", 404), 503, "nothing was written"),
        (aws_error("EC2ThrottledException", 502), 503, "nothing was written"),
        (EndpointConnectionError(endpoint_url="https://lambda"), 503, "nothing was written"),
        (ConnectTimeoutError(endpoint_url="https://lambda"), 503, "nothing was written"),
    ]
    for error, status, says in cases:
        client = FakeLambda([error])
        answered = front(client)({}, Context(20))
        body = json.loads(answered["body"])
        assert (answered["statusCode"], client.calls) == (status, 1), (error, answered)
        assert says in body["error"] and body["ok"] is False, (error, body)
        assert answered["headers"]["content-type"].startswith("application/json")


def test_a_failed_writer_is_a_json_502_never_retried() -> None:
    client = FakeLambda([({"errorMessage": "boom"}, True)])
    failed = front(client)({}, None)
    assert failed["statusCode"] == 502 and json.loads(failed["body"])["ok"] is False and client.calls == 1


def test_answers_that_need_no_writer_pass_through() -> None:
    client = FakeLambda([])
    plain = {"statusCode": 401, "headers": {"content-type": "application/json"}, "body": "{}"}
    handler = lambda_app.forwarding(lambda event, context: plain, "writer", client_for=client.client_for)
    assert handler({}, None) is plain and client.calls == 0


def test_only_a_read_function_that_knows_the_writer_is_a_front(tmp_path: Path) -> None:
    env = {"LAMBDASETTE_DATA_DIR": str(tmp_path), "LAMBDASETTE_PUBLIC": "on"}
    assert lambda_app.build("read", {**env, "LAMBDASETTE_WRITE_FUNCTION": "w"}).app.state.lambdasette.options.forward_writes
    assert not lambda_app.build("read", env).app.state.lambdasette.options.forward_writes
    assert not lambda_app.build("write", {**env, "LAMBDASETTE_WRITE_FUNCTION": "w"}).app.state.lambdasette.options.forward_writes


def test_a_front_is_wrapped_exactly_when_its_app_forwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One decision (the app's `forward_writes`) makes the front: the read function's handler
    then hands an anonymous insert (allowed by the policy) to the writer, and a front app
    without the wrapper answers the placeholder as a loud 500, never a quiet success."""
    conn = sqlite3.connect(tmp_path / "notes.db")
    conn.execute("create table notes (id integer primary key, body text)")
    conn.commit()
    conn.close()
    env = {"LAMBDASETTE_DATA_DIR": str(tmp_path), "LAMBDASETTE_PUBLIC": "on",
           "LAMBDASETTE_PERMISSIONS": json.dumps({"permissions": {"insert-row": {"unauthenticated": True}}}),
           "LAMBDASETTE_WRITE_FUNCTION": "the-writer"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    insert = event("POST", "/notes/notes/-/insert", {"row": {"body": "x"}})
    invoked: list[str] = []
    real = lambda_app.forwarding

    def forwarding(http: Any, function_name: str) -> Any:
        invoked.append(function_name)
        return real(http, function_name, client_for=FakeLambda([(WRITTEN, False)]).client_for)

    monkeypatch.setattr(lambda_app, "forwarding", forwarding)
    assert lambda_app.handler_for("read")(insert, Context(29)) == WRITTEN and invoked == ["the-writer"]
    # The write function (the same environment) is no front, and writes itself.
    written = lambda_app.handler_for("write")(insert, Context(29))
    assert written["statusCode"] == 201 and invoked == ["the-writer"]
    # An unwrapped front (as `build` alone gives it): the placeholder is an error.
    from mangum import Mangum

    unwrapped = Mangum(lambda_app.build("read"), lifespan="off")(insert, Context(29))
    assert unwrapped["statusCode"] == 500 and unwrapped["headers"]["x-lambdasette-forward"] == "1"


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
