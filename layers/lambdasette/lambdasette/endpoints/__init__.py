"""The API's endpoints, one module per kind of resource: `index` (the instance), `special`
(`/-/` pages), `database` (a database and its SQL), `table`, `row`, `write` (the write API),
`execute` (execute-write), `queries` (stored queries), `schema` (the schema pages), `canned`
(named queries), `blob`, `tokens` (the token API), and `extras` (1.0a41's `?_extra=` blocks).
Each handler takes a `web.context.Context` and returns a response.

The pages for people sit beside them: `pages` (instance, database, table and row pages),
`signin` (signing in and out), `tokens_pages` (the API tokens pages, on `tokens`' rules),
`openapi` (the OpenAPI document and the explorer) and `static` (the files pages load).

May import: everything below it (base modules, `storage`, `auth`, `query`, `writes`, the
instance, `web`'s context, responses and bodies).
"""
