"""Scheduled imports: fetch records from an HTTP JSON API, a CSV or an NDJSON URL, map them to
rows, and write them in batches through the same writer as the write API.

A definition (YAML or JSON)::

    name: federal-register              # default: the file's name
    schedule: cron(0 6,18 * * ? *)      # EventBridge expression; template.yaml has one per file
    source:
      type: json                        # json (default), csv or ndjson
      urls:                             # or `url:`; each is fetched in turn, pages followed
        - "https://api.example.org/docs.json?per_page=100&date={today}"
        - "https://api.example.org/docs.json?per_page=100&date={yesterday}"
      headers: {Authorization: "Bearer ${env:EXAMPLE_TOKEN}"}   # secrets from the environment
      records: results                  # dot path to the list of records ("" = the body itself)
      pagination:                       # one of:
        next_url: next_page_url         #   a dot path to the next page's URL in the body
        # link_header: true             #   or the Link: <...>; rel="next" header
        # page_param: page              #   or ?page=N from `start` until an empty page
        # start: 1
      max_pages: 100
      timeout: 30                       # seconds per request
    target: {database: data, table: documents, pk: document_number, mode: replace}
    fields:                             # optional; without it every field is kept as is
      document_number: document_number  # column: dot path
      agencies: {path: agencies, names: name}   # a list of objects -> JSON list of their names
      pages: {path: page_length, type: integer}  # checked and converted (integer, real, text)
      raw: {path: cfr_references, json: true}     # nested values are stored as JSON text

URL templates: `{today}`, `{yesterday}` and `{date:-N}` (N days ago), as YYYY-MM-DD (UTC).
Modes are idempotent by key: `insert` skips rows whose key exists, `replace` replaces them,
`upsert` updates the columns given. A table that does not exist is created from the first batch.
Every run is recorded in the target database's `_import_runs` table.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

BATCH_SIZE = 100
RUNS_TABLE = "_import_runs"
MODES = ("insert", "replace", "upsert")
TYPES = {"integer": int, "real": float, "text": str}


class ImportFailed(Exception):
    """A run that cannot go on: the message says where and why (never a secret)."""


# -- definitions --------------------------------------------------------------------------------

@dataclass
class Definition:
    name: str
    schedule: str | None
    source_type: str
    urls: list[str]
    headers: dict[str, str]
    records: str
    pagination: dict[str, Any]
    max_pages: int
    timeout: float
    database: str
    table: str
    pk: str | list[str] | None
    mode: str
    fields: dict[str, Any] | None = None
    path: Path | None = None

    @property
    def pks(self) -> list[str]:
        if self.pk is None:
            return []
        return [self.pk] if isinstance(self.pk, str) else list(self.pk)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def parse_definition(raw: Any, name: str, path: Path | None = None) -> Definition:
    where = f"import {name}"
    _require(isinstance(raw, dict), f"{where}: a definition is an object")
    unknown = set(raw) - {"name", "schedule", "source", "target", "fields"}
    _require(not unknown, f"{where}: unknown keys {sorted(unknown)}")
    source, target = raw.get("source"), raw.get("target")
    _require(isinstance(source, dict), f"{where}: `source` is required")
    _require(isinstance(target, dict), f"{where}: `target` is required")
    assert isinstance(source, dict) and isinstance(target, dict)
    kind = source.get("type", "json")
    _require(kind in ("json", "csv", "ndjson"), f"{where}: source.type must be json, csv or ndjson")
    urls = source.get("urls") or ([source["url"]] if source.get("url") else [])
    _require(isinstance(urls, list) and bool(urls) and all(isinstance(u, str) for u in urls),
             f"{where}: source.url or source.urls is required")
    pagination = source.get("pagination") or {}
    allowed = {"next_url", "link_header", "page_param", "start"}
    _require(isinstance(pagination, dict) and set(pagination) <= allowed,
             f"{where}: source.pagination takes next_url, link_header or page_param (+ start)")
    mode = target.get("mode", "insert")
    _require(mode in MODES, f"{where}: target.mode must be one of {', '.join(MODES)}")
    _require(bool(target.get("database")) and bool(target.get("table")),
             f"{where}: target.database and target.table are required")
    _require(not str(target["table"]).startswith(("sqlite_", "_litestream")), f"{where}: invalid table name")
    pk = target.get("pk")
    _require(mode == "insert" or pk is not None, f"{where}: target.pk is required for {mode}")
    fields = raw.get("fields")
    if fields is not None:
        _require(isinstance(fields, dict) and bool(fields), f"{where}: fields maps columns to paths")
        for column, spec in fields.items():
            if isinstance(spec, dict):
                _require("path" in spec and set(spec) <= {"path", "names", "json", "type"},
                         f"{where}: fields.{column} takes path, names, json and type")
                _require(spec.get("type") in (None, *TYPES), f"{where}: fields.{column}.type must be one of "
                         + ", ".join(TYPES))
            else:
                _require(isinstance(spec, str), f"{where}: fields.{column} is a path or an object")
    headers = source.get("headers") or {}
    _require(isinstance(headers, dict), f"{where}: source.headers is an object")
    return Definition(
        name=str(raw.get("name") or name), schedule=raw.get("schedule"), source_type=kind, urls=urls,
        headers={str(k): str(v) for k, v in headers.items()}, records=str(source.get("records", "")),
        pagination=pagination, max_pages=int(source.get("max_pages", 100)),
        timeout=float(source.get("timeout", 30)), database=str(target["database"]),
        table=str(target["table"]), pk=pk, mode=mode, fields=fields, path=path,
    )


def load_definition(path: Path) -> Definition:
    from lambdasette.metadata import load_document

    try:
        raw = load_document(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    return parse_definition(raw, path.stem, path)


def load_definitions(folder: Path) -> list[Definition]:
    files = sorted(p for p in folder.glob("*") if p.suffix in (".yml", ".yaml", ".json"))
    return [load_definition(p) for p in files]


# -- fetching -------------------------------------------------------------------------------------

_DATE = re.compile(r"\{(today|yesterday|date:(-?\d+))\}")
_SECRET = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_url(template: str, today: datetime.date | None = None) -> str:
    today = today or datetime.datetime.now(datetime.UTC).date()

    def date(match: re.Match[str]) -> str:
        offset = {"today": 0, "yesterday": -1}.get(match.group(1))
        if offset is None:
            offset = int(match.group(2))
        return (today + datetime.timedelta(days=offset)).isoformat()

    return _DATE.sub(date, template)


class Secrets:
    """`${env:NAME}` values, resolved at run time and scrubbed from every message."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def resolve(self, text: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            value = os.environ.get(match.group(1))
            if value is None:
                raise ImportFailed(f"environment variable {match.group(1)} is not set")
            if value:
                self.values.add(value)
            return value

        return _SECRET.sub(lookup, text)

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "***")
            text = text.replace(urllib.parse.quote(value, safe=""), "***")
        return text


def dig(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


@dataclass
class Page:
    number: int
    url: str
    records: list[Any]


def fetch(url: str, headers: dict[str, str], timeout: float, secrets: Secrets) -> tuple[bytes, Any]:
    shown = secrets.scrub(url)
    request = urllib.request.Request(url, headers={"User-Agent": "lambdasette-import", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(), response.headers
    except urllib.error.HTTPError as exc:
        raise ImportFailed(f"{shown} answered HTTP {exc.code}") from None
    except TimeoutError:
        raise ImportFailed(f"{shown} timed out after {timeout:g} s") from None
    except urllib.error.URLError as exc:
        reason = "timed out" if isinstance(exc.reason, TimeoutError) else secrets.scrub(str(exc.reason))
        raise ImportFailed(f"{shown}: {reason}") from None
    except OSError as exc:
        raise ImportFailed(f"{shown}: {secrets.scrub(str(exc))}") from None


def pages(definition: Definition, secrets: Secrets, today: datetime.date | None = None) -> Iterator[Page]:
    headers = {k: secrets.resolve(v) for k, v in definition.headers.items()}
    number = 0
    for template in definition.urls:
        url: str | None = secrets.resolve(expand_url(template, today))
        page_param = definition.pagination.get("page_param")
        page_no = int(definition.pagination.get("start", 1))
        if page_param:
            url = _with_param(url or "", page_param, page_no)
        while url:
            number += 1
            if number > definition.max_pages:
                raise ImportFailed(f"more than max_pages={definition.max_pages} pages")
            body, response_headers = fetch(url, headers, definition.timeout, secrets)
            records, document = parse_records(definition, body, secrets.scrub(url))
            yield Page(number, secrets.scrub(url), records)
            url = next_url(definition, url, document, response_headers, records, page_no)
            page_no += 1


def _with_param(url: str, name: str, value: int) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, str(value)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def parse_records(definition: Definition, body: bytes, shown: str) -> tuple[list[Any], Any]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFailed(f"{shown}: the response is not UTF-8 text") from None
    if definition.source_type == "csv":
        return list(csv.DictReader(io.StringIO(text))), None
    if definition.source_type == "ndjson":
        records = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError as exc:
                    raise ImportFailed(f"{shown}: malformed JSON on line {line_no}: {exc}") from None
        return records, None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ImportFailed(f"{shown}: malformed JSON: {exc}") from None
    records = dig(document, definition.records) if definition.records else document
    if records is None and definition.records:
        records = []  # an API's last page may leave the list out
    if not isinstance(records, list):
        raise ImportFailed(f"{shown}: `{definition.records or 'the body'}` is not a list of records")
    return records, document


def next_url(definition: Definition, url: str, document: Any, headers: Any, records: list[Any],
             page_no: int) -> str | None:
    pagination = definition.pagination
    if "next_url" in pagination:
        found = dig(document, pagination["next_url"]) if document is not None else None
        return urllib.parse.urljoin(url, found) if isinstance(found, str) and found else None
    if pagination.get("link_header"):
        for part in (headers.get("Link") or "").split(","):
            match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
            if match:
                return urllib.parse.urljoin(url, match.group(1))
        return None
    if "page_param" in pagination:
        return _with_param(url, pagination["page_param"], page_no + 1) if records else None
    return None


# -- mapping --------------------------------------------------------------------------------------

def _stored(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def map_record(definition: Definition, record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ImportFailed(f"{where}: a record is not an object")
    if definition.fields is None:
        row = {k: _stored(v) for k, v in record.items()}
    else:
        row = {}
        for column, spec in definition.fields.items():
            if isinstance(spec, str):
                row[column] = _stored(dig(record, spec))
                continue
            value = dig(record, spec["path"])
            if spec.get("names") is not None and value is not None:
                if not isinstance(value, list):
                    raise ImportFailed(f"{where}: `{spec['path']}` is not a list")
                value = [item.get(spec["names"]) if isinstance(item, dict) else item for item in value]
            kind = spec.get("type")
            if kind is not None and value is not None and value != "":
                try:
                    value = TYPES[kind](value)
                    if kind == "integer" and isinstance(value, float):
                        raise ValueError
                except (TypeError, ValueError):
                    raise ImportFailed(f"{where}: field {column} expects {kind}, got {value!r}") from None
            elif kind is not None and value == "":
                value = None
            row[column] = _stored(value)
    for key in definition.pks:
        if row.get(key) in (None, ""):
            raise ImportFailed(f"{where}: missing primary key {key}")
    return row


# -- writing --------------------------------------------------------------------------------------

class Sink(Protocol):
    def write(self, definition: Definition, rows: list[dict[str, Any]]) -> int: ...

    def record(self, definition: Definition, run: dict[str, Any]) -> None: ...


def batch_event(definition: Definition, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"lambdasette": "import-batch", "database": definition.database, "table": definition.table,
            "pk": definition.pk, "mode": definition.mode, "rows": rows}


def record_event(definition: Definition, run: dict[str, Any]) -> dict[str, Any]:
    return {"lambdasette": "import-batch", "database": definition.database, "table": RUNS_TABLE,
            "pk": "id", "mode": "insert", "rows": [run]}


def apply_batch(ds: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The write function's side: one batch, one transaction, through the writer."""
    from lambdasette.errors import DatabaseNotFound, ReplicaUnavailable
    from lambdasette.writes.rows import write_rows
    from lambdasette.writes.transaction import Transaction

    database, table, mode = event.get("database"), event.get("table"), event.get("mode", "insert")
    rows, pk = event.get("rows"), event.get("pk")
    if not (isinstance(database, str) and isinstance(table, str) and isinstance(rows, list) and rows
            and mode in MODES and all(isinstance(r, dict) for r in rows)):
        return {"ok": False, "error": "an import batch needs database, table, mode and a list of rows"}
    pks = [pk] if isinstance(pk, str) else list(pk or [])

    def work(tx: Transaction) -> int:
        # Imports are idempotent by key: "insert" keeps rows already there, "replace" and
        # "upsert" overwrite them; a new field becomes a new column.
        write_rows(tx, table, rows, upsert=mode == "upsert", ignore=mode == "insert",
                   replace=mode == "replace", alter=True, create_pks=pks)
        return len(rows)

    try:
        written, txid = ds.writer.run(database, work)
    except DatabaseNotFound:
        return {"ok": False, "error": f"database {database} not found"}
    except ReplicaUnavailable as exc:
        return {"ok": False, "retry": True, "error": f"the write could not be made durable: {exc}"}
    except Exception as exc:  # ApiError, sqlite3 errors: constraint failures, bad values
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "written": written, "txid": txid}


class LocalSink:
    """Writes through an in-process Lambdasette's writer (the CLI)."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds

    def _apply(self, event: dict[str, Any]) -> int:
        result = apply_batch(self.ds, event)
        if not result.get("ok"):
            raise ImportFailed(result.get("error", "the batch failed"))
        return int(result["written"])

    def write(self, definition: Definition, rows: list[dict[str, Any]]) -> int:
        return self._apply(batch_event(definition, rows))

    def record(self, definition: Definition, run: dict[str, Any]) -> None:
        self._apply(record_event(definition, run))


class LambdaSink:
    """Invokes the write function (in AWS, or local-cloud's Lambda API) with each batch,
    retrying with backoff while the single writer is busy (throttled) or S3 is unavailable."""

    def __init__(self, function_name: str, client: Any = None, attempts: int = 8) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("lambda", config=Config(read_timeout=900, retries={"max_attempts": 0}))
        self.client, self.function_name, self.attempts = client, function_name, attempts

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        delay = 0.5
        for attempt in range(self.attempts):
            try:
                response = self.client.invoke(FunctionName=self.function_name,
                                              Payload=json.dumps(event).encode())
            except self.client.exceptions.TooManyRequestsException:
                result: dict[str, Any] = {"ok": False, "retry": True, "error": "the writer is busy"}
            else:
                payload = json.loads(response["Payload"].read() or b"null")
                if response.get("FunctionError"):
                    message = payload.get("errorMessage") if isinstance(payload, dict) else payload
                    raise ImportFailed(f"the write function failed: {message}")
                result = payload if isinstance(payload, dict) else {"ok": False, "error": repr(payload)}
            if result.get("ok") or not result.get("retry") or attempt == self.attempts - 1:
                return result
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        return result

    def write(self, definition: Definition, rows: list[dict[str, Any]]) -> int:
        result = self._invoke(batch_event(definition, rows))
        if not result.get("ok"):
            raise ImportFailed(result.get("error", "the batch failed"))
        return int(result["written"])

    def record(self, definition: Definition, run: dict[str, Any]) -> None:
        self._invoke(record_event(definition, run))


# -- running --------------------------------------------------------------------------------------

@dataclass
class Progress:
    pages: int = 0
    received: int = 0
    written: int = 0
    listeners: list[Callable[[Progress], None]] = field(default_factory=list)

    def update(self) -> None:
        for listener in self.listeners:
            listener(self)


def run(definition: Definition, sink: Sink, *, today: datetime.date | None = None,
        progress: Progress | None = None) -> dict[str, Any]:
    """One run: every page, mapped, in batches of 100 rows (each one transaction); then the run
    is recorded. A failure stops the run; batches written before it stay, and because every
    mode is idempotent by key, running again ends where one clean run would."""
    progress = progress or Progress()
    secrets = Secrets()
    started = time.time()
    batch: list[dict[str, Any]] = []
    error = None
    try:
        for page in pages(definition, secrets, today):
            progress.pages += 1
            for i, record in enumerate(page.records):
                batch.append(map_record(definition, record, f"page {page.number} record {i + 1}"))
                progress.received += 1
                if len(batch) == BATCH_SIZE:
                    progress.written += sink.write(definition, batch)
                    batch = []
            progress.update()
        if batch:
            progress.written += sink.write(definition, batch)
    except ImportFailed as exc:
        error = secrets.scrub(str(exc))
    progress.update()
    finished = time.time()
    record = {
        "id": f"{definition.name}-{int(started * 1000)}",
        "name": definition.name,
        "started": datetime.datetime.fromtimestamp(started, datetime.UTC).isoformat(timespec="milliseconds"),
        "duration_s": round(finished - started, 3),
        "source": secrets.scrub(", ".join(definition.urls)),
        "target_table": definition.table,
        "mode": definition.mode,
        "pages": progress.pages,
        "rows_received": progress.received,
        "rows_written": progress.written,
        "status": "error" if error else "ok",
        "error": error,
    }
    try:
        sink.record(definition, record)
    except ImportFailed as exc:
        record["record_error"] = str(exc)
    return record


def last_runs(conn: Any, name: str | None = None, limit: int = 5) -> list[dict[str, Any]]:
    exists = conn.execute("select 1 from sqlite_master where name = ?", [RUNS_TABLE]).fetchone()
    if not exists:
        return []
    where = " where name = ?" if name else ""
    sql = f'select * from "{RUNS_TABLE}"{where} order by started desc limit ?'
    cursor = conn.execute(sql, [name, limit] if name else [limit])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


# -- the import Lambda function -------------------------------------------------------------------

def lambda_handler(event: Any, folder: Path) -> dict[str, Any]:
    """EventBridge: the schedule's Input `{"import": NAME}`, or a raw "Scheduled Event" whose
    rule or schedule name ends with the definition's name. Definitions are read from `folder`."""
    available = {d.name: d for d in load_definitions(folder)}
    name = event.get("import") if isinstance(event, dict) else None
    if name is None and isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        for resource in event.get("resources", []):
            name = next((n for n in available if resource.endswith(n)), None)
            if name:
                break
    if name not in available:
        return {"ok": False, "error": f"no import definition named {name!r} in {folder}"}
    sink = LambdaSink(os.environ["LAMBDASETTE_WRITE_FUNCTION"])
    result = run(available[name], sink)
    print(json.dumps({"import": name, **result}))  # the run, in CloudWatch Logs (never secrets)
    return result
