"""The read function's handler driven with real API Gateway HTTP API v2 events."""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def http_event(method: str, raw_path: str, raw_query: str = "", headers: dict | None = None,
               body: str | None = None, base64_body: bool = False) -> dict:
    # The shape API Gateway sends for payload format 2.0 (as in the AWS docs' example).
    query: dict[str, str] = {}
    for pair in filter(None, raw_query.split("&")):
        key, _, value = pair.partition("=")
        query[key] = f"{query[key]},{value}" if key in query else value
    from urllib.parse import unquote

    return {
        "version": "2.0",
        "routeKey": f"{method} /{{proxy+}}",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8",
                    "x-forwarded-proto": "https", "x-forwarded-port": "443", **(headers or {})},
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": method, "path": unquote(raw_path), "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.9", "userAgent": "curl/8"},
            "requestId": "id", "routeKey": f"{method} /{{proxy+}}", "stage": "$default",
            "time": "22/Nov/2026:12:00:00 +0000", "timeEpoch": 1795000000000,
        },
        "isBase64Encoded": base64_body,
        **({"body": body} if body is not None else {}),
    }


class Context:
    function_name = "read"
    aws_request_id = "req"


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory, fixture_path: Path) -> Any:
    data = tmp_path_factory.mktemp("lambda-data")
    shutil.copy(fixture_path, data / "fixtures.db")
    import os

    os.environ["LAMBDASETTE_DATA_DIR"] = str(data)
    os.environ["LAMBDASETTE_PUBLIC"] = "on"
    spec = importlib.util.spec_from_file_location("read_app", ROOT / "functions/read/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def body_of(response: dict) -> str:
    raw = response["body"]
    return base64.b64decode(raw).decode() if response.get("isBase64Encoded") else raw


def test_repeated_query_keys(handler: Any) -> None:
    event = http_event("GET", "/fixtures/dogs.json", "_facet=breed&_facet=owner_id&_size=1")
    response = handler(event, Context())
    assert response["statusCode"] == 200
    body = json.loads(body_of(response))
    assert set(body["facet_results"]) == {"breed", "owner_id"}
    assert body["next_url"].startswith("https://abc123.execute-api.us-east-1.amazonaws.com/")


def test_tilde_and_encoded_slash_names(handler: Any) -> None:
    response = handler(http_event("GET", "/fixtures/slash~2Fdot~2Ename.json"), Context())
    assert json.loads(body_of(response))["table"] == "slash/dot.name"
    response = handler(http_event("GET", "/fixtures/slash%2Fdot.name.json"), Context())
    assert response["statusCode"] == 200, body_of(response)
    response = handler(http_event("GET", "/fixtures/compound/b~2Cc,1.json"), Context())
    assert json.loads(body_of(response))["rows"][0][2] == "z"


def test_csv_response(handler: Any) -> None:
    response = handler(http_event("GET", "/fixtures/dogs.csv", "_size=2&_dl=1"), Context())
    assert response["headers"]["content-type"] == "text/csv; charset=utf-8"
    assert body_of(response).startswith("id,name,")


def test_error_and_write_refused(handler: Any) -> None:
    response = handler(http_event("GET", "/fixtures/nope.json"), Context())
    assert response["statusCode"] == 404
    assert json.loads(body_of(response)) == {**json.loads(body_of(response)), "ok": False}
    response = handler(http_event("POST", "/fixtures/dogs/-/insert"), Context())
    assert response["statusCode"] == 405
    assert "write function" in json.loads(body_of(response))["error"]


def test_private_read_function_with_tokens_in_dynamodb(
    dynamodb: Any, moto_endpoint: str, fixture_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mangum import Mangum

    from lambdasette.auth import tokens
    from lambdasette.auth.store_dynamodb import DynamoDBTokenStore
    from lambdasette.handlers.lambda_app import build

    from .aws import create_tokens_table

    table = create_tokens_table(dynamodb)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    shutil.copy(fixture_path, tmp_path / "fixtures.db")
    handler = Mangum(build("read", {"LAMBDASETTE_DATA_DIR": str(tmp_path),
                                    "LAMBDASETTE_TOKENS_TABLE": table}), lifespan="off")
    store = DynamoDBTokenStore(table, client=dynamodb)
    token, record = tokens.create(store, "alice", {"r": {"fixtures": {"dogs": ["vt"]}}}, 600)

    def call(path: str, token: str | None = None) -> dict:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return handler(http_event("GET", path, headers=headers), Context())

    assert call("/fixtures/dogs.json")["statusCode"] == 401
    ok = call("/fixtures/dogs.json", token)
    assert ok["statusCode"] == 200 and ok["headers"]["cache-control"] == "private, no-store"
    assert call("/fixtures/owners.json", token)["statusCode"] == 403
    assert store.get(record.id).last_used is not None
    store.revoke(record.id)
    revoked = call("/fixtures/dogs.json", token)
    assert revoked["statusCode"] == 401
    assert json.loads(revoked["body"])["error"] == "Token has been revoked"
