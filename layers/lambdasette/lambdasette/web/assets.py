"""The files pages load - CSS, scripts, the vendored Swagger UI - shipped inside the package
(`web/static/`, package data; the Lambda layer copies the package whole) and served at
`/-/static/<path>`: no CDN, no build step.

Only files that exist under `web/static/` are served, found through a listing made once (a
request never names a path on disk). Each page links to `url(name)`, which carries a hash of
the file's content, so answers can be cached for a year (`immutable`) and a new release is
fetched at once. Text files are gzipped once per process for clients that accept it
(the Swagger UI bundle: 1.7 MB, about 0.5 MB gzipped).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/plain; charset=utf-8",  # never rendered as a page from here
}


@dataclass
class Asset:
    path: Path
    media_type: str
    digest: str
    body: bytes
    gzipped: bytes | None = None


_assets: dict[str, Asset] | None = None
_lock = threading.Lock()


def _load() -> dict[str, Asset]:
    global _assets
    if _assets is None:
        with _lock:
            if _assets is None:
                found = {}
                for path in sorted(STATIC.rglob("*")):
                    if path.is_file() and (path.suffix in TYPES or path.name in ("LICENSE", "NOTICE")):
                        body = path.read_bytes()
                        media = TYPES.get(path.suffix, "text/plain; charset=utf-8")
                        found[path.relative_to(STATIC).as_posix()] = Asset(
                            path, media, hashlib.sha256(body).hexdigest()[:12], body)
                _assets = found
    return _assets


def get(name: str) -> Asset | None:
    """The asset called `name` (a path relative to `web/static/`), if there is one."""
    return _load().get(name)


def url(name: str) -> str:
    """The URL a page links to for asset `name`: it changes whenever the file does."""
    asset = get(name)
    if asset is None:
        raise KeyError(f"no static file {name}")
    return f"/-/static/{name}?v={asset.digest}"


def gzipped(asset: Asset) -> bytes:
    """The asset gzipped (made once per process)."""
    if asset.gzipped is None:
        asset.gzipped = gzip.compress(asset.body, compresslevel=6, mtime=0)
    return asset.gzipped
