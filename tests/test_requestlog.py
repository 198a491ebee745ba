"""Request ids and the one JSON log line per request: in process, in `lambdasette serve` (a
real process, its stderr parsed) and through the Lambda handlers (their stdout parsed)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response
from starlette.testclient import TestClient

from lambdasette import logs
from lambdasette.app import ROUTES
from lambdasette.auth import tokens
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage
from lambdasette.web import app as web
from lambdasette.web.context import Context
from lambdasette.web.requestlog import redact_path, redact_query, request_id
from lambdasette.web.routing import Route

from .test_cli_serve import BIN, free_port, wait_until_answering
from .test_lambda_read import http_event

ROOT = Path(__file__).resolve().parent.parent
LOG_FIELDS = {"time", "level", "logger", "message", "request_id", "method", "path", "query", "status",
              "duration_ms", "bytes", "database", "actor_id", "token_id", "cold_start"}


def boom(ctx: Context) -> Response:
    raise RuntimeError("a bug, with a traceback")


@pytest.fixture
def env(fixture_path: Path, tmp_path: Path) -> Iterator[tuple[TestClient, LocalTokenStore]]:
    store = LocalTokenStore(tmp_path / "tokens.db")
    ds = Lambdasette(storage=LocalStorage([fixture_path]), tokens=store, options=Options(public=True))
    routes = [Route("special", "boom", ("GET",), boom), *ROUTES]
    with TestClient(web.create_app(ds, routes), raise_server_exceptions=False) as client:
        yield client, store


def lines(text: str) -> list[dict[str, Any]]:
    """Every JSON log line in `text` (other lines, e.g. "Serving on ...", are for people)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def request_lines(text: str) -> list[dict[str, Any]]:
    return [line for line in lines(text) if line["logger"] == "lambdasette.request"]


def test_every_answer_carries_its_id_and_every_error_body_too(env: Any) -> None:
    client, _ = env
    answers = [client.get("/fixtures/dogs.json"), client.get("/nope.json"), client.get("/fixtures.json/"),
               client.options("/fixtures.json"), client.request("TRACE", "/"),
               client.post("/fixtures/dogs/-/insert", content=b"{}"), client.get("/-/boom")]
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == len(ids)  # a new one each time
    for answer in answers:
        if answer.status_code >= 400:  # the contract's body, plus the id
            assert answer.json()["request_id"] == answer.headers["x-request-id"]
            assert set(answer.json()) <= {"ok", "error", "errors", "status", "title", "database", "request_id"}
    assert answers[-1].status_code == 500


@pytest.mark.parametrize("sent, kept", [
    ("abc-123", True), ("Root=1-67a-b2:c@d+e=f/g.h_i", True), ("x" * 128, True),
    ("", False), ("x" * 129, False), ("has space", False), ('quote"d', False), ("-leading-dash", False),
    ("line\nbreak", False), ("lstok_abc_def", False), ("é", False),
])
def test_a_callers_sane_id_is_kept(sent: str, kept: bool) -> None:
    got = request_id(sent, {})
    assert (got == sent) is kept
    assert len(got) <= 128


def test_lambdas_request_id_when_the_caller_sent_none() -> None:
    class Context:
        aws_request_id = "5f0c7f1e-0000-4000-8000-000000000000"

    assert request_id(None, {"aws.context": Context()}) == Context.aws_request_id
    assert request_id("bad id", {"aws.context": Context()}) == Context.aws_request_id
    assert request_id("mine", {"aws.context": Context()}) == "mine"


def test_one_json_line_per_request_with_every_field(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client, store = env
    logs.configure("stderr")
    token, record = tokens.create(store, "alice")
    capsys.readouterr()
    answer = client.get("/fixtures.json?sql=select+1&api_key=s3cr3t&note=" + token,
                        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "trace-me-1"})
    assert answer.status_code == 200
    [line] = request_lines(capsys.readouterr().err)
    assert set(line) == LOG_FIELDS
    assert line["request_id"] == "trace-me-1" == answer.headers["x-request-id"]
    assert (line["method"], line["path"], line["status"], line["database"]) == ("GET", "/fixtures.json",
                                                                               200, "fixtures")
    assert line["bytes"] == len(answer.content) and line["duration_ms"] >= 0
    assert (line["actor_id"], line["token_id"]) == ("alice", record.id)
    assert line["query"] == "sql=select+1&api_key=[redacted]&note=[redacted]"
    assert token not in json.dumps(line) and "s3cr3t" not in json.dumps(line)
    assert line["level"] == "INFO" and line["message"] == "GET /fixtures.json 200"


def test_a_refused_token_is_logged_by_its_id(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client, store = env
    logs.configure("stderr")
    token, record = tokens.create(store, "bob")
    store.revoke(record.id)
    capsys.readouterr()
    assert client.get("/fixtures.json", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    [line] = request_lines(capsys.readouterr().err)
    assert (line["status"], line["actor_id"], line["token_id"]) == (401, None, record.id)


def test_an_unexpected_error_logs_its_traceback_with_the_id(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = env
    logs.configure("stderr")
    capsys.readouterr()
    answer = client.get("/-/boom")
    assert answer.status_code == 500 and answer.json()["error"] == "Internal server error"
    found = lines(capsys.readouterr().err)
    error = next(line for line in found if line["level"] == "ERROR")
    assert error["request_id"] == answer.headers["x-request-id"] == answer.json()["request_id"]
    assert "RuntimeError: a bug, with a traceback" in error["traceback"] and error["path"] == "/-/boom"
    [request] = request_lines(json.dumps(found[-1]))
    assert request["status"] == 500 and request["level"] == "WARNING"


def test_a_streamed_answer_is_logged_with_every_byte_sent(env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = env
    logs.configure("stderr")
    capsys.readouterr()
    answer = client.get("/fixtures/dogs.csv?_stream=on")
    assert answer.status_code == 200
    [line] = request_lines(capsys.readouterr().err)
    assert line["bytes"] == len(answer.content) > 0


@pytest.mark.parametrize("query, shown", [
    ("", ""),
    ("sql=select+1&_shape=array", "sql=select+1&_shape=array"),
    ("token=abc&_token=abc&X-Auth-Token=abc&password=p&api_key=k&key__exact=k&sig=s", "token=[redacted]&"
     "_token=[redacted]&X-Auth-Token=[redacted]&password=[redacted]&api_key=[redacted]&key__exact=[redacted]&"
     "sig=[redacted]"),
    ("monkey=1&keyboard=2&_sort=key", "monkey=1&keyboard=2&_sort=key"),  # words, not substrings
    ("sql=select+%27lstok_ab_cd%27", "sql=select+%27[redacted]%27"),
    ("q=AKIAABCDEFGHIJKLMNOP", "q=[redacted]"),
    ("q=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "q=[redacted]"),
    ("q=ghp_abcdefghijklmnopqrstuvwxyz012345", "q=[redacted]"),
])
def test_secrets_never_reach_the_log(query: str, shown: str) -> None:
    assert redact_query(query) == shown


def test_paths_lose_tokens_and_long_queries_are_cut() -> None:
    assert redact_path("/-/api/tokens/lstok_ab_cd") == "/-/api/tokens/[redacted]"
    long = redact_query("sql=" + "x" * 5000)
    assert len(long) < 2100 and long.endswith("(5004 chars)")


def test_serve_logs_one_json_line_per_request(fixture_path: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*BIN, "serve", str(fixture_path), "--public", "--port", str(port),
                             "--tokens-db", str(tmp_path / "tokens.db")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = wait_until_answering(port, proc)
        request = urllib.request.Request(base + "/fixtures/dogs.json?_size=1", headers={"X-Request-Id": "from-curl"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.headers["X-Request-Id"] == "from-curl"
            size = len(answer.read())
    finally:
        proc.terminate()
        err = proc.communicate(timeout=10)[1]
    found = request_lines(err)
    # The readiness probe came first: this process's first request, its cold start.
    assert found[0]["path"] == "/-/versions.json" and found[0]["cold_start"] is True
    line = next(line for line in found if line["request_id"] == "from-curl")
    assert set(line) == LOG_FIELDS and line["cold_start"] is False
    assert (line["status"], line["bytes"], line["database"], line["query"]) == (200, size, "fixtures", "_size=1")
    assert "Traceback" not in err


def load_handler(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_lambda_logs_one_line_per_request_with_lambdas_id_and_cold_start(
        fixture_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(fixture_path, data / "fixtures.db")
    monkeypatch.setenv("LAMBDASETTE_DATA_DIR", str(data))
    monkeypatch.setenv("LAMBDASETTE_PUBLIC", "on")
    monkeypatch.delenv("LAMBDASETTE_REPLICA_URL", raising=False)
    monkeypatch.delenv("LAMBDASETTE_TOKENS_TABLE", raising=False)
    handler = load_handler(ROOT / "functions/read/app.py", "read_app_for_logs")

    class Context:
        function_name = "read"
        aws_request_id = "11111111-2222-4333-8444-555555555555"

    capsys.readouterr()
    first = handler(http_event("GET", "/fixtures/dogs.json", "_size=1"), Context())
    second = handler(http_event("GET", "/nope.json", headers={"x-request-id": "client-7"}), Context())
    out = capsys.readouterr().out  # Lambda sends a function's stdout to its log group
    assert first["headers"]["x-request-id"] == Context.aws_request_id
    assert second["headers"]["x-request-id"] == "client-7"
    one, two = request_lines(out)
    assert set(one) == LOG_FIELDS
    assert (one["request_id"], one["status"], one["cold_start"]) == (Context.aws_request_id, 200, True)
    assert (two["request_id"], two["status"], two["cold_start"]) == ("client-7", 404, False)
    assert one["bytes"] == len(first["body"])


def test_lambda_tasks_are_logged_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAMBDASETTE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LAMBDASETTE_REPLICA_URL", raising=False)
    monkeypatch.delenv("LAMBDASETTE_TOKENS_TABLE", raising=False)
    handler = load_handler(ROOT / "functions/write/app.py", "write_app_for_logs")

    class Context:
        aws_request_id = "task-1"

    capsys.readouterr()
    assert handler({"lambdasette": "maintenance", "seconds": 0}, Context())["ok"] is True
    [line] = [line for line in lines(capsys.readouterr().out) if line.get("task")]
    assert (line["request_id"], line["task"], line["ok"], line["cold_start"]) == ("task-1", "maintenance",
                                                                                True, True)


def test_every_log_line_is_one_line_of_json(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    logs.configure("stdout")
    log = logging.getLogger("lambdasette.test")
    try:
        raise ValueError("multi\nline")
    except ValueError:
        log.exception("failed:\n%s", Path("/x"), extra={"fields": {"request_id": "r", "path": Path("/p")}})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    [line] = lines(out)
    assert line["request_id"] == "r" and line["path"] == "/p" and "ValueError: multi\nline" in line["traceback"]
    assert line["time"].endswith("Z")


def test_the_versions_page_says_which_datasette_each_api_follows(client: TestClient) -> None:
    body = client.get("/-/versions.json").json()
    assert body["lambdasette"]["datasette_api"] == {"read": "0.65.5", "read_on_request": "1.0a41",
                                                    "write": "1.0a41"}
    assert body["datasette"]["version"] == "0.65.5"
    from lambdasette.endpoints.special import datasette_api

    assert datasette_api("1.0")["read"] == "1.0a41"

