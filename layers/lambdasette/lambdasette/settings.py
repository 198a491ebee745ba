"""Datasette's settings: names, defaults, parsing from the CLI and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from lambdasette.errors import ApiError

TRUE = ("on", "true", "1", "yes")
FALSE = ("off", "false", "0", "no")


# Settings whose value is one of a few words.
CHOICES: dict[str, tuple[str, ...]] = {"default_json_api": ("0.65", "1.0")}


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (use on/off)")


@dataclass
class Settings:
    default_page_size: int = 100
    max_returned_rows: int = 1000
    sql_time_limit_ms: int = 1000
    default_facet_size: int = 30
    facet_time_limit_ms: int = 200
    facet_suggest_time_limit_ms: int = 50
    allow_facet: bool = True
    suggest_facets: bool = True
    default_allow_sql: bool = True
    allow_csv_stream: bool = True
    max_csv_mb: int = 100
    default_cache_ttl: int = 5
    max_insert_rows: int = 100
    max_post_body_bytes: int = 2 * 1024 * 1024
    # The largest string or BLOB one query may make or read (SQLITE_LIMIT_LENGTH).
    max_value_mb: int = 8
    force_https_urls: bool = False
    trace_debug: bool = False
    # The most one answer may hold (0: no cap). Lambda answers at most 6 MB, so the Lambda
    # handlers set 5 MiB (handlers.lambda_app); a local server has no such limit.
    max_response_bytes: int = 0
    # Replicated storage: how long a write waits for the replica to confirm it, and how long a
    # read carrying X-Lambdasette-Txid waits for this copy to catch up.
    replica_sync_timeout_s: int = 30
    txid_wait_ms: int = 5000
    # Every read on a replica follower first asks S3 for the newest transaction (one LIST)
    # and waits for it: reads then see every acknowledged write. Off: up to about a second
    # behind (a follower of a database in use polls once a second), one LIST cheaper.
    replica_fresh_reads: bool = True
    # The JSON format of answers that do not ask for one: Datasette 0.65's ("0.65") or
    # 1.0a41's ("1.0"). A request asks for 1.0a41 with `?_extra=` or a 1.0-only URL whatever
    # this says (see `web.context.Context.api`).
    default_json_api: str = "0.65"
    # A request waits at most this long for a database to be restored (or its first snapshot
    # uploaded), then answers 503 with Retry-After while the work goes on. In Lambda the
    # invocation's remaining time (less a margin; at most API Gateway's 30 s) caps it further.
    replica_restore_wait_ms: int = 25000
    # Caps on what copies of databases may use; 0 derives them from the function's memory
    # (AWS_LAMBDA_FUNCTION_MEMORY_SIZE) and the data directory's size (ephemeral storage).
    replica_max_followers: int = 0
    replica_max_local_mb: int = 0
    # A reader stops following a database after this many seconds without a request for it
    # (the copy stays, and catches up on its next use).
    replica_idle_s: int = 600
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "extra"]

    def set(self, name: str, raw: str) -> None:
        if name not in self.names():
            raise ValueError(f"Unknown setting: {name} (settings: {', '.join(self.names())})")
        current = getattr(self, name)
        if name in CHOICES:
            value = raw.strip()
            if value not in CHOICES[name]:
                raise ValueError(f"Setting {name} must be one of {', '.join(CHOICES[name])}, got {raw!r}")
            setattr(self, name, value)
        elif isinstance(current, bool):
            setattr(self, name, parse_bool(raw))
        else:
            try:
                number = int(raw)
            except ValueError:
                raise ValueError(f"Setting {name} must be an integer, got {raw!r}") from None
            if number < 0:
                raise ValueError(f"Setting {name} must not be negative")
            setattr(self, name, number)

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names()}

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> Settings:
        settings = cls()
        for name, value in pairs:
            settings.set(name, value)
        return settings

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """LAMBDASETTE_SETTING_<NAME>=value, as a deployed function receives them."""
        environ = dict(os.environ if environ is None else environ)
        settings = cls()
        prefix = "LAMBDASETTE_SETTING_"
        for key, value in environ.items():
            if key.startswith(prefix):
                settings.set(key[len(prefix):].lower(), value)
        return settings


# One line per setting, for `lambdasette serve --help` (a test checks every setting has one).
HELP = {
    "default_page_size": "rows per table page",
    "max_returned_rows": "cap for _size, SQL results (truncated) and _facet_size=max",
    "sql_time_limit_ms": "time limit of every query; _timelimit can only lower it",
    "default_facet_size": "facet values shown per facet",
    "facet_time_limit_ms": "time limit of each facet",
    "facet_suggest_time_limit_ms": "time limit of each facet suggestion",
    "allow_facet": "off: no _facet",
    "suggest_facets": "off: no suggested facets",
    "default_allow_sql": "off: nobody may run ?sql= or _where",
    "allow_csv_stream": "off: no _stream=on",
    "max_csv_mb": "CSV exports stop there and say so",
    "default_cache_ttl": "Cache-Control max-age in seconds; _ttl overrides",
    "max_insert_rows": "rows per insert, upsert or create request",
    "max_post_body_bytes": "larger request bodies are a 413",
    "max_value_mb": "the largest string or BLOB a query may make or read",
    "force_https_urls": "URLs in answers use https",
    "trace_debug": "accepted for Datasette compatibility; no effect",
    "max_response_bytes": "the most one answer holds (0: no cap; 5 MiB in Lambda)",
    "replica_sync_timeout_s": "how long a write waits for the replica to confirm it (then 503)",
    "txid_wait_ms": "how long a read waits for its copy to catch up (then 503)",
    "replica_fresh_reads": "a replica reader asks S3 for the newest transaction before each read",
    "default_json_api": "1.0: answer in Datasette 1.0a41's format wherever a request does not ask",
    "replica_restore_wait_ms": "how long a request waits for a restore, then 503 + Retry-After",
    "replica_max_followers": "live followers at most (0: from the function's memory)",
    "replica_max_local_mb": "MB of local copies at most (0: from the data directory's size)",
    "replica_idle_s": "a reader stops following a database after this long without a request",
}


def describe() -> list[tuple[str, str, str]]:
    """(name, default, what it does) for every setting, booleans as on/off."""
    defaults = Settings()
    out = []
    for name in Settings.names():
        value = getattr(defaults, name)
        shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
        out.append((name, shown, HELP.get(name, "")))
    return out


def query_bool(value: str | None, name: str) -> bool:
    """A boolean query-string argument; anything unrecognised is a 400, not a 500."""
    if value is None:
        return False
    try:
        return parse_bool(value)
    except ValueError:
        raise ApiError(400, f"{name} must be on/off, true/false or 1/0") from None
