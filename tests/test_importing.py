"""Scheduled imports against a local HTTP server shaped like the Federal Register API (and CSV,
NDJSON, failing, slow and malformed sources): locally, and through the import Lambda handler."""

from __future__ import annotations

import datetime
import importlib.util
import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from lambdasette import imports
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage

from .test_cli_serve import BIN

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-value-42"
AGENCIES = ["Environmental Protection Agency", "Energy Department", "Interior Department"]


def document(i: int) -> dict[str, Any]:
    return {"document_number": f"2026-{i:05d}", "title": f"Rule {i}", "type": "Rule",
            "abstract": None if i % 5 == 0 else f"About rule {i}", "publication_date": "2026-11-21",
            "page_length": str(i % 40) if i != 77 else "many",
            "agencies": [{"raw_name": a.upper(), "name": a, "id": n} for n, a in enumerate(AGENCIES[: i % 3 + 1])]}


class Api(BaseHTTPRequestHandler):
    state: dict[str, Any] = {"fail_page": None}

    def log_message(self, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        page = int(query.get("page", "1"))
        base = f"http://{self.headers['Host']}"
        if url.path == "/fr/documents.json":
            if self.state["fail_page"] == page:
                return self.send(500, b'{"errors": ["upstream broke"]}')
            docs = [document(i) for i in range((page - 1) * 100 + 1, min(page * 100, 250) + 1)]
            next_url = f"{base}/fr/documents.json?page={page + 1}&per_page=100" if page < 3 else None
            return self.send(200, json.dumps({"count": 250, "total_pages": 3, "next_page_url": next_url,
                                              "results": docs}).encode())
        if url.path == "/data.csv":
            rows = "\n".join(f"{i},item {i},{i * 1.5}" for i in range(1, 151))
            return self.send(200, f"id,name,price\n{rows}\n".encode(), "text/csv")
        if url.path == "/data.ndjson":
            return self.send(200, b"\n".join(json.dumps({"id": i, "v": {"n": i}}).encode() for i in range(1, 6)))
        if url.path == "/linked.json":
            headers = {"Link": f'<{base}/linked.json?page={page + 1}>; rel="next"'} if page < 2 else {}
            return self.send(200, json.dumps([{"id": page * 10 + i} for i in range(3)]).encode(), headers=headers)
        if url.path == "/numbered.json":
            items = [{"id": page * 10 + i} for i in range(2)] if page <= 3 else []
            return self.send(200, json.dumps({"items": items}).encode())
        if url.path == "/slow.json":
            time.sleep(2)
            return self.send(200, b"[]")
        if url.path == "/bad.json":
            return self.send(200, b'{"results": [{"id": 1},')
        if url.path == "/secret.json":
            if self.headers.get("Authorization") != f"Bearer {SECRET}" or query.get("key") != SECRET:
                return self.send(401, b'{"error": "no"}')
            return self.send(503, b'{"error": "try later"}')
        self.send(404, b"{}")


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.db"
    sqlite3.connect(path).close()
    return path


def federal(api: str, **changes: Any) -> imports.Definition:
    raw = {
        "name": "fr", "schedule": "cron(0 6,18 * * ? *)",
        "source": {"urls": [f"{api}/fr/documents.json?per_page=100&date={{today}}"], "records": "results",
                   "pagination": {"next_url": "next_page_url"}, "timeout": 5},
        "target": {"database": "data", "table": "documents", "pk": "document_number", "mode": "replace"},
        "fields": {"document_number": "document_number", "title": "title", "abstract": "abstract",
                   "publication_date": "publication_date", "agencies": {"path": "agencies", "names": "name"}},
    }
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if key in ("source", "target") else value
    return imports.parse_definition(raw, "fr")


def run(definition: imports.Definition, db: Path) -> dict[str, Any]:
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(threaded=False))
    return imports.run(definition, imports.LocalSink(ds), today=datetime.date(2026, 11, 22))


def table(db: Path, name: str = "documents") -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f'select * from "{name}" order by 1').fetchall()
    finally:
        conn.close()


def test_a_federal_register_style_import_is_idempotent(api: str, data: Path) -> None:
    first = run(federal(api), data)
    assert first["status"] == "ok" and first["pages"] == 3 and first["rows_written"] == 250
    rows = table(data)
    assert len(rows) == 250
    conn = sqlite3.connect(data)
    row = conn.execute("select agencies, abstract from documents where document_number = '2026-00002'").fetchone()
    assert json.loads(row[0]) == AGENCIES[:3] and row[1] == "About rule 2"
    assert run(federal(api), data)["status"] == "ok"
    assert table(data) == rows  # replace by key: the same state again
    runs = imports.last_runs(conn, "fr")
    assert [r["status"] for r in runs] == ["ok", "ok"] and runs[0]["pages"] == 3
    assert "{today}" in runs[0]["source"]


def test_csv_ndjson_link_header_and_page_numbers(api: str, data: Path) -> None:
    csv_def = federal(api, source={"type": "csv", "urls": [f"{api}/data.csv"], "records": "", "pagination": {}},
                      target={"table": "items", "pk": "id", "mode": "upsert"},
                      fields={"id": {"path": "id", "type": "integer"}, "name": "name",
                              "price": {"path": "price", "type": "real"}})
    assert run(csv_def, data)["rows_written"] == 150
    assert table(data, "items")[1] == (2, "item 2", 3.0)
    nd = federal(api, source={"type": "ndjson", "urls": [f"{api}/data.ndjson"], "records": "", "pagination": {}},
                 target={"table": "nd", "pk": "id", "mode": "insert"}, fields=None)
    assert run(nd, data)["rows_written"] == 5
    assert table(data, "nd")[0] == (1, '{"n": 1}')  # nested values kept as JSON
    linked = federal(api, source={"urls": [f"{api}/linked.json"], "records": "",
                                  "pagination": {"link_header": True}},
                     target={"table": "linked", "pk": "id"}, fields=None)
    assert run(linked, data)["pages"] == 2 and len(table(data, "linked")) == 6
    numbered = federal(api, source={"urls": [f"{api}/numbered.json"], "records": "items",
                                    "pagination": {"page_param": "page", "start": 1}},
                       target={"table": "numbered", "pk": "id"}, fields=None)
    result = run(numbered, data)
    assert result["pages"] == 4 and len(table(data, "numbered")) == 6


def test_a_run_failing_midway_reruns_to_the_clean_state(api: str, tmp_path: Path) -> None:
    clean, failing = tmp_path / "clean" / "data.db", tmp_path / "failing" / "data.db"
    for path in (clean, failing):
        path.parent.mkdir()
        sqlite3.connect(path).close()
    run(federal(api), clean)
    Api.state["fail_page"] = 2
    try:
        result = run(federal(api), failing)
    finally:
        Api.state["fail_page"] = None
    assert result["status"] == "error" and "answered HTTP 500" in result["error"]
    assert result["rows_written"] == 100 and len(table(failing)) == 100  # whole batches only
    assert run(federal(api), failing)["status"] == "ok"
    assert table(failing) == table(clean)
    statuses = [r["status"] for r in imports.last_runs(sqlite3.connect(failing), "fr")]
    assert statuses == ["ok", "error"]


@pytest.mark.parametrize("source, fields, message", [
    ({"urls": ["{api}/slow.json"], "timeout": 0.5, "records": "", "pagination": {}}, None, "timed out after 0.5 s"),
    ({"urls": ["{api}/bad.json"]}, None, "malformed JSON"),
    ({"urls": ["{api}/nowhere.json"]}, None, "answered HTTP 404"),
    ({}, {"document_number": "document_number", "pages": {"path": "page_length", "type": "integer"}},
     "page 1 record 77: field pages expects integer, got 'many'"),
    ({}, {"document_number": "no_such_field", "title": "title"}, "page 1 record 1: missing primary key"),
])
def test_source_and_record_failures_are_clear_and_write_no_half_batch(
    api: str, data: Path, source: dict, fields: dict | None, message: str
) -> None:
    source = {k: ([u.format(api=api) for u in v] if k == "urls" else v) for k, v in source.items()}
    changes: dict[str, Any] = {"source": source}
    if fields is not None:
        changes["fields"] = fields
    result = run(federal(api, **changes), data)
    assert result["status"] == "error" and message in result["error"], result["error"]
    conn = sqlite3.connect(data)
    assert not conn.execute("select 1 from sqlite_master where name = 'documents'").fetchone()
    assert imports.last_runs(conn, "fr")[0]["error"] == result["error"]


def test_secrets_come_from_the_environment_and_never_show(api: str, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    definition = federal(api, source={"urls": [f"{api}/secret.json?key=${{env:FR_KEY}}"],
                                      "headers": {"Authorization": "Bearer ${env:FR_KEY}"}})
    missing = run(definition, data)
    assert missing["error"] == "environment variable FR_KEY is not set"
    monkeypatch.setenv("FR_KEY", SECRET)
    result = run(definition, data)
    assert "answered HTTP 503" in result["error"]  # it got past the server's secret check
    stored = json.dumps(imports.last_runs(sqlite3.connect(data), "fr"))
    assert SECRET not in json.dumps(result) and SECRET not in stored and "${env:FR_KEY}" in stored


def test_bad_definitions_are_refused_clearly() -> None:
    for raw, message in [
        ({"source": {"url": "http://x"}}, "`target` is required"),
        ({"source": {}, "target": {"database": "d", "table": "t"}}, "source.url or source.urls is required"),
        ({"source": {"url": "u"}, "target": {"database": "d", "table": "t", "mode": "merge"}}, "target.mode"),
        ({"source": {"url": "u"}, "target": {"database": "d", "table": "t", "mode": "replace"}}, "target.pk"),
        ({"source": {"url": "u", "type": "xml"}, "target": {"database": "d", "table": "t"}}, "source.type"),
        ({"source": {"url": "u"}, "target": {"database": "d", "table": "t"}, "fields": {"a": {"x": 1}}},
         "fields.a takes"),
    ]:
        with pytest.raises(ValueError, match=message):
            imports.parse_definition(raw, "bad")


def test_cli_run_with_progress_and_list(api: str, data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imports"
    folder.mkdir()
    definition = folder / "fr.yml"
    raw = {"name": "fr", "schedule": "rate(1 day)",
           "source": {"url": f"{api}/fr/documents.json", "records": "results",
                      "pagination": {"next_url": "next_page_url"}},
           "target": {"database": "data", "table": "documents", "pk": "document_number", "mode": "replace"}}
    definition.write_text(yaml.safe_dump(raw))
    out = subprocess.run([*BIN, "import", "run", str(definition), str(data)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "fr: pages 3  records 250  rows written 250" in out.stderr
    assert out.stdout.startswith("ok: 250 rows from 3 pages")
    listed = subprocess.run([*BIN, "import", "list", "--dir", str(folder), str(data)], capture_output=True, text=True)
    assert "fr: json" in listed.stdout and "ok     pages 3  rows 250" in listed.stdout
    # Every column of the records, nested ones as JSON text, when no fields are mapped.
    assert json.loads(sqlite3.connect(data).execute("select agencies from documents").fetchone()[0])[0]["id"] == 0


def test_cli_run_makes_a_missing_database_and_says_a_failure_on_stderr(api: str, tmp_path: Path) -> None:
    definition = tmp_path / "fr.yml"
    raw = {"name": "fr", "source": {"url": f"{api}/no-such-feed.json", "records": "results"},
           "target": {"database": "fresh", "table": "documents", "pk": "document_number"}}
    definition.write_text(yaml.safe_dump(raw))
    target = tmp_path / "fresh.db"
    out = subprocess.run([*BIN, "import", "run", str(definition), str(target)], capture_output=True, text=True)
    assert target.is_file() and f"Created the database {target}" in out.stderr
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines()[-1].startswith("Error: import fr failed after 0 rows from 0 pages")
    # The failed run is recorded in the new database, like any other run.
    assert sqlite3.connect(target).execute("select status from _import_runs").fetchall() == [("error",)]


def load_handler(path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Any:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"h{abs(hash(path))}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_the_import_lambda_hands_batches_to_the_write_lambda(
    api: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The import handler invoked with EventBridge payloads; its boto3 `invoke` reaches the real
    write handler through a Lambda Invoke API (local-cloud's), as it would reach AWS Lambda."""
    import uvicorn

    from localcloud import Function, LambdaApi

    write = load_handler(ROOT / "functions/write/app.py", monkeypatch,
                         {"LAMBDASETTE_DATA_DIR": str(data.parent), "LAMBDASETTE_PUBLIC": "off"})

    class InProcess:
        def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
            return {"ok": True, "result": write(event, None)}

    writer = Function("WriteFunction", [])
    writer.idle.put(InProcess())  # type: ignore[arg-type]
    port = __import__("tests.test_cli_serve", fromlist=["free_port"]).free_port()
    server = uvicorn.Server(uvicorn.Config(LambdaApi({"WriteFunction": writer}, {"WriteFunction": "writer-fn"}),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    folder = tmp_path / "imports"
    folder.mkdir()
    raw = {"name": "federal-register-test", "schedule": "rate(12 hours)",
           "source": {"url": f"{api}/fr/documents.json", "records": "results",
                      "pagination": {"next_url": "next_page_url"}},
           "target": {"database": "data", "table": "documents", "pk": "document_number", "mode": "replace"},
           "fields": {"document_number": "document_number", "agencies": {"path": "agencies", "names": "name"}}}
    (folder / "federal-register-test.yml").write_text(yaml.safe_dump(raw))
    try:
        handler = load_handler(ROOT / "functions/importer/app.py", monkeypatch, {
            "LAMBDASETTE_IMPORTS_DIR": str(folder), "LAMBDASETTE_WRITE_FUNCTION": "writer-fn",
            "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "t",
            "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"})
        # EventBridge Scheduler delivers the schedule's Input as the event.
        class Context:
            aws_request_id = "import-run-1"

        capsys.readouterr()
        result = handler({"import": "federal-register-test"}, Context())
        assert result["status"] == "ok" and result["rows_written"] == 250, result
        # Its log (stdout, the function's log group): a JSON line per page, then the run.
        logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        mine = [line for line in logged if line.get("import") == "federal-register-test"]
        pages = [line for line in mine if "page" in line]
        assert [p["page"] for p in pages] == list(range(1, result["pages"] + 1)) and len(pages) > 1
        assert pages[-1]["records"] == 250 and all(p["request_id"] == "import-run-1" for p in mine)
        assert mine[-1]["status"] == "ok" and mine[-1]["rows_written"] == 250
        # An EventBridge rule's own "Scheduled Event" payload names the rule in `resources`.
        scheduled = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
                     "source": "aws.events", "account": "123456789012", "time": "2026-11-22T06:00:00Z",
                     "region": "us-east-1", "detail": {},
                     "resources": ["arn:aws:events:us-east-1:123456789012:rule/stack-federal-register-test"]}
        assert handler(scheduled, None)["status"] == "ok"
        assert handler({"import": "nope"}, None)["ok"] is False
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(table(data)) == 250
    assert [r["status"] for r in imports.last_runs(sqlite3.connect(data))] == ["ok", "ok"]
