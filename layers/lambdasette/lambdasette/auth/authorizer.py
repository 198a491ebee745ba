"""The SQLite authorizer every connection that runs a caller's SQL carries.

Endpoints already hide the tables a caller may not view from listings, labels, `_through`
and `_search`; this is the guarantee underneath, whatever SQL the caller wrote (`?sql=`,
`_where`, or anything else that reaches SQLite). At prepare time — never per row — it:

- refuses to read a table the caller may not view (directly, through a view or a subquery,
  or via its FTS index), and any table that is not part of the database's schema at all
  (see `Guard`);
- lets only the SQL functions in `SAFE_FUNCTIONS` be called (`function_allowed` says what is
  denied and why);
- keeps pragma table-valued functions away from hidden tables and from server paths, and
  refuses every pragma that would set something (an argument to a pragma that does not
  name a table or an index), so no caller's statement changes a connection's state;
- for write SQL (`Guard.pragmas` False: execute-write's analysis and run), refuses every
  PRAGMA and pragma function: SQLite carries out many pragmas while it *compiles* a
  statement, before any authorizer-based judgement of the whole statement could stop it.

`Guard.allows_read` is the read rule itself, so that execute-write's analysis decides the
reads inside write SQL exactly as the read path does.

`Guard` is a frozen value: `install` compares it with the one a connection already carries
and touches SQLite only on a change, because setting an authorizer expires every cached
statement of the connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lambdasette.errors import ApiError
from lambdasette.names import fold

SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})

# SQLite's own bookkeeping tables, and Litestream's: never served, whoever asks. sqlite_stat*
# hold the optimizer's statistics of every index (naming tables and indexes), and
# sqlite_sequence the highest AUTOINCREMENT key of every table — Datasette 1.0a41 denies the
# statistics tables by default for the same reason.
INTERNAL_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3",
                             "sqlite_stat4"})
INTERNAL_PREFIXES = ("_litestream_", "_lambdasette_")  # Litestream's; ours (query.internal)


def is_internal(name: str) -> bool:
    folded = fold(name)
    return folded in INTERNAL_TABLES or folded.startswith(INTERNAL_PREFIXES)


# The pragma functions a caller may use (Datasette's list), plus the ones SQLite's own modules
# run internally (FTS5 checks `data_version`). Anything else — journal_mode, writable_schema,
# table_list (which would list hidden tables) — is refused.
ALLOWED_PRAGMA_NAMES = (  # Datasette's order, which its error message lists
    "database_list", "foreign_key_list", "function_list", "index_info", "index_list",
    "index_xinfo", "page_count", "max_page_count", "page_size", "schema_version",
    "table_info", "table_xinfo",
)
ALLOWED_PRAGMAS = frozenset(ALLOWED_PRAGMA_NAMES)
_INTERNAL_PRAGMAS = frozenset({"data_version"})
# Pragmas whose argument names a table or an index: refused (as if it did not exist) for
# hidden ones.
_NAMED_PRAGMAS = frozenset({"table_info", "table_xinfo", "index_list", "index_info",
                            "index_xinfo", "foreign_key_list"})

# Table-valued functions (eponymous virtual tables) a caller may read. Not dbstat (page
# statistics of every table, hidden ones included), sqlite_stmt (the SQL other callers ran on
# this shared connection) or sqlite_dbpage (raw pages), nor any module a future SQLite adds.
# Refused even where no schema is known to check reads against (`UNTRUSTED`).
DENIED_TABLE_FUNCTIONS = frozenset({"dbstat", "sqlite_stmt", "sqlite_dbpage", "sqlite_dbdata",
                                    "sqlite_dbptr"})
SAFE_TABLE_FUNCTIONS = frozenset(
    {"json_each", "json_tree", "jsonb_each", "jsonb_tree", "generate_series"}
    | {f"pragma_{name}" for name in ALLOWED_PRAGMAS}
)

SAFE_FUNCTIONS = frozenset({
    # core scalar
    "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "if", "ifnull",
    "iif", "instr", "length", "like", "likelihood", "likely", "lower", "ltrim", "max", "min",
    "nullif", "octet_length", "printf", "quote", "random", "randomblob", "replace", "round",
    "rtrim", "sign", "soundex", "sqlite_compileoption_get", "sqlite_compileoption_used",
    "sqlite_source_id", "sqlite_version", "substr", "substring", "trim", "typeof", "unhex",
    "unicode", "unlikely", "upper", "zeroblob",
    # aggregate
    "avg", "count", "group_concat", "string_agg", "sum", "total", "median", "percentile",
    "percentile_cont", "percentile_disc",
    # window
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    # date and time
    "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
    "current_date", "current_time", "current_timestamp",
    # math
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos", "cosh",
    "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow", "power",
    "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
    # JSON (json_each/json_tree are table functions, above)
    "json", "json_array", "json_array_length", "json_error_position", "json_extract",
    "json_insert", "json_object", "json_patch", "json_pretty", "json_quote", "json_remove",
    "json_replace", "json_set", "json_type", "json_valid", "json_group_array",
    "json_group_object", "jsonb", "jsonb_array", "jsonb_extract", "jsonb_insert",
    "jsonb_object", "jsonb_patch", "jsonb_remove", "jsonb_replace", "jsonb_set",
    "jsonb_group_array", "jsonb_group_object", "->", "->>",
    # full-text search: MATCH, and the auxiliary functions that read the matched row
    "match", "snippet", "highlight", "bm25", "matchinfo", "offsets",
    # ours (Datasette's)
    "escape_fts",
})


# The functions reviewed and refused, by kind (see `function_allowed`). Refusal does not
# depend on this table — anything not in SAFE_FUNCTIONS is refused — but a test checks that
# every function this SQLite offers is in one of the two, so a new one gets reviewed.
DENIED_FUNCTIONS: dict[str, frozenset[str]] = {
    "memory": frozenset({"fts3_tokenizer", "fts5"}),
    "files and code": frozenset({"load_extension", "readfile", "writefile", "edit", "fsdir",
                                 "lsmode", "sha3", "sha3_query", "zipfile", "sqlar_compress",
                                 "sqlar_uncompress"}),
    "writes and internals": frozenset({"optimize", "fts5_source_id", "rtreecheck", "rtreenode",
                                       "rtreedepth", "sqlite_offset", "subtype", "sqlite_log",
                                       "implies_nonnull_row", "expr_compare", "expr_implies_expr",
                                       "affinity", "sqlite_dbdata", "sqlite_dbptr"}),
    "other callers' state": frozenset({"changes", "total_changes", "last_insert_rowid"}),
}


def write_pragma_allowed(name: str, argument: str | None) -> bool:
    """Whether SQL a caller wrote for execute-write (or a writable stored query) may run the
    pragma `name`: none of them. SQLite applies flag pragmas (`writable_schema`,
    `query_only`, `hard_heap_limit`, ...) while it compiles the statement, so a pragma that
    is merely analysed has already happened; and nothing a write needs is a pragma (1.0a41
    refuses them as unsupported). The one exception is `data_version` without an argument,
    which FTS5 asks for by itself whenever a statement reads or writes its index."""
    return name.lower() in _INTERNAL_PRAGMAS and argument is None


def function_allowed(name: str) -> bool:
    """Whether a caller's SQL may call the function `name`: only those in `SAFE_FUNCTIONS`.

    Every other SQL function is refused when a statement is prepared. The denied kinds:

    - **Memory**: `fts3_tokenizer` (returns a pointer, and with two arguments installs one: a
      crash), `fts5` (hands out the FTS5 C API pointer).
    - **Files and code**: `load_extension`; the shell's `readfile`, `writefile`, `edit`, `fsdir`,
      `sha3*` are not in this build, and stay refused if a build has them.
    - **Writes and internals**: `optimize` (merges an FTS3 index: a write), `fts5_source_id`,
      `rtreecheck`, `rtreenode`, `rtreedepth` (debugging aids that parse raw node blobs the caller
      supplies), `sqlite_offset` (file layout), `subtype`, `sqlite_log` (writes the server's log),
      SQLite's test-only functions (`implies_nonnull_row`, `expr_compare`, ...).
    - **Other callers' state**: `changes`, `total_changes`, `last_insert_rowid` report what
      earlier statements did on a shared connection — possibly another caller's write to a table
      this caller may not view.
    - **Unknown**: any function a newer SQLite adds, until it is reviewed and listed here.

    Allowed on purpose: `randomblob`, `zeroblob`, `printf`/`format`, `replace` and the like, because
    `SQLITE_LIMIT_LENGTH` bounds every value they make (see `query.execute.LIMITS`);
    `sqlite_version`, `sqlite_source_id`, `sqlite_compileoption_*` (`/-/versions.json` publishes
    the same).
    """
    return name in SAFE_FUNCTIONS or name.lower() in SAFE_FUNCTIONS


DENIED_MESSAGE = "Permission denied: the query reads a table you may not view"


@dataclass(frozen=True)
class Guard:
    """What one caller's statements may touch on one version of a database's schema.

    - `hidden`: tables and views (folded: `names.fold`, SQLite's ASCII-only case folding)
      the caller may not view, SQLite's internal tables among them; refused as reads and as
      pragma arguments.
    - `known`: every table and view of the schema (folded). A read of anything else —
      an eponymous virtual table such as `dbstat` or `sqlite_stmt` — is refused unless it is
      one of `SAFE_TABLE_FUNCTIONS`.
    - `hidden_indexes`: indexes of hidden tables (pragma index_info would list their columns).
    - `secret_schema`: some user table is hidden, so `sqlite_master` (which holds every
      `CREATE` statement) may not be read, nor foreign keys that point at hidden tables.
    - `fk_to_hidden`: visible tables with a foreign key to a hidden table.
    """

    hidden: frozenset[str] = frozenset()
    known: frozenset[str] | None = None  # None: do not check (a connection without a schema)
    hidden_indexes: frozenset[str] = frozenset()
    secret_schema: bool = False
    fk_to_hidden: frozenset[str] = frozenset()
    # SQLite reports a FROM term none of whose columns are used (`count(*) from t`) as a read
    # of column '' — and a recursive CTE the same way, by its own name. `lenient` lets such a
    # read of a hidden name through; it is used only for a statement that compiled on the
    # caller's shadow schema, where no hidden table exists (`query.execute.run`).
    lenient: bool = False
    # False for write SQL (execute-write): no PRAGMA and no pragma function at all, not even
    # the ones the read path allows (see `write_pragma_allowed`).
    pragmas: bool = True
    # Opens this caller's view of the schema (hidden tables absent) to word errors with;
    # see `query.execute.caller_error`. Not part of equality.
    shadow: Callable[[], tuple[sqlite3.Connection, threading.Lock]] | None = field(
        default=None, compare=False, repr=False)
    # Decisions already taken for function names (see `_function`); not part of equality.
    _functions: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, code: int, arg1: str | None, arg2: str | None, db: str | None,
                 trigger: str | None) -> int:
        if code == sqlite3.SQLITE_READ:
            return self._read(arg1 or "", arg2)
        if code == sqlite3.SQLITE_FUNCTION:
            return self._function(arg2 or "")
        if code == sqlite3.SQLITE_PRAGMA:
            return self._pragma((arg1 or "").lower(), arg2)  # pragma names: ASCII
        if code in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return sqlite3.SQLITE_DENY  # another file would be a way around every rule here
        return sqlite3.SQLITE_OK

    def allows_read(self, table: str, column: str | None) -> bool:
        """Whether this caller's statement may read `column` of `table` (a table, view,
        schema table or table-valued function): the read path's rule, which execute-write's
        analysis applies to every read its statement makes."""
        return self._read(table, column) != sqlite3.SQLITE_DENY

    def _read(self, table: str, column: str | None) -> int:
        name = fold(table)
        if not self.pragmas and name.startswith("pragma_") and (
                self.known is None or name not in self.known):
            return sqlite3.SQLITE_DENY  # a pragma function: runs a PRAGMA when it is read
        if name in self.hidden:
            return sqlite3.SQLITE_OK if self.lenient and not column else sqlite3.SQLITE_DENY
        if name in DENIED_TABLE_FUNCTIONS and (self.known is None or name not in self.known):
            # Whatever is read of them, even only how many rows they have (`count(*)`, a
            # read of column ''): sqlite_stmt's row count is how many statements other
            # callers left prepared on this shared connection. (A user table of that name
            # comes before the module in SQLite, and is read as any table is.)
            return sqlite3.SQLITE_DENY
        if name in SCHEMA_TABLES:
            # Table-valued pragmas read sqlite_master's rowid internally; allow only that.
            if self.secret_schema and column != "ROWID":
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if column and self.known is not None and name not in self.known and name not in SAFE_TABLE_FUNCTIONS:
            # (A read of column '' may be a CTE's name: no columns, nothing to see.)
            return sqlite3.SQLITE_DENY
        if name == "pragma_database_list" and column == "file":
            return sqlite3.SQLITE_IGNORE  # the server's paths: NULL
        return sqlite3.SQLITE_OK

    def _function(self, name: str) -> int:
        decision = self._functions.get(name)
        if decision is None:
            decision = sqlite3.SQLITE_OK if function_allowed(name) else sqlite3.SQLITE_DENY
            self._functions[name] = decision
        return decision

    def _pragma(self, name: str, argument: str | None) -> int:
        if not self.pragmas:
            return sqlite3.SQLITE_OK if write_pragma_allowed(name, argument) else sqlite3.SQLITE_DENY
        if name not in ALLOWED_PRAGMAS and name not in _INTERNAL_PRAGMAS:
            return sqlite3.SQLITE_DENY
        if argument is not None and name not in _NAMED_PRAGMAS:
            # An argument to any other pragma sets it (`max_page_count = 1`): a change to the
            # connection, never a read.
            return sqlite3.SQLITE_DENY
        if argument is not None and name in _NAMED_PRAGMAS:
            target = fold(argument)
            # IGNORE makes the pragma answer no rows: exactly what a missing table gives.
            if target in self.hidden or target in self.hidden_indexes:
                return sqlite3.SQLITE_IGNORE
            if name == "foreign_key_list" and target in self.fk_to_hidden:
                return sqlite3.SQLITE_IGNORE
        return sqlite3.SQLITE_OK


# For a connection prepared for untrusted SQL before its caller's guard is known: functions,
# pragmas, ATTACH and the eponymous tables in DENIED_TABLE_FUNCTIONS are already refused.
UNTRUSTED = Guard()
# The same for write SQL (execute-write's run): no pragma at all.
UNTRUSTED_WRITE = Guard(pragmas=False)


def install(conn: sqlite3.Connection, guard: Guard | None) -> None:
    """Put `guard` on the connection (None removes it), touching SQLite only on a change:
    setting an authorizer expires every cached statement."""
    current = getattr(conn, "guard", None)
    if current is guard and current is not None:
        return
    if current is None or guard is None or current != guard:
        conn.set_authorizer(guard)
    # An equal guard decides alike, so SQLite keeps the one it has; remember the newer one
    # (its `shadow` follows the current schema).
    try:
        conn.guard = guard  # type: ignore[attr-defined]
    except AttributeError:
        pass  # a plain sqlite3.Connection: nothing remembered, always set


@contextmanager
def trusted(conn: sqlite3.Connection) -> Iterator[None]:
    """Our own statements (schema introspection) with no authorizer, then the guard back."""
    previous = getattr(conn, "guard", None)
    conn.set_authorizer(None)
    try:
        yield
    finally:
        conn.set_authorizer(previous)


def denied_function(exc: sqlite3.Error) -> str | None:
    """The function name if `exc` is SQLite refusing a function this module denied."""
    prefix = "not authorized to use function: "
    message = str(exc)
    return message[len(prefix):] if message.startswith(prefix) else None


def is_denial(exc: sqlite3.Error) -> bool:
    message = str(exc)
    return message.startswith("not authorized") or (
        message.startswith("access to ") and message.endswith(" is prohibited")
    )


def function_error(name: str) -> ApiError:
    return ApiError(400, f"SQL function {name}() is not allowed", title="Invalid SQL")


def denied_error() -> ApiError:
    return ApiError(403, DENIED_MESSAGE)
