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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES = ("insert", "replace", "upsert")


TYPES = {"integer": int, "real": float, "text": str}


class ImportFailed(Exception):
    """A run that cannot go on: the message says where and why (never a secret)."""


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
