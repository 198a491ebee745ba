"""Limits that tell the truth (issue 13, E): answers over max_response_bytes become smaller
pages with `next` (tables) or `truncated` results (SQL), and in Lambda every answer over the
6 MB payload cap becomes a logged 413 that says what to do."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from mangum import Mangum

from lambdasette.handlers.lambda_app import LAMBDA_MAX_RESPONSE_BYTES, build, within_payload_limit
from lambdasette.settings import Settings

from .conftest import make_client
from .test_lambda_read import Context, body_of, http_event


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    conn = sqlite3.connect(folder / "big.db")
    conn.execute("create table blobs (id integer primary key, body text)")
    conn.executemany("insert into blobs values (?, ?)", [(i, "x" * 100_000) for i in range(1, 81)])
    conn.execute("create table huge (id integer primary key, body text)")
    conn.execute("insert into huge values (1, ?)", ["y" * 7_000_000])
    conn.commit()
    conn.close()
    return folder


def test_local_default_has_no_response_cap() -> None:
    # The README said 0 while the code said 5 MiB: CSV streams were cut at 5 MiB locally.
    assert Settings().max_response_bytes == 0
    assert LAMBDA_MAX_RESPONSE_BYTES == 5 * 1024 * 1024


def test_big_pages_become_smaller_pages_with_next(big: Path) -> None:
    with make_client(big, max_response_bytes=1_000_000) as c:
        seen: list[int] = []
        url = "/big/blobs.json?_size=80&_col=body"
        pages = 0
        while url:
            r = c.get(url)
            assert r.status_code == 200 and len(r.content) <= 1_000_000
            body = r.json()
            seen += [row[0] for row in body["rows"]]
            url = body["next_url"]
            pages += 1
        assert seen == list(range(1, 81)) and pages > 1
        first = c.get("/big/blobs.json?_size=80&_shape=array")
        assert 'rel="next"' in first.headers["link"]
        one = c.get("/big/huge.json")
        assert one.status_code == 413 and one.json()["ok"] is False


def test_big_query_results_are_truncated(big: Path) -> None:
    with make_client(big, max_response_bytes=1_000_000) as c:
        body = c.get("/big.json?sql=select+*+from+blobs").json()
        assert body["truncated"] is True and 0 < len(body["rows"]) < 80


def test_lambda_answers_over_6_mb_are_logged_413s(big: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = {"LAMBDASETTE_DATA_DIR": str(big), "LAMBDASETTE_PUBLIC": "on"}
    capped = within_payload_limit(Mangum(build("read", env), lifespan="off"))
    paged = capped(http_event("GET", "/big/blobs.json", "_size=80"), Context())
    assert paged["statusCode"] == 200 and json.loads(body_of(paged))["next"]
    # With the cap lifted (0), the page is too big for Lambda: a truthful 413, logged.
    raw = within_payload_limit(Mangum(build("read", {**env, "LAMBDASETTE_SETTING_MAX_RESPONSE_BYTES": "0"}),
                                      lifespan="off"))
    with caplog.at_level(logging.ERROR, logger="lambdasette"):
        response = raw(http_event("GET", "/big/blobs.json", "_size=80"), Context())
    assert response["statusCode"] == 413
    error = json.loads(response["body"])
    assert error["ok"] is False and "6 MB" in error["error"] and "_size" in error["error"]
    # The request id survives the replacement: header, body and log line agree.
    assert error["request_id"] == response["headers"]["x-request-id"] == Context.aws_request_id
    logged = [r for r in caplog.records if "over Lambda's 6 MB" in r.getMessage()]
    assert logged and logged[0].fields["request_id"] == Context.aws_request_id  # type: ignore[attr-defined]
