"""Scheduled imports: definitions, fetching pages of records, mapping them to rows, batches
through the writer (locally or by invoking the write function), and run records.

- `definition`: the definition format (see its docstring), parsing and loading.
- `fetch`: URL templates, secrets, pages of records.
- `mapping`: records to rows (`fields`).
- `runs`: a run — batches through a `Sink` — and its record in `_import_runs`.
- `sinks`: where batches go (this process's writer, or the write function) and the writer's side.

The names below are the layer's public surface (`from lambdasette import imports`).

May import: base modules, `storage`, `query`, `writes`. Never `web` or `endpoints`.
"""

from lambdasette.imports.definition import (
    Definition,
    ImportFailed,
    load_definition,
    load_definitions,
    parse_definition,
)
from lambdasette.imports.runs import Progress, Sink, last_runs, run
from lambdasette.imports.sinks import LambdaSink, LocalSink, apply_batch

__all__ = [
    "Definition", "ImportFailed", "LambdaSink", "LocalSink", "Progress", "Sink", "apply_batch",
    "last_runs", "load_definition", "load_definitions", "parse_definition", "run",
]
