"""What a caller's write SQL does, found by SQLite itself, and what that requires.

`analyze` prepares `EXPLAIN <sql>` with an authorizer that records every callback SQLite
makes while it compiles the statement: each table read, row inserted, updated or deleted
(in the statement itself, in the triggers it fires, in foreign-key actions, through views
and CTEs, in `RETURNING`), each schema change, pragma, function, transaction or ATTACH. No SQL
is parsed by hand: SQLite's compiler is the one that will run the statement, so what it
reports is what the statement can do. The statement is analysed on the connection and in the
transaction that then runs it, so nothing can change in between.

`decide` turns each operation into a decision, deny by default (as Datasette 1.0a41's
`write_sql.decision_for_write_sql_operation`, stricter where noted):

- a read of a table or view needs `view-table` on it (for an FTS index or its storage: on
  the table it indexes);
- an INSERT or UPDATE needs `insert-row`, `update-row` and `delete-row` on the table (an
  insert may REPLACE rows, an upsert update them), a DELETE needs `delete-row`;
- CREATE TABLE needs `create-table`, CREATE VIEW `create-view` (database level); DROP TABLE
  `drop-table`, DROP VIEW `drop-view`, ALTER TABLE and CREATE/DROP INDEX `alter-table` on the
  table;
- refused outright (403): VACUUM; writes to virtual tables (an FTS index) and their shadow
  tables, except the writes a table's own triggers make to its FTS index, which need the row
  actions on the indexed table; writes to SQLite's, Litestream's and lambdasette's own tables;
  anything outside the `main` schema (TEMP objects, attached databases: a TEMP trigger would
  outlive the request on the shared writer connection); and every other kind of statement —
  PRAGMA, ATTACH/DETACH, BEGIN/COMMIT/SAVEPOINT, CREATE TRIGGER, CREATE VIRTUAL TABLE,
  ANALYZE, REINDEX — as unsupported (stricter than 1.0a41 for triggers' virtual-table writes:
  1.0a41 refuses them, which makes FTS-indexed tables unwritable);
- SQLite's own bookkeeping while it carries out a schema change (updating `sqlite_master`,
  the rename functions, `sqlite_sequence` on a rename) is ignored, as 1.0a41 ignores it —
  but only what SQLite itself does: see `_operations`.

Reads inside write SQL follow the read path's rule (`judge`'s `read_allowed`, the caller's
`authorizer.Guard`): a read of a table the caller may not view, of a view over one, of
`sqlite_master` while some table is hidden from the caller, of SQLite's, Litestream's or
lambdasette's own tables, of `dbstat` and the like is refused, and so is every pragma
function (`pragma_table_info`, ...).

**The analysis has no side effects.** SQLite carries out many PRAGMAs (`writable_schema`,
`query_only`, `hard_heap_limit`, ...) while it *compiles* a statement, so the recording
authorizer refuses them (`authorizer.write_pragma_allowed`) instead of recording them and
judging afterwards: compiling stops there, and the analysis reports the refused pragma.
ATTACH and DETACH are refused the same way. Nothing else a statement can hold acts before
it runs.

A statement with no write operation is not a write (400: use `/-/query`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field

from lambdasette.auth import authorizer
from lambdasette.names import fold

SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})
# SQLite's internal tables (other than the schema tables) and the prefixes of Litestream's and
# lambdasette's: no caller's SQL writes them.
INTERNAL_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3",
                             "sqlite_stat4"})
INTERNAL_PREFIXES = ("_litestream_", "_lambdasette_")
RENAME_FUNCTIONS = frozenset({"sqlite_drop_column", "sqlite_rename_column", "sqlite_rename_quotefix",
                              "sqlite_rename_table", "sqlite_rename_test"})
ROW_ACTIONS = ("insert-row", "update-row", "delete-row")
WRITE_OPERATIONS = frozenset({"insert", "update", "delete", "create", "alter", "drop", "begin",
                              "commit", "rollback", "savepoint", "attach", "detach", "pragma",
                              "analyze", "reindex", "vacuum", "unknown"})


def is_internal_table(name: str) -> bool:
    """SQLite's, Litestream's or lambdasette's own table: no caller's SQL touches it. Every
    `sqlite_` name is SQLite's (as 1.0a41 and SQLite itself reserve them), the schema
    tables included."""
    lowered = fold(name)  # as SQLite compares names (`names.fold`)
    return (lowered in INTERNAL_TABLES or lowered.startswith(INTERNAL_PREFIXES)
            or lowered.startswith("sqlite_"))


def reserved_name(name: str) -> bool:
    """A name no caller's statement may give an object: SQLite's, Litestream's, ours."""
    folded = fold(name)
    return folded.startswith("sqlite_") or folded.startswith(INTERNAL_PREFIXES)


@dataclass(frozen=True)
class Operation:
    """One thing a statement does, as SQLite reported it.

    `operation`: read, insert, update, delete, create, drop, alter, select, function, pragma,
    attach, detach, begin/commit/rollback, savepoint, analyze, reindex, vacuum or unknown;
    `target_type`: table, view, index, trigger, virtual-table, schema (sqlite_master),
    transaction, database, pragma, function, statement or unknown; `table` the table (or
    view) concerned, `target` what the operation names (an index's, a function's name);
    `schema` SQLite's schema name (main, temp, ...); `source` the trigger, view or CTE inside
    which it happens (None: the statement itself); `kind` for reads and row writes of a table:
    table, view, virtual, shadow or internal; `internal` SQLite's own bookkeeping."""

    operation: str
    target_type: str
    table: str | None
    target: str | None
    schema: str | None
    source: str | None = None
    kind: str | None = None
    internal: bool = False
    columns: tuple[str, ...] = ()


@dataclass
class Analysis:
    """Every operation of one statement, in the order SQLite reported them."""
    operations: list[Operation]
    # The statement returns rows (RETURNING): they are a read of the tables it writes.
    returns_rows: bool = False
    # The recording authorizer refused something (a PRAGMA, ATTACH) and SQLite stopped
    # compiling there: `operations` ends with it, and the statement must not run.
    stopped: bool = False

    @property
    def is_write(self) -> bool:
        """Anything but reads and SQLite's own bookkeeping (1.0a41's `operation_is_write`):
        the statement is a write."""
        return any(op.operation in WRITE_OPERATIONS and not op.internal for op in self.operations)

    @property
    def created_views(self) -> list[str]:
        """The views the statement creates: their SELECT is only compiled when they are
        read, so the analysis cannot see what they read until they exist."""
        return [op.target for op in self.operations if op.operation == "create" and op.target_type == "view"
                and op.target and not op.internal and op.schema in (None, "main")]

    @property
    def changes_schema(self) -> bool:
        """The statement creates, alters or drops something."""
        return any(op.operation in ("create", "alter", "drop") for op in self.operations)


_ROW_CODES = {
    sqlite3.SQLITE_READ: "read",
    sqlite3.SQLITE_INSERT: "insert",
    sqlite3.SQLITE_UPDATE: "update",
    sqlite3.SQLITE_DELETE: "delete",
}
_SCHEMA_CODES: dict[int, tuple[str, str]] = {
    sqlite3.SQLITE_CREATE_INDEX: ("create", "index"),
    sqlite3.SQLITE_CREATE_TABLE: ("create", "table"),
    sqlite3.SQLITE_CREATE_TRIGGER: ("create", "trigger"),
    sqlite3.SQLITE_CREATE_VIEW: ("create", "view"),
    sqlite3.SQLITE_CREATE_TEMP_INDEX: ("create", "index"),
    sqlite3.SQLITE_CREATE_TEMP_TABLE: ("create", "table"),
    sqlite3.SQLITE_CREATE_TEMP_TRIGGER: ("create", "trigger"),
    sqlite3.SQLITE_CREATE_TEMP_VIEW: ("create", "view"),
    sqlite3.SQLITE_DROP_INDEX: ("drop", "index"),
    sqlite3.SQLITE_DROP_TABLE: ("drop", "table"),
    sqlite3.SQLITE_DROP_TRIGGER: ("drop", "trigger"),
    sqlite3.SQLITE_DROP_VIEW: ("drop", "view"),
    sqlite3.SQLITE_DROP_TEMP_INDEX: ("drop", "index"),
    sqlite3.SQLITE_DROP_TEMP_TABLE: ("drop", "table"),
    sqlite3.SQLITE_DROP_TEMP_TRIGGER: ("drop", "trigger"),
    sqlite3.SQLITE_DROP_TEMP_VIEW: ("drop", "view"),
    sqlite3.SQLITE_CREATE_VTABLE: ("create", "virtual-table"),
    sqlite3.SQLITE_DROP_VTABLE: ("drop", "virtual-table"),
}


def analyze(conn: sqlite3.Connection, sql: str, params: dict[str, object], *,
            restore: Callable[..., int] | None = None) -> Analysis:
    """What `sql` would do on `conn`, from SQLite's authorizer callbacks while it compiles
    `EXPLAIN <sql>` (nothing runs). `restore` is the authorizer to put back afterwards (the
    connection's own, if it has one). Raises sqlite3.Error for SQL SQLite cannot compile, and
    sqlite3.ProgrammingError for more than one statement."""
    seen: dict[tuple[object, ...], set[str]] = {}
    stopped = False

    def refuse() -> int:
        nonlocal stopped
        stopped = True
        return sqlite3.SQLITE_DENY

    def record(operation: str, target_type: str, table: str | None, target: str | None,
               schema: str | None, source: str | None, column: str | None = None) -> None:
        columns = seen.setdefault((operation, target_type, table, target, schema, source), set())
        if column:
            columns.add(column)

    def recorder(code: int, arg1: str | None, arg2: str | None, schema: str | None,
                 source: str | None) -> int:
        row = _ROW_CODES.get(code)
        if row is not None and arg1 is not None:
            target_type = "schema" if fold(arg1) in SCHEMA_TABLES else "table"
            record(row, target_type, arg1, arg1, schema, source,
                   arg2 if row in ("read", "update") else None)
        elif code in _SCHEMA_CODES and arg1 is not None:
            operation, target_type = _SCHEMA_CODES[code]
            table = arg2 if target_type in ("index", "trigger") else arg1
            record(operation, target_type, table, arg1, schema, source)
        elif code == sqlite3.SQLITE_ALTER_TABLE and arg2 is not None:
            record("alter", "table", arg2, arg2, arg1, source)
        elif code == sqlite3.SQLITE_TRANSACTION:
            record((arg1 or "begin").lower(), "transaction", None, arg1, None, source)
        elif code == sqlite3.SQLITE_SAVEPOINT:
            record("savepoint", "transaction", None, f"{arg1} {arg2}", None, source)
        elif code == sqlite3.SQLITE_ATTACH:
            record("attach", "database", None, arg1, None, source)
            return refuse()
        elif code == sqlite3.SQLITE_DETACH:
            record("detach", "database", None, arg1, None, source)
            return refuse()
        elif code == sqlite3.SQLITE_PRAGMA:
            record("pragma", "pragma", None, arg1, schema, source)
            if not authorizer.write_pragma_allowed(arg1 or "", arg2):
                # SQLite carries pragmas out while it compiles: refusing is the only way to
                # look at one without it having happened.
                return refuse()
        elif code == sqlite3.SQLITE_ANALYZE:
            record("analyze", "database" if arg1 is None else "table", arg1, arg1, schema, source)
        elif code == sqlite3.SQLITE_REINDEX:
            record("reindex", "index", None, arg1, schema, source)
        elif code == sqlite3.SQLITE_SELECT:
            record("select", "statement", None, None, schema, source)
        elif code == sqlite3.SQLITE_FUNCTION:
            record("function", "function", None, arg2, schema, source)
        elif code == sqlite3.SQLITE_RECURSIVE:
            pass  # a recursive CTE's bookkeeping; its reads are reported on their own
        else:
            record("unknown", "unknown", None, str(code), schema, source)
        return sqlite3.SQLITE_OK

    conn.set_authorizer(None)
    try:
        # SQLite lets a statement write sqlite_master only while writable_schema is on; that
        # is what lets schema writes in a schema change be taken for its bookkeeping. No
        # caller can turn it on (pragmas are refused), but never trust that alone.
        writable_schema = bool(conn.execute("PRAGMA writable_schema").fetchone()[0])
        conn.set_authorizer(recorder)
        try:
            program = conn.execute("EXPLAIN " + sql, params).fetchall()
        except sqlite3.DatabaseError:
            if not stopped:
                raise
            program = []
        finally:
            conn.set_authorizer(None)
        analysis = _operations(conn, seen, program, record, writable_schema=writable_schema)
        analysis.stopped = stopped
        return analysis
    finally:
        conn.set_authorizer(restore)


# What SQLite itself writes into sqlite_master when it compiles a virtual table's declaration
# (an FTS index or a table-valued function connecting): an UPDATE of these columns.
_DECLARE_COLUMNS = frozenset({"type", "name", "tbl_name", "rootpage", "sql"})


def _operations(conn: sqlite3.Connection, seen: dict[tuple[object, ...], set[str]],
                program: list[tuple[object, ...]], record: Callable[..., None], *,
                writable_schema: bool = False) -> Analysis:
    """The recorded callbacks as operations, each marked `internal` when it is SQLite's own
    doing rather than the caller's.

    SQLite carries out a schema change by compiling statements of its own (nested parses)
    into the caller's, and reports what they do like anything else, with no mark. Only
    what those statements can be is taken for bookkeeping, by the kind of statement:

    - ALTER TABLE and DROP hold no expression of the caller's that reads a table, so every
      read and write of the schema tables and `sqlite_sequence`, the rows a DROP TABLE
      deletes, and the functions SQLite's rename statements call are SQLite's;
    - CREATE TABLE/VIEW/INDEX insert and update the new object's row of `sqlite_master`,
      read only its rowid, may create `sqlite_sequence` (AUTOINCREMENT) and fill a new index
      (REINDEX); every other read is the caller's — `CREATE TABLE ... AS SELECT` reads
      what its SELECT reads, and is judged as any read is;
    - any statement may connect a virtual table (an FTS index, a table-valued function),
      which updates `sqlite_master`'s declaration columns and reads its rowid.

    Writes to the schema tables count as bookkeeping only while `writable_schema` is off:
    then SQLite itself refuses a caller's INSERT, UPDATE or DELETE on them."""
    if not seen and any(row[1] == "Vacuum" for row in program):
        record("vacuum", "database", None, None, "main", None)
    elif not seen:
        record("unknown", "statement", None, None, None, None)
    returns_rows = any(row[1] == "ResultRow" for row in program)
    kinds = _table_kinds(conn, {(k[2], k[4]) for k in seen if k[1] == "table" and k[2]})
    schema_ops = [k for k in seen if k[0] in ("create", "alter", "drop") and k[1] != "transaction"]
    # ALTER TABLE or DROP: SQLite's statements are all there is besides the change itself.
    altering = any(k[0] in ("alter", "drop") for k in schema_ops)
    created = {fold(str(k[3])) for k in schema_ops if k[0] == "create" and k[3]}
    creating = bool(created) and not altering
    dropped = {fold(k[2]) for k in seen if k[0] == "drop" and k[1] in ("table", "view") and k[2]}
    user_tables = any(k[1] == "table" and k[0] in _ROW_CODES.values() and k[0] != "read"
                      and k[2] and fold(k[2]) not in INTERNAL_TABLES and fold(k[2]) not in dropped
                      for k in seen)
    operations = []
    for (operation, target_type, table, target, schema, source), columns in seen.items():
        name = fold(table or "")
        schema_write = (target_type == "schema" and operation in ("insert", "update", "delete")
                        and not writable_schema and source is None)
        if operation == "pragma":
            # FTS5 asks for data_version by itself; any other pragma was refused.
            internal = target == "data_version"
        elif altering:
            internal = (
                (target_type == "schema" and (operation == "read" or schema_write))
                or (target_type == "table" and name == "sqlite_sequence")
                or (operation == "delete" and target_type == "table" and name in dropped)
                or operation == "reindex"
                or (operation == "function" and (target in RENAME_FUNCTIONS or (
                    not user_tables and target in ("like", "substr", "length", "printf"))))
            )
        elif creating:
            internal = (
                (schema_write and operation in ("insert", "update"))
                or (target_type == "schema" and operation == "read" and set(columns) <= {"ROWID"})
                # AUTOINCREMENT in a new table creates sqlite_sequence along with it
                or (operation == "create" and target_type == "table" and name == "sqlite_sequence"
                    and len(created) > 1)
                or (operation == "reindex" and fold(target or "") in created)
            )
        else:
            internal = (
                (schema_write and operation == "update" and set(columns) <= _DECLARE_COLUMNS)
                or (target_type == "schema" and operation == "read" and set(columns) <= {"ROWID"}
                    and any(k[1] == "schema" and k[0] == "update" for k in seen))
            )
        kind = kinds.get((name, schema)) if target_type == "table" else None
        operations.append(Operation(operation, target_type, table, target, schema, source, kind,
                                    internal, tuple(sorted(columns))))
    return Analysis(operations, returns_rows)


TableKey = tuple[str, str | None]


def _table_kinds(conn: sqlite3.Connection, tables: set[TableKey]) -> dict[TableKey, str]:
    """table, view, virtual, shadow, internal or function (a table-valued function such as
    `json_each` or `pragma_table_info`: in no schema), for each (table, schema) named. Run
    with no authorizer on the connection; when SQLite cannot say (`pragma_table_list` needs
    3.37), a table named `<virtual table>_<anything>` counts as a shadow table: unknown is
    never taken for an ordinary table."""
    out: dict[TableKey, str] = {}
    listed: dict[tuple[str, str], str] | None
    try:
        listed = {(fold(name), schema): kind for schema, name, kind in
                  conn.execute("select schema, name, type from pragma_table_list").fetchall()}
    except sqlite3.Error:
        listed = None
    master = conn.execute("select type, name, sql from sqlite_master").fetchall()
    virtual = [fold(name) for kind, name, sql in master
               if kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    for table, schema in tables:
        name = fold(table)
        if is_internal_table(table):
            kind = "internal"
        elif listed is not None and (name, schema or "main") in listed:
            kind = listed[(name, schema or "main")]
            if kind not in ("table", "view", "virtual", "shadow"):
                kind = "internal"
        elif name in virtual:
            kind = "virtual"
        elif any(name.startswith(v + "_") for v in virtual):
            kind = "shadow"
        elif name not in {fold(str(n)) for _, n, _ in master}:
            kind = "function"
        else:
            kind = "table"
        out[(name, schema)] = kind
    return out


# -- decisions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """An action the caller must hold: on the database (`table` None) or on a table."""

    action: str
    table: str | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with one operation: `ignore` it, `require` actions, or refuse it
    (`refuse` is the message, `status` 403 or 400)."""

    ignore: bool = False
    require: tuple[Requirement, ...] = ()
    refuse: str | None = None
    status: int = 403


IGNORE = Decision(ignore=True)


def decide(op: Operation, owner: Callable[[str], str] = lambda name: name,
           function_allowed: Callable[[str], bool] = lambda name: True) -> Decision:
    """The decision for one operation (see the module's docstring). `owner(name)` maps an
    FTS index or its storage to the table it indexes; `function_allowed(name)` is the
    sandbox's allow-list of SQL functions."""
    if op.internal or op.operation == "select":
        return IGNORE
    if op.operation == "function":
        if function_allowed(op.target or ""):
            return IGNORE
        return Decision(refuse=f"SQL function {op.target}() is not allowed", status=400)
    if op.operation == "vacuum":
        return Decision(refuse="VACUUM is not allowed in user-supplied SQL")
    if op.schema not in (None, "main") or op.operation in ("attach", "detach"):
        return Decision(refuse="Writable queries may not access attached databases")
    unsupported = Decision(refuse=f"Unsupported SQL operation: {op.operation} {op.target_type}")
    table = op.table
    row_operation = op.operation in ("read", "insert", "update", "delete")
    if op.target_type == "schema" and row_operation:
        if op.operation == "read":
            # Unless the read path's rule lets this caller read the schema (see `judge`).
            return Decision(refuse=authorizer.DENIED_MESSAGE)
        return Decision(refuse="Writes to internal tables are not allowed in user-supplied SQL")
    if op.target_type == "table" and table is not None and row_operation:
        if op.kind == "function" and op.operation == "read":
            if fold(table).startswith("pragma_"):
                return Decision(refuse=f"Unsupported SQL operation: pragma {table}")
            return IGNORE  # json_each and the like: `judge`'s read rule decides
        if op.kind == "internal":
            if op.operation == "read":
                return Decision(refuse="Reads of internal tables are not allowed in user-supplied SQL")
            return Decision(refuse="Writes to internal tables are not allowed in user-supplied SQL")
        if op.operation == "read":
            return Decision(require=(Requirement("view-table", owner(table)),))
        if op.kind == "function":
            return Decision(refuse="Writes to virtual tables are not allowed in user-supplied SQL")
        if op.kind == "virtual":
            if op.source is None:
                return Decision(refuse="Writes to virtual tables are not allowed in user-supplied SQL")
            # A table's trigger keeping its FTS index in step: a write to the indexed table.
            return Decision(require=tuple(Requirement(a, owner(table)) for a in ROW_ACTIONS))
        if op.kind == "shadow":
            return Decision(refuse="Writes to shadow tables are not allowed in user-supplied SQL")
        if op.operation == "delete":
            return Decision(require=(Requirement("delete-row", table),))
        return Decision(require=tuple(Requirement(a, table) for a in ROW_ACTIONS))
    if op.operation == "create" and op.target_type in ("table", "view"):
        if reserved_name(op.target or ""):
            return Decision(refuse=f"{op.target}: names starting with sqlite_, _litestream_ or "
                                   "_lambdasette_ are reserved")
        action = "create-table" if op.target_type == "table" else "create-view"
        return Decision(require=(Requirement(action),))
    if op.operation == "drop" and op.target_type in ("table", "view") and table is not None:
        if is_internal_table(table) or reserved_name(table):
            return Decision(refuse="Writes to internal tables are not allowed in user-supplied SQL")
        action = "drop-table" if op.target_type == "table" else "drop-view"
        return Decision(require=(Requirement(action, table),))
    if op.operation == "alter" and op.target_type == "table" and table is not None:
        if reserved_name(table):
            return Decision(refuse="Writes to internal tables are not allowed in user-supplied SQL")
        return Decision(require=(Requirement("alter-table", table),))
    if op.operation in ("create", "drop") and op.target_type == "index" and table is not None:
        if reserved_name(table):
            return Decision(refuse="Writes to internal tables are not allowed in user-supplied SQL")
        if reserved_name(op.target or "") and op.operation == "create":
            return unsupported
        return Decision(require=(Requirement("alter-table", table),))
    return unsupported


@dataclass
class Verdict:
    """The analysis judged: every problem in the order the operations came (`problems`:
    (status, message); the first is the answer), and per operation shown, its row of 1.0a41's
    `analysis` with `allowed` (whether the caller holds what it requires)."""

    problems: list[tuple[int, str]] = field(default_factory=list)
    rows: list[dict[str, object]] = field(default_factory=list)
    # For each problem that is a missing requirement, the requirement (else None).
    missing: list[Requirement | None] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem: the caller may run the statement."""
        return not self.problems


def judge(analysis: Analysis, database: str, allowed: Callable[[str, str | None], bool],
          owner: Callable[[str], str] = lambda name: name,
          function_allowed: Callable[[str], bool] = lambda name: True,
          read_allowed: Callable[[str, str | None], bool] | None = None) -> Verdict:
    """Every operation decided, and each requirement checked with `allowed(action, table)`.
    A statement that returns rows (RETURNING) also needs `view-table` on every table it
    writes: the rows are a read (SQLite reports the columns RETURNING reads; a RETURNING of
    constants reads none, and still tells which rows there were).

    `read_allowed(table, column)` is the read path's rule for this caller (its
    `authorizer.Guard.allows_read`): every read the statement makes must pass it too, so
    write SQL reads no more than `?sql=` could — not a view over a hidden table, not
    `sqlite_master` while a table is hidden from the caller, not `dbstat` — and reads
    the schema tables only where `?sql=` may. Without it, schema reads are refused."""
    verdict = Verdict()
    operations = list(analysis.operations)
    if analysis.returns_rows:
        written = {op.table for op in operations if op.operation in ("insert", "update", "delete")
                   and op.target_type == "table" and op.table and not op.internal and op.source is None}
        read = {op.table for op in operations if op.operation == "read" and op.table}
        for table in sorted(t for t in written - read if t is not None):
            operations.append(Operation("read", "table", table, table, "main", None, "table"))
    for op in operations:
        decision = decide(op, owner, function_allowed)
        readable = True
        if (read_allowed is not None and op.operation == "read" and op.table and not op.internal
                and (op.target_type == "schema" or decision.refuse is None)):
            readable = all(read_allowed(op.table or "", column) for column in op.columns or ("",))
            if op.target_type == "schema":
                # The read path's rule is the only one for the schema tables.
                decision = IGNORE if readable else Decision(refuse=authorizer.DENIED_MESSAGE)
            elif not readable and decision.ignore:
                decision = Decision(refuse=authorizer.DENIED_MESSAGE)  # dbstat and the like
        if decision.ignore:
            continue
        row: dict[str, object] = {"operation": op.operation, "database": database,
                                  "table": op.table or op.target,
                                  "required_permission": ", ".join(r.action for r in decision.require),
                                  "source": op.source}
        if decision.refuse is not None:
            verdict.problems.append((decision.status, decision.refuse))
            verdict.missing.append(None)
            row["allowed"] = False
        else:
            row["allowed"] = True
            for requirement in decision.require:
                if not allowed(requirement.action, requirement.table):
                    verdict.problems.append((403, message(database, requirement)))
                    verdict.missing.append(requirement)
                    row["allowed"] = False
                    break
            else:
                if not readable:
                    # The caller holds view-table, yet the read path would refuse the read (a
                    # view over a table hidden from them, dbstat, ...): as `?sql=` answers it.
                    verdict.problems.append((403, authorizer.DENIED_MESSAGE))
                    verdict.missing.append(Requirement("view-table", owner(op.table or "")))
                    row["allowed"] = False
        verdict.rows.append(row)
    return verdict


def message(database: str, requirement: Requirement) -> str:
    """1.0a41's words for a missing requirement."""
    where = database if requirement.table is None else f"{database}/{requirement.table}"
    return f"Permission denied: need {requirement.action} on {where}"
