"""Writes: how data changes.

- `transaction`: the `Writer` — one connection and one lock per database, `BEGIN IMMEDIATE …
  COMMIT`, acknowledged once the storage says the commit is durable.
- `tables`: the writable-table model and the table vocabulary (create, drop, alter).
- `rows`: the row vocabulary (insert, upsert, update, delete) and JSON values into SQLite values.
- `sql`: a caller's write SQL (execute-write): analysed, judged, run in the sandbox, checked.
- `internal`: lambdasette's own tables (stored queries, column types), written.

May import: base modules, `storage`, `auth` (the write-SQL analysis), `query` (schema, quoting).
Never `web` or `endpoints`.
"""
