"""Web: HTTP in and out, around the endpoints.

- `app`: the Starlette application — the one dispatch: resolve, authenticate, route, map
  errors to HTTP, add the headers every response carries.
- `routing`: request paths to what they name (`Target`).
- `context`: what every endpoint receives.
- `responses`: JSON bodies, errors, caching, Link and CORS headers.
- `csvresponse`: CSV answers for table, row and query pages (header, download, byte caps).
- `body`: request bodies, capped and parsed.
- `html`: which requests get a page (`wants_html`), rendering one (`render`), the page headers
  (CSP and the rest), error pages.
- `templates`: the Jinja2 environment over `templates/*.html` - imported only on the HTML
  path, never by the JSON API.
- `cookies`: the session and sign-in cookies, and the checks on requests that carry them.
- `assets`: the static files under `static/` (CSS, scripts, the vendored Swagger UI).
- `humanize`: times and restrictions as people read them.

May import: base modules, `storage`, `auth`, `query`, `writes`, the instance.
"""
