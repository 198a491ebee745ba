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
