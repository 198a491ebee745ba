"""scripts/local-cloud: the API Gateway it imitates, and the whole deployed shape end to end."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from localcloud import Function, Gateway, http_event, load_template

from .test_cli_serve import free_port

ROOT = Path(__file__).resolve().parent.parent


def scope(method: str, path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query,
            "headers": [(b"host", b"localhost:3000"), *(headers or [])], "scheme": "http",
            "server": ("127.0.0.1", 3000), "client": ("10.0.0.7", 5555)}


def test_events_have_api_gateways_payload_2_shape() -> None:
    event = http_event(
        scope("GET", "/fixtures/dogs~2Fcats.json", b"_facet=a&_facet=b&q=caf%C3%A9",
              [(b"cookie", b"a=1; b=2"), (b"X-Thing", b"one"), (b"x-thing", b"two")]),
        b"", "local", "localhost:3000")
    assert event["version"] == "2.0" and event["routeKey"] == "GET /{proxy+}"
    assert event["rawPath"] == "/fixtures/dogs~2Fcats.json"
    assert event["rawQueryString"] == "_facet=a&_facet=b&q=caf%C3%A9"
    assert event["queryStringParameters"] == {"_facet": "a,b", "q": "café"}
    assert event["cookies"] == ["a=1", "b=2"] and "cookie" not in event["headers"]
    assert event["headers"]["x-thing"] == "one,two"
    assert event["headers"]["x-forwarded-proto"] == "http" and event["headers"]["x-forwarded-for"] == "10.0.0.7"
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.7"
    assert event["pathParameters"] == {"proxy": "fixtures/dogs~2Fcats.json"}
    assert "body" not in event and event["isBase64Encoded"] is False


def test_binary_bodies_arrive_base64_encoded() -> None:
    raw = bytes(range(256))
    event = http_event(scope("POST", "/x/-/insert", headers=[(b"content-type", b"application/octet-stream")]),
                       raw, "local", "h")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    event = http_event(scope("POST", "/x/-/insert", headers=[(b"content-type", b"application/json")]),
                       b'{"row": {"a": "\xc3\xa9"}}', "local", "h")
    assert event["isBase64Encoded"] is False and event["body"] == '{"row": {"a": "é"}}'


class FakeFunction(Function):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("Fake", [])
        self.result = result

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.result


def test_limits_and_errors_are_api_gateways() -> None:
    template = load_template()
    big = {"ok": True, "result": {"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 1)}}
    gateway = Gateway(template, {"ReadFunction": FakeFunction(big)})
    status, _, body = gateway.handle(scope("GET", "/big.json"), b"")
    assert status == 500 and json.loads(body) == {"message": "Internal Server Error"}
    gateway = Gateway(template, {"ReadFunction": FakeFunction({"ok": False, "timeout": True})})
    assert gateway.handle(scope("GET", "/slow.json"), b"")[0] == 503
    gateway = Gateway(template, {"ReadFunction": FakeFunction({"ok": False, "error": {"errorMessage": "boom"}})})
    assert gateway.handle(scope("GET", "/x.json"), b"")[0] == 500
    ok = {"ok": True, "result": {"statusCode": 201, "headers": {"X-A": "1"}, "cookies": ["s=1", "t=2"],
                                 "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}}
    gateway = Gateway(template, {"ReadFunction": FakeFunction(ok)})  # POSTs go to the writer's front
    status, headers, body = gateway.handle(scope("POST", "/x/-/insert"), b"{}")
    assert status == 201 and body == b"\x00\x01"
    assert (b"x-a", b"1") in headers and [v for k, v in headers if k == b"set-cookie"] == [b"s=1", b"t=2"]
    assert gateway.handle(scope("PUT", "/x"), b"")[0] == 404  # no route for PUT in the template


def test_the_deployed_shape_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.execute("insert into notes (body) values ('hello')")
    conn.commit()
    conn.close()
    port = free_port()
    proc = subprocess.Popen([str(ROOT / "scripts/local-cloud"), str(db), "--port", str(port), "--root-token",
                             "--state-dir", str(tmp_path / "state"), "--read-workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        token = None
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            if line.startswith("Root token: "):
                token = line.split()[-1]
            if line.startswith("local-cloud: API on"):
                break
            assert time.monotonic() < deadline, "local-cloud did not start"
        assert token, "no root token printed"
        # The functions' log lines follow on the same stdout: keep reading, or they would block.
        logged: list[str] = []
        threading.Thread(target=lambda: logged.extend(proc.stdout or []), daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        while True:  # the gateway starts listening just after it says so
            try:
                urllib.request.urlopen(base + "/-/versions.json", timeout=5)
            except urllib.error.HTTPError:
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)

        def call(method: str, path: str, body: Any = None, headers: dict | None = None) -> tuple[int, Any, Any]:
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(base + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {token}", **(headers or {})})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.status, r.headers, json.loads(r.read())
            except urllib.error.HTTPError as exc:
                return exc.code, exc.headers, json.loads(exc.read())

        status, _, rows = call("GET", "/notes/notes.json?_shape=array")
        assert status == 200 and rows == [{"id": 1, "body": "hello"}]
        status, headers, body = call("POST", "/notes/notes/-/insert", {"row": {"body": "through the gateway"}})
        assert status == 201 and headers["x-lambdasette-txid"]
        insert_id = headers["x-request-id"]  # the front's id: the client sent none
        status, _, rows = call("GET", "/notes/notes.json?_shape=array")
        assert [r["body"] for r in rows] == ["hello", "through the gateway"]  # fresh reads by default
        # A private deployment: no token (or one that is not ours) is anonymous, and refused.
        assert call("GET", "/notes/notes.json", headers={"Authorization": "Bearer nope"})[0] == 401
        status, _, body = call("GET", "/notes.json", headers={"Authorization": f"Bearer {token}x"})
        assert status == 401 and body["ok"] is False
        # The import function's schedule fires; it reaches the writer through the Lambda API.
        # Without a route to the internet (these machines) the run fails at its first fetch and
        # says so; with one, it runs. Either way the schedule fired and the run was recorded.
        request = urllib.request.Request(base + "/-/local-cloud/schedules/FederalRegister", method="POST")
        fired = json.loads(urllib.request.urlopen(request, timeout=120).read())
        assert fired["ok"] is True and fired["result"]["status"] in ("ok", "error")
        if fired["result"]["status"] == "error":
            assert "federalregister.gov" in fired["result"]["error"]
        # Tokens live in the local cloud's DynamoDB table: the CLI reaches them with its env file,
        # sourced as the README says; the db commands find the replica in it too.
        env_file = tmp_path / "state/local-cloud.env"
        assert "LAMBDASETTE_TOKENS_TABLE=lambdasette-local-tokens" in env_file.read_text()
        cli = f"{ROOT / '.venv/bin/lambdasette'}"
        sourced = subprocess.run(["bash", "-c", f"set -euo pipefail; set -a; . {env_file}; set +a; "
                                  f"{cli} db list; {cli} token create alice -e 60 >/dev/null; {cli} token list"],
                                 capture_output=True, text=True, timeout=120)
        assert sourced.returncode == 0, sourced.stderr
        assert sourced.stdout.splitlines()[0] == "notes"
        assert '"actor": "alice"' in sourced.stdout and "lambdasette-local-tokens" in sourced.stderr
        # Each request through the gateway was logged by its function, as one JSON line.
        requests = [json.loads(line) for line in logged if line.startswith("{") and '"lambdasette.request"' in line]
        assert any(r["path"] == "/notes/notes/-/insert" and r["status"] == 201 for r in requests)
        # The insert went through the read function (the writer's front) to the write function,
        # by Lambda Invoke, with the front's request id: both lines carry the id its answer did.
        lines = [r for r in requests if r["request_id"] == insert_id]
        assert sorted((r["status"], r.get("forwarded", False)) for r in lines) == [(201, False), (202, True)], lines
    finally:
        proc.terminate()
        proc.wait(30)


def test_local_cloud_env_is_safe_to_source(tmp_path: Path) -> None:
    """Every value shell-quoted: the replica URL's '&' must not send half a line to the
    background, nor '?' glob, nor a space split a value."""
    from localcloud import LocalCloud

    cloud = LocalCloud(tmp_path / "state", [])
    cloud.state.mkdir(parents=True)
    cloud.endpoint = "http://127.0.0.1:5000"
    cloud.replica_url = f"s3://{cloud.bucket}/databases?endpoint={cloud.endpoint}&region=us-east-1"
    env_file, _ = cloud.write_env_files()
    shown = subprocess.run(["bash", "-c", f"set -euo pipefail; set -a; . {env_file}; set +a; "
                            "python3 -c 'import json, os; print(json.dumps(dict(os.environ)))'"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    env = json.loads(shown.stdout)
    assert env["LAMBDASETTE_REPLICA_URL"] == cloud.replica_url
    assert env["LAMBDASETTE_TOKENS_TABLE"] == cloud.table
    assert env["AWS_ENDPOINT_URL_S3"] == cloud.endpoint


def test_the_restore_drill_runs_in_the_local_cloud(tmp_path: Path) -> None:
    """The write function's maintenance (its schedule's event) restores each database from the
    replica and checks it; the report is readable through the API, from the read function."""
    from localcloud import LocalCloud

    db = tmp_path / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.execute("insert into notes (body) values ('hello')")
    conn.commit()
    conn.close()
    cloud = LocalCloud(tmp_path / "state", [db], read_workers=1, stack="drill-test")
    try:
        cloud.start()
        token = cloud.mint_token("root")
        gateway = Gateway(cloud.template, cloud.functions)
        auth = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
        status, _, _ = gateway.handle(scope("POST", "/notes/notes/-/insert", headers=auth), b'{"row": {"body": "x"}}')
        assert status == 201
        outcome = cloud.invoke("WriteFunction", {"lambdasette": "maintenance", "seconds": 1})
        assert outcome["ok"], outcome
        assert outcome["result"]["ok"] is True and outcome["result"]["drill"]["drilled"] == ["notes"]
        status, _, body = gateway.handle(scope("GET", "/-/restore-drill.json", headers=auth), b"")
        report = json.loads(body)
        assert status == 200 and report["ok"] is True
        notes = report["databases"]["notes"]
        assert notes["ok"] is True and notes["integrity"] == ["ok"] and notes["restored_txid"] >= notes["expected_txid"]
        # The template's own schedule event fires it too (40 s awake: here only its shape).
        assert gateway.schedules["Maintenance"] == ("WriteFunction", {"lambdasette": "maintenance", "seconds": 40})
    finally:
        cloud.stop()
