"""What a database contains: tables, views, columns, keys, foreign keys, FTS tables.

Introspection runs once per schema version of each database and is cached.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from lambdasette.auth import authorizer
from lambdasette.names import fold
from lambdasette.query import values
from lambdasette.query.internal import is_internal as is_own
from lambdasette.query.quote import quote


@dataclass(frozen=True)
class ForeignKey:
    column: str
    other_table: str
    other_column: str

    def outgoing(self) -> dict[str, str]:
        return {"other_table": self.other_table, "column": self.column, "other_column": self.other_column}


@dataclass
class Table:
    name: str
    columns: list[str]
    pks: list[str]
    all_columns: list[str] = field(default_factory=list)
    is_view: bool = False
    is_virtual: bool = False
    has_rowid: bool = True
    hidden: bool = False
    fts_table: str | None = None
    outgoing: list[ForeignKey] = field(default_factory=list)
    incoming: list[dict[str, str]] = field(default_factory=list)
    column_types: dict[str, str] = field(default_factory=dict)
    not_null: set[str] = field(default_factory=set)
    strict: bool = False
    # An FTS table's hidden columns, which its table pages show (row pages do not).
    hidden_columns: list[str] = field(default_factory=list)

    def affinity(self, column: str) -> str:
        """How SQLite compares a bound value with this column (see `values`)."""
        if column == "rowid" and column not in self.column_types:
            return values.INTEGER
        return values.affinity(self.column_types.get(column, ""), strict=self.strict)

    @property
    def rowid_alias(self) -> bool:
        """The primary key is an INTEGER PRIMARY KEY: the rowid under another name."""
        return (self.has_rowid and not self.is_view and len(self.pks) == 1
                and self.column_types.get(self.pks[0], "").upper() == "INTEGER")

    @property
    def rowid_tiebreak(self) -> bool:
        """Rows may share a primary key: SQLite lets a rowid table's non-INTEGER key columns
        hold NULLs, and NULLs are never equal, so the rowid is needed to tell them apart."""
        return (self.has_rowid and not self.is_view and not self.is_virtual and bool(self.pks)
                and not self.rowid_alias and any(pk not in self.not_null for pk in self.pks))

    @property
    def uses_rowid(self) -> bool:
        """Rows are addressed by rowid: a rowid table without an explicit primary key."""
        return not self.pks and self.has_rowid and not self.is_view

    @property
    def row_keys(self) -> list[str]:
        """The columns that identify a row in a URL or a `next` token."""
        if self.pks:
            return self.pks
        return ["rowid"] if self.uses_rowid else []

    def fk_for(self, column: str) -> ForeignKey | None:
        for fk in self.outgoing:
            if fk.column == column:
                return fk
        return None


T = TypeVar("T")


@dataclass(frozen=True)
class SchemaObject:
    """One row of sqlite_master."""

    type: str
    name: str
    tbl_name: str
    sql: str | None


@dataclass
class Schema:
    version: int
    tables: dict[str, Table]
    # Everything in sqlite_master, Litestream's tables included (for the shadow schema that
    # words a caller's errors: query.visibility).
    objects: list[SchemaObject] = field(default_factory=list)
    # SQLite's, Litestream's and lambdasette's own tables present (folded): hidden from everyone.
    internal: frozenset[str] = frozenset()
    # index (folded) -> its table (folded)
    indexes: dict[str, str] = field(default_factory=dict)
    # view (folded) -> every table and view it reads, however deep (folded)
    view_reads: dict[str, frozenset[str]] = field(default_factory=dict)
    # Per-caller derivations (query.visibility), computed once per schema version.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def get(self, name: str) -> Table | None:
        return self.tables.get(name)

    @property
    def lambdasette_tables(self) -> frozenset[str]:
        """lambdasette's own tables present (`query.internal`), folded."""
        return frozenset(name for name in self.internal if is_own(name))

    def remember(self, kind: str, key: Hashable, compute: Callable[[], T], limit: int = 64) -> T:
        """`compute()` once per `key` for this schema version, keeping at most `limit` of a
        kind: there is one per set of hidden tables, and callers choose their restrictions."""
        table = self.memo.setdefault(kind, {})
        value = table.get(key)
        if value is None:
            value = compute()
            if len(table) >= limit:
                table.pop(next(iter(table), None), None)  # the oldest
            table[key] = value
        return value

    @property
    def known(self) -> frozenset[str]:
        """Every table and view (folded): what a statement may name at all."""
        known = self.memo.get("known")
        if known is None:
            known = self.memo["known"] = frozenset(fold(name) for name in self.tables)
        return known

    def closed(self, hidden: set[str] | frozenset[str]) -> frozenset[str]:
        """`hidden` (folded names) plus SQLite's internal tables and every view that reads
        any of them: a view over a table the caller may not view cannot be read either, so it
        is hidden too (and its errors cannot name the table)."""
        out = set(hidden) | self.internal
        for view, reads in self.view_reads.items():
            if reads & out:
                out.add(view)
        return frozenset(out)

    @property
    def always_hidden(self) -> frozenset[str]:
        """What nobody sees: internal tables and views over them."""
        hidden = self.memo.get("always_hidden")
        if hidden is None:
            hidden = self.memo["always_hidden"] = self.closed(frozenset())
        return hidden

    def without(self, hidden: frozenset[str]) -> Schema:
        """This schema as seen by a caller who may not view the `hidden` tables (folded):
        they and every foreign key or FTS link to them are gone."""
        if not hidden:
            return self
        return self.remember("without", hidden, lambda: self._without(hidden))

    def _without(self, hidden: frozenset[str]) -> Schema:
        tables = {}
        for name, table in self.tables.items():
            if fold(name) in hidden:
                continue
            tables[name] = replace(
                table,
                outgoing=[fk for fk in table.outgoing if fold(fk.other_table) not in hidden],
                incoming=[fk for fk in table.incoming if fold(fk["other_table"]) not in hidden],
                fts_table=table.fts_table if table.fts_table and fold(table.fts_table) not in hidden
                else None,
            )
        return replace(self, tables=tables, memo={})

    def is_shadow(self, name: str) -> bool:
        """Is `name` a shadow table of a virtual table (an FTS index's or an R*Tree's
        storage, named `<virtual table>_<suffix>`)?"""
        return any(
            table.is_virtual and name != table.name and name.startswith(table.name + "_")
            for table in self.tables.values()
        )

    def owners(self) -> dict[str, str]:
        """FTS tables and their storage tables, mapped to the table whose rows they index:
        whoever may not see a table may not see its index either."""
        owner: dict[str, str] = {}
        for table in self.tables.values():
            fts = table.fts_table
            if not fts or fts not in self.tables:
                continue
            prefix = fts + "_"
            for name in [fts] + [t for t in self.tables if t.startswith(prefix) and self.tables[t].hidden]:
                if name != table.name and owner.get(name) in (None, fts):
                    owner[name] = table.name
        # An FTS table's storage belongs to whatever owns the FTS table itself.
        for name, parent in owner.items():
            seen = {name}
            while parent in owner and parent not in seen:
                seen.add(parent)
                parent = owner[parent]
            owner[name] = parent
        return owner


LITESTREAM_PREFIX = "_litestream_"

_FTS_CONTENT = re.compile(
    r"""content\s*=\s*(?:\[([^\]]*)\]|"((?:[^"]|"")*)"|'((?:[^']|'')*)'|([^\s,)]+))""", re.I
)


def _is_fts(sql: str | None) -> bool:
    return bool(sql) and re.search(r"VIRTUAL\s+TABLE.*USING\s+FTS", sql or "", re.I | re.S) is not None


def _fts_content_table(sql: str) -> str | None:
    match = _FTS_CONTENT.search(sql)
    if not match:
        return None
    bracket, dquoted, squoted, bare = match.groups()
    if bracket is not None:
        return bracket
    if dquoted is not None:
        return dquoted.replace('""', '"')
    if squoted is not None:
        return squoted.replace("''", "'")
    return bare


_OPTION = r"(?:WITHOUT\s+ROWID|STRICT)"
_OPTIONS = re.compile(rf"\)\s*({_OPTION}(?:\s*,\s*{_OPTION})*)\s*;?\s*$", re.I)


def _table_options(sql: str) -> set[str]:
    """The table options after the column list: "WITHOUT ROWID", "STRICT"."""
    match = _OPTIONS.search(sql)
    if not match:
        return set()
    return {" ".join(part.upper().split()) for part in match.group(1).split(",")}


def load_schema(conn: sqlite3.Connection, version: int) -> Schema:
    """Introspect `conn`'s database; run with no authorizer (`authorizer.trusted`)."""
    objects = [
        SchemaObject(*row) for row in
        conn.execute("select type, name, tbl_name, sql from sqlite_master").fetchall()
    ]
    master = conn.execute(
        "select name, type, rootpage, sql from sqlite_master where type in ('table', 'view')"
    ).fetchall()
    tables: dict[str, Table] = {}
    hidden_prefixes: list[str] = []
    fts_for: dict[str, str] = {}
    for name, kind, rootpage, sql in master:
        if kind == "table" and rootpage == 0 and _is_fts(sql):
            hidden_prefixes.append(name)
            fts_for.setdefault(name, name)
            content = _fts_content_table(sql)
            if content:
                fts_for.setdefault(content, name)
    for name, kind, rootpage, sql in master:
        if fold(name).startswith(LITESTREAM_PREFIX) or is_own(name):
            continue  # Litestream's bookkeeping and lambdasette's, not the user's data
        try:
            xinfo = conn.execute(f"PRAGMA table_xinfo({quote(name)})").fetchall()
        except sqlite3.Error:
            # A view over a dropped table, or one SQLite refuses to expand (it calls a
            # direct-only function): reading it fails for every caller; listing it must not.
            xinfo = []
        # Hidden columns of virtual tables (hidden == 1) are not part of `select *`; an FTS
        # table's pages list them all the same (its own name, `rank`, `docid`), as 0.65 does.
        fts = kind == "table" and rootpage == 0 and _is_fts(sql)
        info = [row for row in xinfo if row[6] != 1]
        pk_cols = sorted((row for row in info if row[5]), key=lambda row: row[5])
        options = _table_options(sql or "")
        table = Table(
            name=name,
            columns=[row[1] for row in info],
            all_columns=[row[1] for row in xinfo],
            pks=[row[1] for row in pk_cols],
            is_view=kind == "view",
            is_virtual=kind == "table" and rootpage == 0,
            has_rowid=kind == "table" and "WITHOUT ROWID" not in options,
            column_types={row[1]: (row[2] or "") for row in info},
            not_null={row[1] for row in info if row[3]},
            strict="STRICT" in options,
            hidden_columns=[row[1] for row in xinfo if row[6] == 1] if fts else [],
        )
        if kind == "table":
            table.hidden = (fold(name).startswith("sqlite_")
                            or any(name.startswith(p) for p in hidden_prefixes))
            table.fts_table = fts_for.get(name)
        tables[name] = table
    for table in tables.values():
        if table.is_view:
            continue
        rows = conn.execute(f"PRAGMA foreign_key_list({quote(table.name)})").fetchall()
        # A compound foreign key (several rows with one id) is no column's label: 0.65
        # leaves such keys out of labels, CSV labels and the database page.
        ids = Counter(row[0] for row in rows)
        for row in rows:
            if ids[row[0]] > 1:
                continue
            other_table, column, other_column = row[2], row[3], row[4]
            if other_column is None:
                target = tables.get(other_table)
                other_column = target.pks[0] if target and target.pks else "rowid"
            table.outgoing.append(ForeignKey(column, other_table, other_column))
    for table in tables.values():
        for fk in table.outgoing:
            target = tables.get(fk.other_table)
            if target is not None:
                target.incoming.append(
                    {"other_table": table.name, "column": fk.other_column, "other_column": fk.column}
                )
    internal = frozenset(
        fold(o.name) for o in objects if o.type == "table" and authorizer.is_internal(o.name)
    )
    indexes = {fold(o.name): fold(o.tbl_name) for o in objects if o.type == "index"}
    view_reads = {fold(t.name): _reads(conn, t.name) for t in tables.values() if t.is_view}
    return Schema(version=version, tables=tables, objects=objects, internal=internal,
                  indexes=indexes, view_reads=view_reads)


def _reads(conn: sqlite3.Connection, view: str) -> frozenset[str]:
    """Every table and view that reading `view` reads, as SQLite itself resolves it."""
    reads: set[str] = set()

    def collect(code: int, arg1: str | None, *_: object) -> int:
        if code == sqlite3.SQLITE_READ and arg1:
            reads.add(fold(arg1))
        return sqlite3.SQLITE_OK

    conn.set_authorizer(collect)
    try:
        conn.execute(f"explain select * from {quote(view)}").fetchall()
    except sqlite3.Error:
        pass  # a broken view: whatever it reads, it cannot be read
    finally:
        conn.set_authorizer(None)
    reads.discard(fold(view))
    return frozenset(reads)


class SchemaCache:
    """Per-database schemas, refreshed when SQLite's schema_version changes."""

    def __init__(self) -> None:
        self._schemas: dict[str, Schema] = {}
        self._lock = threading.Lock()

    def get(self, name: str, conn: sqlite3.Connection) -> Schema:
        # Every guard allows this pragma: it names no table.
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        schema = self._schemas.get(name)
        if schema is None or schema.version != version:
            with authorizer.trusted(conn):
                schema = load_schema(conn, version)
            with self._lock:
                self._schemas[name] = schema
        return schema
