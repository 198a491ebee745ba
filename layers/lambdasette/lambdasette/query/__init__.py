"""Query: read-side SQL, from a request's arguments to rows and their rendering.

- `schema`: what a database contains (the one model of tables, views, keys, FTS).
- `table_plan`: the SQL of a table page — `filters`, `fts` search, sort and `pagination`.
- `values`: cell values written into URLs (next tokens, facet links) and read back typed.
- `facets`, `labels`: facet counts and foreign-key labels for a page.
- `execute`: running SQL on a read connection — preparation, time limits, row caps.
- `render`, `csvout`: rows as JSON values and shapes, and as CSV.
- `quote`: SQL identifier quoting (always `"`, doubled inside).
- `internal`: lambdasette's own tables in each database (stored queries, column types), read.

May import: base modules, `auth` (the authorizer). Never `web`, `endpoints` or the instance:
what a query needs is passed in as values.
"""
