"""Running an import: every page, mapped, in batches through a `Sink`; the run recorded in the
target database's `_import_runs` table.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lambdasette.imports.definition import Definition, ImportFailed
from lambdasette.imports.fetch import Secrets, pages
from lambdasette.imports.mapping import map_record

BATCH_SIZE = 100


RUNS_TABLE = "_import_runs"


class Sink(Protocol):
    def write(self, definition: Definition, rows: list[dict[str, Any]]) -> int: ...

    def record(self, definition: Definition, run: dict[str, Any]) -> None: ...


@dataclass
class Progress:
    """Where a run stands; listeners hear of it after every page and at the end."""

    pages: int = 0
    received: int = 0
    written: int = 0
    url: str = ""  # the last page's, secrets scrubbed
    page_records: int = 0  # records on the last page
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
            progress.url, progress.page_records = page.url, len(page.records)
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
