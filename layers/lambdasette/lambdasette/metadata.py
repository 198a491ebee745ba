"""Datasette's metadata file: per-table options the JSON API honours."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TableConfig:
    sort: str | None = None
    sort_desc: str | None = None
    size: int | None = None
    sortable_columns: list[str] | None = None
    label_column: str | None = None
    facets: list[Any] = field(default_factory=list)
    facet_size: int | str | None = None
    fts_table: str | None = None
    fts_pk: str | None = None
    searchmode: str | None = None
    hidden: bool = False
    units: dict[str, str] = field(default_factory=dict)
    # The instance's `custom_units` (Pint definitions), which the table's units may use.
    custom_units: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


EMPTY = TableConfig()


def load_document(path: Path) -> Any:
    """A JSON or YAML configuration file (by its suffix), parsed."""
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


ABOUT_KEYS = ("source", "source_url", "license", "license_url")
DESCRIPTIVE_KEYS = ("title", "description", "description_html", "license", "license_url", "source",
                    "source_url", "about", "about_url")


@dataclass(frozen=True)
class CannedQuery:
    """A named query from metadata `queries:` (`/<db>/<name>.json`)."""

    name: str
    sql: str
    write: bool = False
    title: str | None = None
    description: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {**self.options, "name": self.name}


class Metadata:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = data or {}
        self._tables: dict[tuple[str, str], TableConfig] = {}
        self._queries: dict[str, dict[str, CannedQuery]] = {}
        for db_name, db in (self.data.get("databases") or {}).items():
            for table_name, config in ((db or {}).get("tables") or {}).items():
                custom = tuple(str(u) for u in self.data.get("custom_units") or ())
                self._tables[(db_name, table_name)] = TableConfig.from_dict(
                    {**(config or {}), "custom_units": custom})
            for query_name, query in ((db or {}).get("queries") or {}).items():
                # Datasette accepts `name: "select ..."` as short for `name: {sql: "select ..."}`.
                options = dict(query) if isinstance(query, dict) else {"sql": str(query)}
                self._queries.setdefault(db_name, {})[str(query_name)] = CannedQuery(
                    name=str(query_name), sql=str(options.get("sql") or ""),
                    write=bool(options.get("write")), title=options.get("title"),
                    description=options.get("description"), options=options,
                )

    def about(self) -> dict[str, Any]:
        """The instance's `source`, `license` and their URLs, as 0.65 adds them to every
        table, row, database and query answer."""
        return {key: self.data[key] for key in ABOUT_KEYS if self.data.get(key)}

    def queries(self, database: str) -> dict[str, CannedQuery]:
        """The canned queries metadata defines for `database`, by name."""
        return self._queries.get(database, {})

    def as_json(self) -> dict[str, Any]:
        """The metadata as `/-/metadata.json` shows it: as given, each query with its name."""
        out = json.loads(json.dumps(self.data, default=str))
        for db_name, queries in self._queries.items():
            out["databases"][db_name]["queries"] = {n: q.as_json() for n, q in queries.items()}
        return out

    @classmethod
    def load(cls, path: Path | None) -> Metadata:
        return cls(load_document(path) or {}) if path is not None else cls()

    def resource(self, database: str, table: str) -> dict[str, Any]:
        """A table's descriptive metadata as 1.0a41's `?_extra=metadata` gives it: its title,
        description, license and source (and their URLs), plus `columns`, the column
        descriptions."""
        db = (self.data.get("databases") or {}).get(database) or {}
        raw = ((db.get("tables") or {}).get(table)) or {}
        out = {key: raw[key] for key in DESCRIPTIVE_KEYS if raw.get(key) is not None}
        columns = raw.get("columns")
        out["columns"] = {str(k): v for k, v in columns.items()} if isinstance(columns, dict) else {}
        return out

    def instance(self) -> dict[str, Any]:
        """The instance's descriptive metadata (title, description, license, source...)."""
        return {key: self.data[key] for key in DESCRIPTIVE_KEYS if self.data.get(key) is not None}

    def database(self, database: str) -> dict[str, Any]:
        """A database's descriptive metadata (title, description, license, source...)."""
        db = (self.data.get("databases") or {}).get(database) or {}
        return {key: db[key] for key in DESCRIPTIVE_KEYS if db.get(key) is not None}

    def table(self, database: str, table: str) -> TableConfig:
        return self._tables.get((database, table), EMPTY)
