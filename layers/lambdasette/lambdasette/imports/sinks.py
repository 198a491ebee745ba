"""Where an import's batches go: the writer in this process (`LocalSink`, the CLI) or the write
function, invoked (`LambdaSink`, the import function); `apply_batch` is the writer's side.
"""

from __future__ import annotations

import json
import time
from typing import Any

from lambdasette.imports.definition import MODES, Definition, ImportFailed
from lambdasette.imports.runs import RUNS_TABLE


def batch_event(definition: Definition, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"lambdasette": "import-batch", "database": definition.database, "table": definition.table,
            "pk": definition.pk, "mode": definition.mode, "rows": rows}


def record_event(definition: Definition, run: dict[str, Any]) -> dict[str, Any]:
    return {"lambdasette": "import-batch", "database": definition.database, "table": RUNS_TABLE,
            "pk": "id", "mode": "insert", "rows": [run]}


def apply_batch(ds: Any, event: dict[str, Any]) -> dict[str, Any]:
    """The write function's side: one batch, one transaction, through the writer."""
    from lambdasette.errors import ApiError, DatabaseNotFound, ReplicaUnavailable
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
    except ApiError as exc:  # the batch's fault: constraint failures, bad values, no such table
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
