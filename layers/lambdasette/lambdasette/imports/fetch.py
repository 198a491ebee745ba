"""Fetching an import's source: URL templates, secrets from the environment (scrubbed from every
message), pages of records followed by next-URL, Link header or page number.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lambdasette.imports.definition import Definition, ImportFailed
from lambdasette.imports.mapping import dig

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
