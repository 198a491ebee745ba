"""`POST /<db>/-/execute-write` attacked: every way a caller might write, read or change more
than their permissions allow through arbitrary write SQL. Each attack must be refused before
anything runs, and the database must be byte-for-byte what it was.

The caller in most tests is `alice`, who may run write SQL on `data` and insert, update and
delete rows of `pub` (and view it) — nothing on `secret`, `log`, `owners` or `pets`. `carol`
may do what alice may, and also create tables and views and store queries.

The tests named after breaker2's findings (F01a-F04, /work/notes/breaker2) each reproduce
one, followed by its siblings."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens, write_sql
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage

WRITERS = {"id": ["alice", "carol"]}
ROW_ACTIONS = {"insert-row": WRITERS, "update-row": WRITERS, "delete-row": WRITERS, "view-table": True}
POLICY = {
    "databases": {
        "data": {
            "permissions": {"execute-write-sql": WRITERS, "create-table": {"id": "carol"},
                            "create-view": {"id": "carol"}, "store-query": {"id": "carol"}},
            "tables": {
                "pub": {"permissions": ROW_ACTIONS},
                "secret": {"permissions": {"view-table": {"id": "root"}}},
                "log": {"permissions": {"view-table": True}},
                "owners": {"permissions": {"delete-row": {"id": "alice"}, "view-table": True}},
                "docs": {"permissions": ROW_ACTIONS},
            },
        }
    }
}


def make_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE pub (id INTEGER PRIMARY KEY, v TEXT);
        INSERT INTO pub VALUES (1, 'one'), (2, 'two');
        CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT);
        INSERT INTO secret VALUES (1, 'the password');
        CREATE TABLE log (msg TEXT);
        CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT);
        INSERT INTO owners VALUES (1, 'ann');
        CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id) ON DELETE CASCADE);
        INSERT INTO pets VALUES (1, 1);
        CREATE TABLE counters (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER);
        INSERT INTO counters (n) VALUES (1);
        CREATE VIEW secret_view AS SELECT * FROM secret;
        CREATE VIEW log_view AS SELECT * FROM log;
        -- writing pub also writes log and, on delete, secret: rights on pub are not enough
        CREATE TRIGGER pub_log AFTER INSERT ON pub BEGIN INSERT INTO log VALUES ('added ' || new.v); END;
        CREATE TRIGGER pub_wipe AFTER DELETE ON pub BEGIN DELETE FROM secret; END;
        CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT);
        INSERT INTO docs VALUES (1, 'hello world');
        CREATE VIRTUAL TABLE docs_fts USING fts5(title, content="docs");
        INSERT INTO docs_fts(docs_fts) VALUES ('rebuild');
        CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN
          INSERT INTO docs_fts(rowid, title) VALUES (new.id, new.title); END;
    """)
    conn.commit()
    conn.close()
    return path


class Caller:
    def __init__(self, client: TestClient, store: LocalTokenStore, path: Path) -> None:
        self.client, self.store, self.path = client, store, path
        self.tokens = {actor: tokens.create(store, actor)[0] for actor in ("root", "alice", "carol")}

    def token(self, actor: str, restrictions: dict[str, Any] | None = None) -> str:
        return tokens.create(self.store, actor, restrictions)[0]

    def write(self, sql: str, who: str = "alice", params: dict[str, Any] | None = None, **body: Any) -> Any:
        token = self.tokens.get(who, who)
        payload: dict[str, Any] = {"sql": sql, **body}
        if params is not None:
            payload["params"] = params
        return self.client.post("/data/-/execute-write", json=payload,
                                headers={"Authorization": f"Bearer {token}"})

    def fingerprint(self) -> str:
        """Everything in the database: schema and every row of every table."""
        conn = sqlite3.connect(self.path)
        try:
            parts = [repr(conn.execute("select type, name, sql from sqlite_master order by name").fetchall())]
            for (name,) in conn.execute("select name from sqlite_master where type = 'table' order by name"):
                parts.append(repr(conn.execute(f'select * from "{name}"').fetchall()))
            return hashlib.sha256("\n".join(parts).encode()).hexdigest()
        finally:
            conn.close()


@pytest.fixture
def caller(tmp_path: Path) -> Iterator[Caller]:
    path = make_db(tmp_path / "data.db")
    store = LocalTokenStore(tmp_path / "tokens.db")
    ds = Lambdasette(storage=LocalStorage([path]), options=Options(public=True), tokens=store,
                     policy=Policy.parse(POLICY))
    with TestClient(create_app(ds)) as client:
        yield Caller(client, store, path)


def refused(caller: Caller, sql: str, status: int, message: str, who: str = "alice",
            params: dict[str, Any] | None = None) -> None:
    before = caller.fingerprint()
    r = caller.write(sql, who, params)
    assert r.status_code == status, (sql, r.text)
    body = r.json()
    assert body["ok"] is False and message in body["error"], (sql, body)
    assert caller.fingerprint() == before, f"{sql!r} changed the database"


def test_the_allowed_write_works(caller: Caller) -> None:
    r = caller.write("update pub set v = :v where id = 1 returning id, v", params={"v": "uno"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"id": 1, "v": "uno"}]
    assert r.json()["rowcount"] == 1


def test_json_labelled_as_a_form_is_read_as_json_and_real_forms_as_forms(caller: Caller) -> None:
    """`curl -d '{...}'` sends JSON as application/x-www-form-urlencoded (the README's example);
    1.0a41's own form fields (`sql`, `_sql_param_x`) still work."""
    auth = {"Authorization": f"Bearer {caller.tokens['alice']}"}
    r = caller.client.post("/data/-/execute-write", headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
                           content=b'{"sql": "update pub set v = :v where id = 1", "params": {"v": "dos"}}')
    assert r.status_code == 200 and r.json()["rowcount"] == 1, r.text
    r = caller.client.post("/data/-/execute-write", headers=auth,
                           data={"sql": "update pub set v = :v where id = 1", "_sql_param_v": "tres"})
    assert r.status_code == 200 and r.json()["rowcount"] == 1, r.text
    rows = caller.client.get("/data/pub.json?_shape=array&id=1", headers=auth).json()
    assert rows[0]["v"] == "tres"


# -- triggers ------------------------------------------------------------------------------------


def test_a_trigger_cannot_write_what_the_caller_may_not(caller: Caller) -> None:
    # pub_log inserts into log; alice has no insert-row there
    refused(caller, "insert into pub (v) values ('x')", 403, "need insert-row on data/log")
    # pub_wipe deletes every row of secret, a table alice may not even see: refused without
    # saying which table
    refused(caller, "delete from pub where id = 2", 403, "a table you may not view")
    assert "secret" not in caller.write("delete from pub where id = 2").text


def test_a_trigger_writes_for_a_caller_who_holds_its_tables(caller: Caller) -> None:
    r = caller.write("insert into pub (v) values ('x')", "root")
    assert r.status_code == 200, r.text
    assert {"operation": "insert", "database": "data", "table": "log",
            "required_permission": "insert-row, update-row, delete-row", "source": "pub_log"} in r.json()["analysis"]


def test_fts_triggers_write_the_index_for_those_who_may_write_the_table(caller: Caller) -> None:
    r = caller.write("insert into docs (title) values ('searchable words')")
    assert r.status_code == 200, r.text
    found = caller.client.get("/data/docs.json?_search=searchable&_shape=array").json()
    assert [d["title"] for d in found] == ["searchable words"]


def test_creating_triggers_is_refused_even_to_root(caller: Caller) -> None:
    refused(caller, "create trigger t after insert on pub begin delete from secret; end",
            403, "Unsupported SQL operation: create trigger", who="root")
    refused(caller, "create temp trigger t after insert on pub begin delete from secret; end",
            403, "attached databases", who="root")


# -- views, CTEs, subqueries --------------------------------------------------------------------


def test_a_view_over_a_hidden_table_does_not_name_it(caller: Caller) -> None:
    # the view is hidden from alice as the table is: naming it is naming a missing table
    refused(caller, "insert into pub (v) select s from secret_view", 400, "no such table: secret_view")
    r = caller.client.get("/data/-/execute-write/analyze", params={"sql": "delete from pub where id = 1"},
                          headers={"Authorization": f"Bearer {caller.tokens['alice']}"})
    assert "secret" not in r.text and r.json()["execute_disabled"] is True


@pytest.mark.parametrize("sql", [
    "with x as (select s from secret) update pub set v = (select s from x) where id = 1",
    "with recursive r(n) as (select s from secret union select n from r) update pub set v = (select n from r)",
    "update pub set v = (select s from secret where id = 1) where id = 1",
    "delete from pub where v in (select s from secret)",
    "update pub set v = 'x' where exists (select 1 from secret where s like 'the%')",
])
def test_reading_a_hidden_table_is_refused_however_indirect(caller: Caller, sql: str) -> None:
    refused(caller, sql, 400, "no such table: secret")


def test_a_visible_table_alice_may_not_write_names_the_action(caller: Caller) -> None:
    refused(caller, "insert into log values ('x')", 403, "need insert-row on data/log")


# -- RETURNING ----------------------------------------------------------------------------------


def test_returning_needs_view_table(caller: Caller) -> None:
    delete_only = caller.token("alice", {"d": {"data": ["execute-write-sql", "view-database"]},
                                         "r": {"data": {"owners": ["delete-row"]}}})
    refused(caller, "delete from owners returning *", 403, "need view-table on data/owners", who=delete_only)
    refused(caller, "delete from owners returning 1", 403, "need view-table", who=delete_only)
    refused(caller, "delete from owners where name = 'ann'", 403, "need view-table", who=delete_only)


def test_returning_rows_are_capped_at_ten(caller: Caller) -> None:
    values = ", ".join(f"({i}, 'r{i}')" for i in range(100, 125))
    r = caller.write(f"insert into log select v from pub where 0; insert into pub values {values}", "root")
    assert r.status_code == 400  # two statements
    r = caller.client.post("/data/-/execute-write", headers={"Authorization": f"Bearer {caller.tokens['root']}"},
                           json={"sql": f"insert into pub values {values} returning id"})
    body = r.json()
    assert r.status_code == 200 and body["truncated"] is True and len(body["rows"]) == 10
    assert body["rowcount"] == -1 and body["message"] == "Query executed"
    count = caller.client.post("/data/pub/-/count", headers={"Authorization": f"Bearer {caller.tokens['root']}"})
    assert count.json()["count"] == 27  # every row was written


# -- several statements, transactions, schema changes ---------------------------------------------


@pytest.mark.parametrize("sql", [
    "update pub set v = 'a'; delete from secret",
    "update pub set v = 'a'; drop table secret;",
    "update pub set v = 'a' -- fine\n; delete from secret",
])
def test_only_one_statement(caller: Caller, sql: str) -> None:
    refused(caller, sql, 400, "one statement at a time", who="root")


@pytest.mark.parametrize("sql, message", [
    ("begin", "Unsupported SQL operation: begin"),
    ("commit", "Unsupported SQL operation: commit"),
    ("rollback", "Unsupported SQL operation: rollback"),
    ("savepoint s", "Unsupported SQL operation: savepoint"),
    ("release s", "Unsupported SQL operation: savepoint"),
    ("vacuum", "VACUUM is not allowed"),
    ("attach database ':memory:' as other", "attached databases"),
    ("detach database other", "attached databases"),
    ("analyze", "reserved"),  # ANALYZE creates sqlite_stat1
    ("reindex", "Unsupported SQL operation: reindex"),
    ("create virtual table v using fts5(x)", "Unsupported SQL operation: create virtual-table"),
    ("create temp table t (x)", "attached databases"),
    ("create temp view v as select 1", "attached databases"),
])
def test_statements_that_are_never_allowed(caller: Caller, sql: str, message: str) -> None:
    refused(caller, sql, 403, message, who="root")


@pytest.mark.parametrize("sql", [
    "pragma writable_schema = 1", "pragma foreign_keys = off", "pragma journal_mode = delete",
    "pragma query_only = 0", "pragma recursive_triggers = on", "pragma defer_foreign_keys = on",
])
def test_pragmas_are_refused(caller: Caller, sql: str) -> None:
    refused(caller, sql, 403, "Unsupported SQL operation: pragma", who="root")


def test_schema_changes_need_their_actions(caller: Caller) -> None:
    refused(caller, "create table mine (id integer)", 403, "need create-table on data")
    refused(caller, "create view mine as select * from pub", 403, "need create-view on data")
    refused(caller, "drop table pub", 403, "need drop-table on data/pub")
    refused(caller, "alter table pub add column w text", 403, "need alter-table on data/pub")
    refused(caller, "alter table pub rename to pub2", 403, "need alter-table on data/pub")
    refused(caller, "create index pub_v on pub(v)", 403, "need alter-table on data/pub")
    # a view over a table alice may not see is hidden from her like the table
    refused(caller, "drop view secret_view", 400, "no such table: secret_view")
    refused(caller, "drop view log_view", 403, "need drop-view on data/log_view")
    refused(caller, "drop table secret", 400, "no such table: secret")


def test_reserved_names_are_refused_even_to_root(caller: Caller) -> None:
    refused(caller, "create table _lambdasette_queries (name text)", 403, "reserved", who="root")
    refused(caller, "create table _LAMBDASETTE_column_types (x)", 403, "reserved", who="root")
    refused(caller, "create view _litestream_seq as select 1", 403, "reserved", who="root")
    refused(caller, "alter table log rename to _lambdasette_queries", 403, "reserved", who="root")
    refused(caller, "alter table log rename to sqlite_x", 400, "reserved for internal use", who="root")


def test_internal_tables_are_nobodys(caller: Caller) -> None:
    root = {"Authorization": f"Bearer {caller.tokens['root']}"}
    assert caller.client.post("/data/pub/-/set-column-type", headers=root,
                              json={"column": "v", "column_type": {"type": "url"}}).status_code == 200
    assert caller.client.post("/data/-/queries/store", headers=root,
                              json={"query": {"name": "q", "sql": "select 1"}}).status_code == 201
    for sql, status, message in [
        ("update _lambdasette_queries set owner_id = 'alice'", 403, "internal tables"),
        ("delete from _lambdasette_column_types", 403, "internal tables"),
        ("insert into log select sql from _lambdasette_queries", 403, "internal tables"),
        ("drop table _lambdasette_queries", 403, "internal tables"),
        ("create index i on _lambdasette_queries(sql)", 403, "internal tables"),
        ("update sqlite_sequence set seq = 0", 403, "internal tables"),
        ("insert into log select seq from sqlite_sequence", 403, "internal tables"),
    ]:
        refused(caller, sql, status, message, who="root")


# -- foreign keys, virtual and shadow tables ------------------------------------------------------


def test_a_cascade_deletes_only_for_those_who_may(caller: Caller) -> None:
    # alice may delete owners, but the cascade deletes pets too
    # Foreign keys are not enforced on the writer; were they on, the cascade is a write too.
    writer = caller.client.app.state.lambdasette.writer
    writer._database("data").conn.execute("PRAGMA foreign_keys = ON")
    refused(caller, "delete from owners where id = 1", 403, "need delete-row on data/pets")


@pytest.mark.parametrize("sql, message", [
    ("insert into docs_fts(title) values ('x')", "Writes to virtual tables"),
    ("insert into docs_fts(docs_fts) values ('delete-all')", "Writes to virtual tables"),
    ("delete from docs_fts_data", "Writes to shadow tables"),
    ("update docs_fts_config set v = 1", "Writes to shadow tables"),
])
def test_virtual_and_shadow_tables_are_not_writable(caller: Caller, sql: str, message: str) -> None:
    refused(caller, sql, 403, message, who="root")


def test_unknown_table_kinds_fail_closed(tmp_path: Path) -> None:
    """Without pragma_table_list (SQLite before 3.37), a table named like a virtual table's
    storage still counts as one."""
    path = make_db(tmp_path / "k.db")

    class NoTableList(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
            if "pragma_table_list" in sql:
                raise sqlite3.OperationalError("no such table: pragma_table_list")
            return super().execute(sql, *args)

    conn = sqlite3.connect(path, factory=NoTableList)
    analysis = write_sql.analyze(conn, "delete from docs_fts_data", {})
    assert [op.kind for op in analysis.operations if op.operation == "delete"] == ["shadow"]
    analysis = write_sql.analyze(conn, "insert into docs_fts(title) values ('x')", {})
    assert [op.kind for op in analysis.operations if op.operation == "insert"] == ["virtual"]
    conn.close()


# -- functions, parameters, limits -----------------------------------------------------------------


@pytest.mark.parametrize("sql, message", [
    ("update pub set v = load_extension('/tmp/evil.so')", "load_extension() is not allowed"),
    ("update pub set v = fts3_tokenizer('simple')", "fts3_tokenizer() is not allowed"),
    ("update pub set v = changes()", "changes() is not allowed"),
    ("update pub set v = randomblob(1e9)", "larger than"),
    ("update pub set v = printf('%.*c', 2000000000, 'x')", "larger than"),
    ("insert into log select name from dbstat", "Permission denied"),
    ("insert into log select name from pragma_table_list", "Unsupported SQL operation: pragma"),
])
def test_the_sandbox_applies(caller: Caller, sql: str, message: str) -> None:
    before = caller.fingerprint()
    r = caller.write(sql, "root")
    assert r.status_code in (400, 403) and message in r.json()["error"], r.text
    assert caller.fingerprint() == before


def test_the_sandbox_is_taken_off_the_writer_afterwards(caller: Caller) -> None:
    caller.write("update pub set v = fts3_tokenizer('simple')", "root")
    root = {"Authorization": f"Bearer {caller.tokens['root']}"}
    # The write API's own statements (sqlite-utils: pragmas, long statements) still run.
    wide = {f"c{i}": "x" * 50 for i in range(200)}
    r = caller.client.post("/data/-/create", headers=root, json={"table": "wide", "rows": [wide] * 20})
    assert r.status_code == 201, r.text
    r = caller.client.post("/data/wide/-/alter", headers=root,
                           json={"operations": [{"op": "drop_column", "args": {"name": "c1"}}]})
    assert r.status_code == 200, r.text


def test_time_limit(caller: Caller) -> None:
    refused(caller, "with recursive c(x) as (select 1 union all select x + 1 from c) "
                    "insert into log select x from c", 400, "took too long", who="root")


@pytest.mark.parametrize("params, message", [
    ({"v": "a", "extra": 1}, "Unknown parameters: extra"),
    ({"v": [1, 2]}, "must be a string, number, boolean or null"),
    ({"v": {"nested": True}}, "must be a string, number, boolean or null"),
    ({"v": 2**70}, "64 bits"),
])
def test_bad_parameters(caller: Caller, params: dict[str, Any], message: str) -> None:
    refused(caller, "update pub set v = :v where id = 1", 400, message, who="root", params=params)


def test_magic_parameters_are_refused(caller: Caller) -> None:
    refused(caller, "update pub set v = :_actor_id", 400, "Magic parameters are not allowed", who="root")


def test_a_failing_statement_writes_nothing(caller: Caller) -> None:
    refused(caller, "insert into pub (id, v) values (3, 'new'), (1, 'dup')", 400,
            "UNIQUE constraint failed", who="root")


# -- who may call it at all ------------------------------------------------------------------------


def test_without_execute_write_sql_nothing_runs(caller: Caller) -> None:
    narrowed = caller.token("alice", {"r": {"data": {"pub": ["ir", "ur", "dr", "vt"]}}})
    refused(caller, "update pub set v = 'x'", 403, "need execute-write-sql", who=narrowed)
    before = caller.fingerprint()
    r = caller.client.post("/data/-/execute-write", json={"sql": "update pub set v = 'x'"})
    assert r.status_code == 403 and caller.fingerprint() == before
    bob = caller.token("bob")
    refused(caller, "update pub set v = 'x'", 403, "need execute-write-sql", who=bob)


def test_restrictions_narrow_execute_write(caller: Caller) -> None:
    # a token of alice's that may write pub but not view it: no WHERE, no RETURNING
    blind = caller.token("alice", {"d": {"data": ["ews", "vd"]}, "r": {"data": {"pub": ["ir", "ur", "dr"]}}})
    refused(caller, "update pub set v = 'x' where id = 1", 403, "need view-table on data/pub", who=blind)
    r = caller.write("update pub set v = 'x'", blind)
    assert r.status_code == 200, r.text


def test_analyze_says_what_is_missing_without_running(caller: Caller) -> None:
    before = caller.fingerprint()
    r = caller.client.get("/data/-/execute-write/analyze", params={"sql": "insert into pub (v) values ('x')"},
                          headers={"Authorization": f"Bearer {caller.tokens['alice']}"})
    body = r.json()
    assert r.status_code == 200 and body["execute_disabled"] is True
    assert {(row["table"], row["allowed"]) for row in body["analysis_rows"]} >= {("pub", True), ("log", False)}
    assert caller.fingerprint() == before


def test_schema_changes_run_for_those_who_may(caller: Caller) -> None:
    for sql in ["create table mine (id integer primary key, v text)",
                "alter table mine add column w text",
                "alter table mine rename to mine2",
                "alter table mine2 rename column w to w2",
                "create index mine2_v on mine2(v)",
                "drop index mine2_v",
                "create view mine_view as select * from mine2",
                "drop view mine_view",
                "alter table mine2 drop column w2",
                "drop table mine2"]:
        r = caller.write(sql, "root")
        assert r.status_code == 200, (sql, r.text)


# -- breaker2 F01: the analysis has no side effects ------------------------------------------------
# SQLite carries out flag pragmas while it compiles a statement: an analysis that records a
# PRAGMA and refuses it afterwards has already applied it to the writer's connection (or,
# for the heap limits, to the whole process).

PRAGMA_FORMS = [
    "pragma writable_schema = 1", "PRAGMA writable_schema = ON", "pragma main.writable_schema = 1",
    "pragma writable_schema(1)", "  /* hm */ PrAgMa query_only = 1", "pragma query_only = true",
    "pragma hard_heap_limit = 65536", "pragma soft_heap_limit = 1", "pragma cache_size = 1",
    "pragma foreign_keys = on", "pragma recursive_triggers = 1", "pragma trusted_schema = 1",
    "pragma journal_mode = delete", "pragma max_page_count = 1", "pragma busy_timeout = 1",
    "pragma user_version = 7", "pragma schema_version = 1", "pragma temp.cache_size = 1",
    "pragma table_info(secret)", "pragma table_info(pub)", "pragma optimize", "pragma data_version",
]


def connection_state(caller: Caller) -> tuple[Any, ...]:
    """The writer connection's settings, the process's heap limits and the file's header
    values: everything a PRAGMA could have changed."""
    writer = caller.client.app.state.lambdasette.writer
    conn = writer._database("data").conn
    settings = [conn.execute(f"pragma {name}").fetchone() for name in (
        "query_only", "writable_schema", "foreign_keys", "recursive_triggers", "trusted_schema",
        "cache_size", "journal_mode", "max_page_count", "busy_timeout")]
    process = sqlite3.connect(":memory:")
    heap = [process.execute(f"pragma {name}").fetchone() for name in ("hard_heap_limit", "soft_heap_limit")]
    process.close()
    file = sqlite3.connect(caller.path)
    header = [file.execute(f"pragma {name}").fetchone() for name in ("user_version", "schema_version")]
    file.close()
    return tuple(settings + heap + header)


@pytest.mark.parametrize("sql", PRAGMA_FORMS)
def test_f01_no_pragma_takes_effect_through_any_route(caller: Caller, sql: str) -> None:
    caller.write("update pub set v = 'warm' where id = 2", "root")  # the writer is open
    before, fingerprint = connection_state(caller), caller.fingerprint()
    root = {"Authorization": f"Bearer {caller.tokens['root']}"}
    alice = {"Authorization": f"Bearer {caller.tokens['alice']}"}
    r = caller.write(sql, "alice")
    assert r.status_code in (400, 403), r.text
    r = caller.write(sql, "root")
    assert r.status_code in (400, 403), r.text
    if "data_version" not in sql:
        expected = "attached databases" if "temp." in sql else "Unsupported SQL operation: pragma"
        assert r.status_code == 403 and expected in r.json()["error"], r.text
    # GET analyze (a link is enough to make a signed-in victim send it)
    r = caller.client.get("/data/-/execute-write/analyze", params={"sql": sql}, headers=alice)
    assert r.status_code == 200 and r.json()["execute_disabled"] is True
    r = caller.client.get("/data/-/queries/analyze", params={"sql": sql}, headers=root)
    # (data_version only reads: not a write, and storing it is refused as a read that is not a SELECT)
    assert r.status_code == 200 and r.json()["save_disabled"] is ("data_version" not in sql), r.text
    r = caller.client.post("/data/-/queries/store", headers=root, json={"query": {"name": "p", "sql": sql}})
    assert r.status_code in (400, 403), r.text
    assert connection_state(caller) == before
    assert caller.fingerprint() == fingerprint
    # and everyone can still write and read
    assert caller.write("update pub set v = 'after' where id = 2", "root").status_code == 200
    assert caller.client.get("/data/pub.json", headers=root).status_code == 200


def test_f01a_writable_schema_then_a_schema_write_reads_nothing_hidden(caller: Caller) -> None:
    rootpage = sqlite3.connect(caller.path).execute(
        "select rootpage from sqlite_master where name = 'secret'").fetchone()[0]
    refused(caller, "pragma writable_schema = 1", 403, "Unsupported SQL operation: pragma")
    refused(caller, "insert into sqlite_master(type, name, tbl_name, rootpage, sql) values "
                    f"('table', 'mine', 'mine', {rootpage}, 'CREATE TABLE mine (id integer primary key, s text)')",
            400, "may not be modified")
    alice = {"Authorization": f"Bearer {caller.tokens['alice']}"}
    r = caller.client.get("/data/mine.json", headers=alice)
    assert r.status_code != 200 and "the password" not in r.text


def test_f01b_schema_writes_are_never_taken_for_bookkeeping() -> None:
    """Even where writable_schema is on (a caller can no longer turn it on), a caller's own
    INSERT, UPDATE or DELETE on sqlite_master is judged, and refused to everyone."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript("create table t (id integer primary key, name text);"
                       "create table payroll (id integer primary key, salary integer);")
    conn.execute("PRAGMA writable_schema = 1")
    conn.execute("BEGIN IMMEDIATE")
    for sql in [
        "insert into sqlite_master(type, name, tbl_name, rootpage, sql) values ('table', 'mine', 'mine', 3, "
        "'CREATE TABLE mine (id integer primary key, salary integer)')",
        "insert into sqlite_master(type, name, tbl_name, rootpage, sql) values ('trigger', 'evil', 't', 0, "
        "'CREATE TRIGGER evil AFTER INSERT ON t BEGIN DELETE FROM payroll; END')",
        "update sqlite_master set type = 'table', name = 'x', tbl_name = 'x', rootpage = 3, sql = '' where rowid = 1",
        "update sqlite_schema set sql = 'CREATE TABLE t (id)' where name = 't'",
        "delete from sqlite_master",
    ]:
        analysis = write_sql.analyze(conn, sql, {})
        assert analysis.is_write, sql
        verdict = write_sql.judge(analysis, "data", allowed=lambda action, table: True)
        assert not verdict.ok, sql
        assert "Writes to internal tables" in verdict.problems[0][1], (sql, verdict.problems)
    conn.execute("ROLLBACK")
    conn.close()


def test_f01_a_connection_found_changed_is_thrown_away(caller: Caller) -> None:
    """The backstop behind the pragma rule: work that finds the writer's connection changed
    marks its transaction, and the writer closes that connection after the rollback."""
    from lambdasette.errors import ApiError

    writer = caller.client.app.state.lambdasette.writer
    first = writer._database("data").conn

    def work(tx: Any) -> None:
        tx.conn.execute("update pub set v = 'never' where id = 1")
        tx.discard = True
        raise ApiError(500, "changed")

    with pytest.raises(ApiError):
        writer.run("data", work)
    assert writer._database("data").conn is not first
    assert caller.write("update pub set v = 'fine' where id = 1", "root").status_code == 200
    assert sqlite3.connect(caller.path).execute("select v from pub where id = 1").fetchone() == ("fine",)


# -- breaker2 F02: what a schema change reads is the caller's read ------------------------------


@pytest.mark.parametrize("sql, status, message", [
    ("create table copy1 as select type, name, rootpage, sql from sqlite_master", 403, "may not view"),
    ("create table copy1 as select * from sqlite_schema", 403, "may not view"),
    ("create table copy1 as select * from main.sqlite_master", 403, "may not view"),
    ("create table copy1 as select * from sqlite_temp_master", 403, "may not view"),
    ("create table copy1 as select * from sqlite_sequence", 403, "internal tables"),
    ("create table copy1 as select * from _lambdasette_queries", 403, "internal tables"),
    ("create table copy1 as select * from secret", 400, "no such table: secret"),
    ("create table copy1 as select * from secret_view", 400, "no such table: secret_view"),
    ("create table copy1 as with x as (select sql from sqlite_master) select * from x", 403, "may not view"),
    ("create table copy1 as select (select count(*) from secret) as n", 400, "no such table: secret"),
    ("create table copy1 as select * from pub where v in (select name from sqlite_master)", 403, "may not view"),
    ("create table copy1 as select * from pragma_table_info('secret')", 403, "pragma"),
    ("create table copy1 as select * from dbstat", 403, "may not view"),
])
def test_f02_create_table_as_select_reads_what_the_read_path_allows(caller: Caller, sql: str, status: int,
                                                                      message: str) -> None:
    root = {"Authorization": f"Bearer {caller.tokens['root']}"}
    assert caller.client.post("/data/-/queries/store", headers=root,
                              json={"query": {"name": "q", "sql": "select 1"}}).status_code == 201
    refused(caller, sql, status, message, who="carol")
    assert caller.write("create table mine as select * from pub", "carol").status_code == 200


def test_f02_the_schema_tables_as_the_read_path_allows_them(caller: Caller) -> None:
    """root, from whom nothing is hidden, may read sqlite_master with ?sql=, and so in write
    SQL too; SQLite's own tables are nobody's."""
    root = {"Authorization": f"Bearer {caller.tokens['root']}"}
    assert caller.client.get("/data/-/query.json", params={"sql": "select name from sqlite_master"},
                             headers=root).status_code == 200
    r = caller.write("create table names as select name from sqlite_master", "root")
    assert r.status_code == 200, r.text
    refused(caller, "create table seq as select * from sqlite_sequence", 403, "internal tables", who="root")


# -- breaker2 F03: pragma functions ------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    "update pub set v = (select group_concat(name) from pragma_table_info('secret')) where id = 1",
    "update pub set v = (select group_concat(name) from PRAGMA_TABLE_INFO('pub')) where id = 1",
    "update pub set v = (select count(*) from pragma_table_info('secret', 'main')) where id = 1",
    "update pub set v = 'x' where id = 1 returning (select group_concat(name) from pragma_table_info('secret'))",
    "with c as (select name from pragma_index_list('secret')) update pub set v = (select name from c) where id = 1",
    "update pub set v = 'x' where v in (select name from pragma_table_xinfo('secret'))",
    "update pub set v = (select count(*) from pragma_foreign_key_list('pets')) where id = 1",
    "update pub set v = (select count(*) from pragma_database_list) where id = 1",
    "update pub set v = (select count(*) from pragma_function_list) where id = 1",
    "update pub set v = (select page_count from pragma_page_count) where id = 1",
    "update pub set v = (select count(*) from pragma_table_list) where id = 1",
    "update pub set v = (select count(*) from pragma_compile_options) where id = 1",
])
@pytest.mark.parametrize("who", ["alice", "root"])
def test_f03_pragma_functions_are_refused_in_write_sql(caller: Caller, sql: str, who: str) -> None:
    refused(caller, sql, 403, "Unsupported SQL operation: pragma", who=who)


def test_f03_the_read_path_keeps_its_pragma_functions(caller: Caller) -> None:
    alice = {"Authorization": f"Bearer {caller.tokens['alice']}"}
    r = caller.client.get("/data/-/query.json", headers=alice,
                          params={"sql": "select name from pragma_table_info('pub')", "_shape": "array"})
    assert [row["name"] for row in r.json()] == ["id", "v"]
    r = caller.client.get("/data/-/query.json", headers=alice,
                          params={"sql": "select name from pragma_table_info('secret')", "_shape": "array"})
    assert r.status_code == 200 and r.json() == []


# -- breaker2 F04: a hidden table and a missing one answer alike --------------------------------

HIDDEN_AND_MISSING = [
    ("insert into secret(nosuch) values (1)", "insert into nothere(nosuch) values (1)"),
    ("insert into secret(s, nosuch) values (1, 2)", "insert into nothere(s, nosuch) values (1, 2)"),
    ("insert into secret values (1)", "insert into nothere values (1)"),
    ("insert into secret(s) values (1)", "insert into nothere(s) values (1)"),
    ("update secret set nosuch = 1", "update nothere set nosuch = 1"),
    ("update secret set s = 1", "update nothere set s = 1"),
    ("delete from secret where nosuch = 1", "delete from nothere where nosuch = 1"),
    ("update pub set v = (select nosuch from secret) where id = 1",
     "update pub set v = (select nosuch from nothere) where id = 1"),
    ("update pub set v = (select s, s from secret) where id = 1",
     "update pub set v = (select s, s from nothere) where id = 1"),
    ("insert into pub(v) select * from secret", "insert into pub(v) select * from nothere"),
    ("update pub set v = 'x' where id = 1 returning (select nosuch from secret)",
     "update pub set v = 'x' where id = 1 returning (select nosuch from nothere)"),
    ("create index i on secret(nosuch)", "create index i on nothere(nosuch)"),
    ("alter table secret add column w", "alter table nothere add column w"),
    ("alter table secret rename column nosuch to w", "alter table nothere rename column nosuch to w"),
    ("drop table secret", "drop table nothere"),
    ("create view v as select nosuch from secret", "create view v as select nosuch from nothere"),
    ("create table c as select nosuch from secret", "create table c as select nosuch from nothere"),
    ("update pub set v = (select s from secret_view) where id = 1",
     "update pub set v = (select s from nothere) where id = 1"),
]


def _anonymised(text: str) -> str:
    return text.replace("secret_view", "X").replace("secret", "X").replace("nothere", "X")


@pytest.mark.parametrize("hidden, missing", HIDDEN_AND_MISSING)
def test_f04_hidden_and_missing_tables_answer_alike(caller: Caller, hidden: str, missing: str) -> None:
    for who in ("alice", "carol"):
        h, m = caller.write(hidden, who), caller.write(missing, who)
        assert (h.status_code, _anonymised(h.json()["error"])) == (m.status_code, _anonymised(m.json()["error"])), \
            (who, h.text, m.text)
        assert "column" not in h.json()["error"], h.text
    carol = {"Authorization": f"Bearer {caller.tokens['carol']}"}
    for path in ("/data/-/execute-write/analyze", "/data/-/queries/analyze"):
        h = caller.client.get(path, params={"sql": hidden}, headers=carol).json()
        m = caller.client.get(path, params={"sql": missing}, headers=carol).json()
        assert _anonymised(str(h.get("analysis_error"))) == _anonymised(str(m.get("analysis_error"))), (path, h, m)
        assert "column" not in str(h.get("analysis_error")), (path, h)
    h = caller.client.post("/data/-/queries/store", headers=carol, json={"query": {"name": "h1", "sql": hidden}})
    m = caller.client.post("/data/-/queries/store", headers=carol, json={"query": {"name": "h2", "sql": missing}})
    assert (h.status_code, _anonymised(str(h.json().get("error")))) == \
        (m.status_code, _anonymised(str(m.json().get("error")))), (h.text, m.text)


# -- siblings: views, triggers, RETURNING, CTEs, internal tables, statements -----------------------


@pytest.mark.parametrize("sql, status, message", [
    ("create view v as select * from secret", 400, "no such table: main.secret"),
    ("create view v as select * from secret_view", 400, "no such table: main.secret_view"),
    ("create view v as select p.v, (select s from secret) as s from pub p", 400, "no such table: main.secret"),
    ("create view v as select name from sqlite_master", 403, "may not view"),
    # SQLite's and our own tables are missing for everyone, as the read path words them
    ("create view v as select * from sqlite_sequence", 400, "no such table: main.sqlite_sequence"),
    ("create view v as select * from _lambdasette_queries", 400, "no such table: main._lambdasette_queries"),
    ("create view v as select * from pragma_table_info('pub')", 403, "Unsupported SQL operation: pragma"),
    ("create view v as select * from dbstat", 400, "unsafe use of virtual table"),
    ("create view v as with x as (select * from secret) select * from x", 400, "no such table: main.secret"),
])
def test_a_new_view_reads_only_what_its_creator_may(caller: Caller, sql: str, status: int, message: str) -> None:
    root = {"Authorization": f"Bearer {caller.tokens['root']}"}
    assert caller.client.post("/data/-/queries/store", headers=root,
                              json={"query": {"name": "q", "sql": "select 1"}}).status_code == 201
    refused(caller, sql, status, message, who="carol")


def test_a_new_view_over_visible_tables_is_created(caller: Caller) -> None:
    r = caller.write("create view mine as select p.v, j.value from pub p, json_each('[1]') j", "carol")
    assert r.status_code == 200, r.text
    r = caller.write("create view all_secrets as select * from secret", "root")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("sql", [
    "create trigger t after update on pub begin insert into log select name from sqlite_master; end",
    "create trigger t after update on pub begin delete from _lambdasette_queries; end",
    "create trigger t after update on pub begin update sqlite_sequence set seq = 0; end",
    "create trigger t after update on pub begin insert into log select s from secret; end",
    "create trigger t after update on pub begin select * from pragma_table_info('secret'); end",
])
def test_triggers_touching_hidden_or_internal_tables_are_refused(caller: Caller, sql: str) -> None:
    refused(caller, sql, 403, "Unsupported SQL operation: create trigger", who="root")


@pytest.mark.parametrize("sql, status, message", [
    ("update pub set v = 'x' where id = 1 returning (select s from secret)", 400, "no such table: secret"),
    ("update pub set v = 'x' where id = 1 returning (select s from secret_view)", 400, "no such table: secret_view"),
    ("update pub set v = 'x' where id = 1 returning (select group_concat(sql) from sqlite_master)", 403,
     "may not view"),
    ("update pub set v = 'x' where id = 1 returning (select seq from sqlite_sequence)", 403, "internal tables"),
    ("update pub set v = 'x' where id = 1 returning id, (select count(*) from secret where s > v)", 400,
     "no such table: secret"),
    ("update pub set v = 'x' where id = 1 returning (select name from dbstat)", 403, "may not view"),
])
def test_returning_reads_only_what_the_caller_may(caller: Caller, sql: str, status: int, message: str) -> None:
    refused(caller, sql, status, message)


@pytest.mark.parametrize("sql, status, message", [
    ("with x as (select name from sqlite_master) update pub set v = (select name from x) where id = 1", 403,
     "may not view"),
    ("with x as (select * from secret_view) update pub set v = (select s from x) where id = 1", 400,
     "no such table: secret_view"),
    ("with recursive r(n) as (select 1 union all select n + 1 from r where n < 3) "
     "update pub set v = (select group_concat(name) from sqlite_schema) where id = 1", 403, "may not view"),
    ("update pub set v = (select group_concat(name) from sqlite_master) where id = 1", 403, "may not view"),
    ("update pub set v = (select group_concat(name) from sqlite_temp_master) where id = 1", 403, "may not view"),
])
def test_reads_of_schema_and_hidden_tables_follow_the_read_path(caller: Caller, sql: str, status: int,
                                                                message: str) -> None:
    refused(caller, sql, status, message)


def test_internal_and_sqlite_tables_are_written_by_nobody(caller: Caller) -> None:
    conn = sqlite3.connect(caller.path)
    conn.execute("analyze")  # sqlite_stat1, as a database made elsewhere may carry it
    conn.commit()
    conn.close()
    root = {"Authorization": f"Bearer {caller.tokens['root']}"}
    assert caller.client.post("/data/-/queries/store", headers=root,
                              json={"query": {"name": "q", "sql": "select 1"}}).status_code == 201
    for sql, status, message in [
        ("drop table sqlite_stat1", 403, "internal tables"),
        ("delete from sqlite_stat1", 403, "internal tables"),
        ("insert into sqlite_stat1 values ('pub', null, '1')", 403, "internal tables"),
        ("update sqlite_sequence set seq = 0", 403, "internal tables"),
        ("insert into sqlite_sequence values ('x', 1)", 403, "internal tables"),
        ("drop table sqlite_sequence", 400, "no such table: sqlite_sequence"),
        ("delete from sqlite_master", 400, "may not be modified"),
        ("update sqlite_schema set sql = ''", 400, "may not be modified"),
        ("alter table sqlite_sequence rename to x", 400, "no such table: sqlite_sequence"),
        ("alter table _lambdasette_queries rename to mine", 403, "internal tables"),
        ("alter table _lambdasette_queries add column x", 403, "internal tables"),
        ("create index i on sqlite_stat1(tbl)", 400, "no such table: main.sqlite_stat1"),
        ("alter table log rename to sqlite_sequence", 400, "reserved for internal use"),
        ("alter table log rename to _lambdasette_queries", 400, "there is already another table"),
        ("alter table log rename to _litestream_seq", 403, "reserved"),
        ("drop table _lambdasette_queries", 403, "internal tables"),
        ("drop index if exists sqlite_autoindex_pub_1", 403, ""),
        ("reindex pub", 403, "Unsupported SQL operation"),
        ("reindex nocase", 403, "Unsupported SQL operation"),
        ("analyze pub", 403, ""),
    ]:
        refused(caller, sql, status, message, who="root")


@pytest.mark.parametrize("sql", [
    "begin; update pub set v = 'a' where id = 1; commit",
    "savepoint s; update pub set v = 'a' where id = 1; release s",
    "update pub set v = 'a' where id = 1; rollback",
    "update pub set v = 'a' where id = 1; pragma writable_schema = 1",
    "pragma writable_schema = 1; update pub set v = 'a' where id = 1",
    "update pub set v = 'a' where id = 1; insert into sqlite_master values ('table', 'x', 'x', 2, '')",
])
def test_transactions_and_pragmas_inside_the_body_are_refused(caller: Caller, sql: str) -> None:
    before = connection_state(caller)
    if sql.startswith("pragma"):  # refused as SQLite compiles the first statement
        refused(caller, sql, 403, "Unsupported SQL operation: pragma", who="root")
    else:
        refused(caller, sql, 400, "one statement at a time", who="root")
    assert connection_state(caller) == before


@pytest.mark.parametrize("sql, message", [
    ("begin immediate", "Unsupported SQL operation: begin"),
    ("end", "Unsupported SQL operation: commit"),
    ("rollback to s", "Unsupported SQL operation: savepoint"),
    ("release savepoint s", "Unsupported SQL operation: savepoint"),
])
def test_transaction_statements_are_refused(caller: Caller, sql: str, message: str) -> None:
    refused(caller, sql, 403, message, who="root")


def test_f01_a_changed_connection_is_caught_and_the_heap_limit_put_back(tmp_path: Path) -> None:
    """`state_kept`, around every caller's statement on a connection, on a real connection
    that something did change (here our own statement, as no caller's can)."""
    from lambdasette.writes import sql as write_sql_run

    conn = sqlite3.connect(tmp_path / "x.db")
    process = sqlite3.connect(":memory:")
    soft = process.execute("pragma soft_heap_limit").fetchone()
    marked: list[bool] = []
    with pytest.raises(write_sql_run.ConnectionChanged):
        with write_sql_run.state_kept(conn, changed=lambda: marked.append(True)):
            conn.execute(f"pragma soft_heap_limit = {(soft[0] or 2**30) + 2**20}")
    assert marked == [True]
    assert process.execute("pragma soft_heap_limit").fetchone() == soft
    with pytest.raises(write_sql_run.ConnectionChanged):
        with write_sql_run.state_kept(conn):
            conn.execute("pragma query_only = 1")
    with write_sql_run.state_kept(conn):  # reads change nothing
        conn.execute("pragma query_only").fetchall()
    conn.close()
    process.close()
