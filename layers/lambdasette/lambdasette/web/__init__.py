"""Web: HTTP in and out, around the endpoints.

- `app`: the Starlette application — the one dispatch: resolve, authenticate, route, map
  errors to HTTP, add the headers every response carries.
- `routing`: request paths to what they name (`Target`).
- `context`: what every endpoint receives.
- `responses`: JSON bodies, errors, caching, Link and CORS headers.
- `csvresponse`: CSV answers for table, row and query pages (header, download, byte caps).
- `body`: request bodies, capped and parsed.

May import: base modules, `storage`, `auth`, `query`, `writes`, the instance.
"""
