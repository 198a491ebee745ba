"""Facets: counts of distinct values (column, JSON array, date) for a table page."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from .metadata import TableConfig
from .schema import Schema, Table

if TYPE_CHECKING:
    from .endpoints.context import Context
    from .tablequery import TablePlan


def compute(
    ctx: Context, conn: sqlite3.Connection, schema: Schema, table: Table, plan: TablePlan,
    config: TableConfig, count: int | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return {}, []
