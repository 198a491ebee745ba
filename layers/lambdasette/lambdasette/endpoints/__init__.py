"""The API's endpoints, one module per kind of resource: `index` (the instance), `special`
(`/-/` pages), `database` (a database and its SQL), `table`, `row`, `write` (the write API)
and `tokens` (the token API). Each handler takes a `web.context.Context` and returns a response.

May import: everything below it (base modules, `storage`, `auth`, `query`, `writes`, the
instance, `web`'s context, responses and bodies).
"""
