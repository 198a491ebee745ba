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


class Metadata:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = data or {}
        self._tables: dict[tuple[str, str], TableConfig] = {}
        for db_name, db in (self.data.get("databases") or {}).items():
            for table_name, config in ((db or {}).get("tables") or {}).items():
                self._tables[(db_name, table_name)] = TableConfig.from_dict(config or {})

    @classmethod
    def load(cls, path: Path | None) -> Metadata:
        return cls(load_document(path) or {}) if path is not None else cls()

    def table(self, database: str, table: str) -> TableConfig:
        return self._tables.get((database, table), EMPTY)
