"""`POST /<db>/-/execute-write` attacked: every way a caller might write, read or change more
than their permissions allow through arbitrary write SQL. Each attack must be refused before
anything runs, and the database must be byte-for-byte what it was.

The caller in most tests is `alice`, who may run write SQL on `data` and insert, update and
delete rows of `pub` (and view it) — nothing on `secret`, `log`, `owners` or `pets`."""

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

ROW_ACTIONS = {"insert-row": {"id": "alice"}, "update-row": {"id": "alice"},
               "delete-row": {"id": "alice"}, "view-table": True}
POLICY = {
    "databases": {
        "data": {
            "permissions": {"execute-write-sql": {"id": "alice"}},
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
        self.tokens = {"root": tokens.create(store, "root")[0], "alice": tokens.create(store, "alice")[0]}

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
    refused(caller, "insert into pub (v) select s from secret_view", 403, "a table you may not view")
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
    refused(caller, "drop view secret_view", 403, "need drop-view on data/secret_view")
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
        ("insert into log select name from sqlite_master", 403, "Unsupported SQL operation: read schema"),
        ("insert into log select sql from sqlite_schema", 403, "Unsupported SQL operation: read schema"),
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
