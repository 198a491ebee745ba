"""A caller's SQL cannot hurt the server: only reviewed SQL functions run, and every query
ends near its time limit and within memory (../shared/cases/security/01 and 02, and their
kind)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import authorizer
from lambdasette.errors import ApiError
from lambdasette.instance import Lambdasette, Options
from lambdasette.settings import Settings
from lambdasette.storage.base import ReadConnection
from lambdasette.storage.local import LocalStorage

from .test_cli_serve import free_port, wait_until_answering

SCHEMA = """
    CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT, created TEXT, data TEXT,
                       tags TEXT, score REAL);
    INSERT INTO docs VALUES
      (1, 'Hello', 'hello world', '2024-01-02 03:04:05', '{"a": {"b": 1}}', '["x", "y"]', 1.5),
      (2, 'Other', 'goodbye moon', '2024-02-03', '{"a": {"b": 2}}', '["y"]', -2.25);
    CREATE VIRTUAL TABLE docs_fts4 USING fts4(title, body, content="docs");
    INSERT INTO docs_fts4(docs_fts4) VALUES ('rebuild');
    CREATE VIRTUAL TABLE docs_fts5 USING fts5(title, body, content="docs", content_rowid="id");
    INSERT INTO docs_fts5(docs_fts5) VALUES ('rebuild');
    CREATE VIRTUAL TABLE places USING rtree(id, minx, maxx, miny, maxy);
    INSERT INTO places VALUES (1, 0, 1, 0, 1);
    CREATE TABLE counter (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT);
    INSERT INTO counter (label) VALUES ('one');
    CREATE INDEX docs_title ON docs(title);
    CREATE VIEW pointer_view AS SELECT fts3_tokenizer('simple') AS pointer;
    CREATE VIEW changes_view AS SELECT total_changes() AS n;
    ANALYZE;
"""


def make_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_db(tmp_path_factory.mktemp("sandbox") / "data.db")


@pytest.fixture(scope="module")
def client(db: Path) -> Iterator[TestClient]:
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=True))
    with TestClient(create_app(ds), base_url="http://localhost") as c:
        yield c


def q(sql: str, **extra: str) -> str:
    return "/data.json?" + urllib.parse.urlencode({"sql": sql, "_shape": "array", **extra})


# -- the allow-list --------------------------------------------------------------------------


def test_every_function_of_this_sqlite_is_reviewed() -> None:
    """A function is either allowed or denied for a stated reason: a newer SQLite's new
    functions fail this test until someone decides about them."""
    conn = sqlite3.connect(":memory:")
    names = {row[0] for row in conn.execute("select name from pragma_function_list")}
    denied = set().union(*authorizer.DENIED_FUNCTIONS.values())
    assert not authorizer.SAFE_FUNCTIONS & denied
    unreviewed = sorted(names - authorizer.SAFE_FUNCTIONS - denied)
    assert unreviewed == [], f"review these SQL functions: {unreviewed}"


LEGITIMATE = [
    # core scalar, aggregate and window functions
    "select abs(-1), char(65), coalesce(null, 1), glob('a*', 'ab'), hex('a'), ifnull(null, 2),"
    " iif(1, 'y', 'n'), instr('abc', 'b'), length('abc'), like('a%', 'ab'), lower('A'),"
    " ltrim(' a'), max(1, 2), min(1, 2), nullif(1, 1), quote('a'), random() is not null,"
    " length(randomblob(16)), replace('aa', 'a', 'b'), round(1.25, 1), rtrim('a '), sign(-3),"
    " soundex('Robert'), substr('abc', 2), substring('abc', 2, 1), trim(' a '), typeof(1),"
    " unicode('A'), upper('a'), length(zeroblob(16)), likely(1), unlikely(0), likelihood(1, 0.5)",
    "select count(*), avg(score), sum(score), total(score), group_concat(title), max(score),"
    " min(score) from docs",
    "select row_number() over (order by id), rank() over (order by score),"
    " dense_rank() over (order by score), percent_rank() over (order by score),"
    " cume_dist() over (order by score), ntile(2) over (order by id), lag(id) over (order by id),"
    " lead(id) over (order by id), first_value(id) over (order by id),"
    " last_value(id) over (order by id), nth_value(id, 1) over (order by id) from docs",
    # printf and format, with widths and precisions
    "select printf('%d %s %.2f %5s %-5s| %c %.3c %q %Q %w %x %%', 1, 'a', 3.14159, 'b', 'c',"
    " 'x', 'y', 'it''s', 'z', 'w', 255), format('%s-%s', 'a', 'b'), printf('%.*c', 3, 'z'),"
    " printf(NULL), printf('%!.3c', 'q')",
    # date and time
    "select date('now') is not null, time(created), datetime(created), julianday(created),"
    " unixepoch(created), strftime('%Y', created), current_date is not null,"
    " current_time is not null, current_timestamp is not null from docs",
    # math
    "select acos(1), asin(0), atan(0), atan2(0, 1), ceil(1.2), ceiling(1.2), cos(0), cosh(0),"
    " degrees(pi()), exp(0), floor(1.8), ln(1), log(100), log(2, 8), log10(10), log2(8),"
    " mod(7, 3), pow(2, 3), power(2, 3), radians(180), sin(0), sinh(0), sqrt(4), tan(0),"
    " tanh(0), trunc(1.7), acosh(1), asinh(0), atanh(0)",
    # JSON, json_each/json_tree (as array facets use them), -> and ->>
    "select json('{}'), json_array(1, 2), json_array_length(tags), json_extract(data, '$.a.b'),"
    " json_insert(data, '$.c', 1), json_object('a', 1), json_patch('{}', '{\"a\": 1}'),"
    " json_quote('a'), json_remove(data, '$.a'), json_replace(data, '$.a', 1),"
    " json_set(data, '$.a', 2), json_type(data), json_valid(data), data -> '$.a', data ->> '$.a.b'"
    " from docs",
    "select json_group_array(id), json_group_object(title, id) from docs",
    "select j.value, count(*) from docs join json_each(docs.tags) j group by j.value",
    "select key, type from json_tree('{\"a\": [1, 2]}')",
    # full-text search and its safe auxiliary functions
    "select snippet(docs_fts4), matchinfo(docs_fts4), offsets(docs_fts4) from docs_fts4"
    " where docs_fts4 match 'hello'",
    "select bm25(docs_fts5), highlight(docs_fts5, 0, '[', ']'), snippet(docs_fts5, 1, '[', ']',"
    " '...', 4), rank from docs_fts5 where docs_fts5 match 'hello' order by rank",
    "select * from docs_fts5('hello')",
    "select escape_fts('hello world')",
    "select rowid from docs where rowid in (select rowid from docs_fts4 where docs_fts4 match"
    " escape_fts('hello'))",
    # R*Tree (it reads sqlite_stat1 when opened, which callers may not)
    "select id from places where minx >= 0",
    # the pragma functions Datasette allows, and the versions
    "select * from pragma_table_info('docs')",
    "select * from pragma_table_xinfo('docs')",
    "select * from pragma_index_list('docs')",
    "select * from pragma_index_info('docs_title')",
    "select * from pragma_index_xinfo('docs_title')",
    "select * from pragma_foreign_key_list('docs')",
    "select count(*) from pragma_function_list",
    "select * from pragma_page_count, pragma_page_size, pragma_max_page_count,"
    " pragma_schema_version",
    "select sqlite_version(), sqlite_source_id(), sqlite_compileoption_used('ENABLE_FTS5'),"
    " sqlite_compileoption_get(0)",
    # CTEs, recursive ones included, subqueries, the schema table
    "with recursive c(x) as (select 1 union all select x + 1 from c where x < 10)"
    " select sum(x) from c",
    "select name from sqlite_master where type = 'table' order by name",
    "select (select count(*) from docs), exists(select 1 from docs where id = 1)",
]


@pytest.mark.parametrize("sql", LEGITIMATE)
def test_legitimate_queries_keep_working(client: TestClient, sql: str) -> None:
    r = client.get(q(sql))
    assert r.status_code == 200, r.text


def test_our_printf_randomblob_and_zeroblob_answer_as_sqlites_own(client: TestClient) -> None:
    sql = ("select printf('%d-%s-%.2f-%5.1f-%c-%q-%Q-%w', 7, 'x', 2.5, 1.25, 'q', 'a''b', NULL, 'c\"d')"
           " as p, printf('%.*c', 4, 'z') as z, format('%s|%5d', NULL, 42) as f, printf(NULL) as n,"
           " printf('%s', x'41') as b, length(randomblob('12')) as r, length(randomblob(0)) as r0,"
           " length(randomblob(-5)) as rn, typeof(zeroblob(3)) as t, hex(zeroblob(2.9)) as h,"
           " length(zeroblob(-1)) as zn, typeof(randomblob(NULL)) as rt")
    conn = sqlite3.connect(":memory:")
    cursor = conn.execute(sql)
    expected = [dict(zip([d[0] for d in cursor.description], cursor.fetchone()))]
    assert client.get(q(sql)).json() == expected


DENIED = {
    "memory": [
        ("fts3_tokenizer", "select hex(fts3_tokenizer('simple'))"),
        ("fts3_tokenizer", "select fts3_tokenizer('simple', x'4141414141414141')"),
        ("fts5", "select fts5(NULL)"),
    ],
    "files and code": [("load_extension", "select load_extension('/tmp/nothing')")],
    "writes and internals": [
        ("optimize", "select optimize(docs_fts4) from docs_fts4 limit 1"),
        ("fts5_source_id", "select fts5_source_id()"),
        ("rtreecheck", "select rtreecheck('places')"),
        ("rtreenode", "select rtreenode(2, x'0000')"),
        ("rtreedepth", "select rtreedepth(x'0000')"),
        ("sqlite_log", "select sqlite_log(1, 'hello')"),
        ("subtype", "select subtype(1)"),
    ],
    "other callers' state": [
        ("changes", "select changes()"),
        ("total_changes", "select total_changes()"),
        ("last_insert_rowid", "select last_insert_rowid()"),
    ],
}
DENIED_CASES = [(kind, name, sql) for kind, cases in DENIED.items() for name, sql in cases]


@pytest.mark.parametrize(("kind", "name", "sql"), DENIED_CASES)
def test_denied_functions_are_refused_by_name(client: TestClient, kind: str, name: str,
                                              sql: str) -> None:
    assert name in authorizer.DENIED_FUNCTIONS[kind]
    expected = f"SQL function {name}() is not allowed"
    r = client.get(q(sql))
    assert (r.status_code, r.json()["error"]) == (400, expected)
    # The same anywhere SQL is accepted: inside a subquery, a CTE, or `_where`.
    wrapped = f"select * from (with x as ({sql}) select * from x)"
    assert client.get(q(wrapped)).json()["error"] == expected
    inner = sql.replace("select ", "", 1).split(" from ")[0]
    r = client.get("/data/docs.json?" + urllib.parse.urlencode({"_where": f"({inner}) is not null"}))
    assert (r.status_code, r.json()["error"]) == (400, expected)


@pytest.mark.parametrize("name", ["readfile", "writefile", "edit"])
def test_shell_file_functions_do_not_exist(client: TestClient, name: str) -> None:
    r = client.get(q(f"select {name}('/etc/passwd')"))
    assert (r.status_code, r.json()["error"]) == (400, f"no such function: {name}")


def test_a_view_cannot_call_a_denied_function_for_the_caller(client: TestClient) -> None:
    for path in ("/data/changes_view.json", q("select * from changes_view")):
        r = client.get(path)
        assert r.status_code == 400 and "total_changes() is not allowed" in r.json()["error"]
    # SQLite itself refuses fts3_tokenizer in a view; the rest of the database still works.
    r = client.get(q("select * from pointer_view"))
    assert r.status_code == 400 and "fts3_tokenizer()" in r.json()["error"]
    assert client.get("/data/pointer_view.json").status_code == 400
    assert client.get("/data.json").status_code == 200


@pytest.mark.parametrize("sql", [
    "select name from dbstat", "select count(*) from dbstat where name = 'docs'",
    "select sql from sqlite_stmt", "select * from sqlite_dbpage",
    # B13: reads that name no column (SQLite reports column '') are refused alike: how many
    # statements sqlite_stmt lists tells what other callers ran on this shared connection.
    "select count(*) from sqlite_stmt", "select count(*) from dbstat", "select 1 from sqlite_dbpage limit 1",
    "select count(*) from SQLITE_STMT", "select (select count(*) from main.sqlite_stmt)",
])
def test_eponymous_tables_outside_the_schema_are_refused(client: TestClient, sql: str) -> None:
    r = client.get(q(sql))
    assert r.status_code in (400, 403) and r.json()["ok"] is False
    assert "docs" not in r.json()["error"]
    where = "/data/docs.json?" + urllib.parse.urlencode({"_where": f"exists(select 1 from ({sql}))"})
    assert client.get(where).status_code in (400, 403)


def test_a_cte_named_like_nothing_still_counts(client: TestClient) -> None:
    """The column-less exception that remains is for CTE names (SQLite reports them alike)."""
    r = client.get(q("with x(n) as (select 1 union all select 2) select count(*) from x"))
    assert r.status_code == 200 and r.json() == [{"count(*)": 2}]


@pytest.mark.parametrize("sql", [
    "select * from pragma_journal_mode", "select * from pragma_table_list",
    "select * from pragma_compile_options", "select * from pragma_writable_schema",
])
def test_other_pragmas_are_refused(client: TestClient, sql: str) -> None:
    assert client.get(q(sql)).status_code == 400
    where = "/data/docs.json?" + urllib.parse.urlencode({"_where": f"exists({sql})"})
    assert client.get(where).status_code in (400, 403)


def test_the_authorizer_is_set_once_per_connection_and_caller(db: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting an authorizer expires every cached statement: the hot path must not."""
    calls: list[object] = []
    original = ReadConnection.set_authorizer

    def counting(self: ReadConnection, guard: Any) -> None:
        calls.append(guard)
        original(self, guard)

    monkeypatch.setattr(ReadConnection, "set_authorizer", counting)
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=True, threaded=False))
    with TestClient(create_app(ds)) as c:
        urls = ["/data/docs.json?_facet=title", q("select count(*) from docs"), "/data/docs/1.json"]
        for url in urls:
            assert c.get(url).status_code == 200
        settled = len(calls)
        for _ in range(3):
            for url in urls:
                assert c.get(url).status_code == 200
        assert len(calls) == settled


# -- time and memory -------------------------------------------------------------------------

R = "with recursive c(x) as (select 1 union all select x + 1 from c) "
HOSTILE = [
    # ../shared/cases/security/02: one call that allocated gigabytes for 15 s
    "select length(x) + length(y) from (select randomblob(999999999) as x,"
    " randomblob(999999999) as y)",
    "select randomblob(2e9)",
    "select length(hex(zeroblob(2000000000)))",
    "select length(printf('%.*c', 2000000000, 'x'))",
    "select length(printf('%.2000000000c', 'x'))",
    "select length(format('%!.*c', 1500000000, 'x'))",
    "select length(replace(hex(zeroblob(1000000)), '0', hex(zeroblob(1000))))",
    "with recursive c(x) as (select 'a' union all select x || x from c) select length(x) from c",
    R + "select length(group_concat(printf('%.1000c', 'x'))) from c",
    R + "select length(json_group_array(printf('%.1000c', 'x'))) from c",
    R + "select count(*) from c",
    R + "select count(distinct x) from c",
    R + "select max(x) from (select x from c order by random())",
    "select " + ", ".join(["length(randomblob(8000000))"] * 60),
    "select " + ", ".join(["zeroblob(8000000)"] * 60),
    R + "select zeroblob(8000000) from c limit 1000",
    R + "select randomblob(8000000) from c limit 1000",
    R + "select printf('%.8000000c', 'x') from c limit 1000",
]
STOPPED = ("SQL query took too long", "larger than", "more memory")


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    db = make_db(tmp_path_factory.mktemp("limits") / "data.db")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambdasette.cli", "serve", str(db), "--public", "--port", str(port),
         "--setting", "sql_time_limit_ms", "200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield wait_until_answering(port, proc), proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def peak_rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


def fetch_sized(url: str) -> tuple[int, dict[str, Any], int]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            data = r.read()
            return r.status, json.loads(data), len(data)
    except urllib.error.HTTPError as exc:
        data = exc.read()
        return exc.code, json.loads(data), len(data)


def fetch(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_hostile_queries_end_near_the_time_limit_and_within_memory(
        strict_server: tuple[str, int]) -> None:
    base, pid = strict_server
    before = peak_rss_mb(pid)
    for sql in HOSTILE:
        started = time.monotonic()
        status, body, size = fetch_sized(base + "/data.json?" + urllib.parse.urlencode({"sql": sql}))
        elapsed = time.monotonic() - started
        if status == 200:
            # Stopped by the response budget (32 MiB locally): fewer rows, marked truncated.
            assert body["truncated"] is True and size <= 32 * 1024 * 1024, (sql[:80], size)
        else:
            assert status in (400, 413) and any(s in body["error"] for s in STOPPED), (sql[:80], body)
        # The limit is 0.2 s; unbounded, these ran 15 s to hours. 30x the limit leaves room
        # for a loaded machine.
        assert elapsed < 6.0, (sql[:80], elapsed)
    grown = peak_rss_mb(pid) - before
    assert grown < 600, f"peak RSS grew by {grown} MB"  # unbounded: gigabytes
    status, _ = fetch(base + "/-/versions.json")
    assert status == 200


def test_values_up_to_the_limit_work_and_the_limit_is_a_setting(db: Path) -> None:
    settings = Settings()
    settings.set("max_value_mb", "16")
    ds = Lambdasette(storage=LocalStorage([db]), settings=settings, options=Options(public=True))
    with TestClient(create_app(ds)) as c:
        sql = "select length(printf('%.*c', 12000000, 'x')) as n, length(zeroblob(12000000)) as z"
        assert c.get(q(sql)).json() == [{"n": 12000000, "z": 12000000}]
        r = c.get(q("select length(randomblob(20000000))"))
        assert r.status_code == 400 and "larger than 16777216 bytes" in r.json()["error"]


def test_fts3_tokenizer_cannot_crash_the_server(tmp_path: Path) -> None:
    """../shared/cases/security/01: the two-argument form installed a bogus tokenizer pointer
    that crashed the process as soon as any connection opened an FTS4 table."""
    db = tmp_path / "f.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        create table docs(id integer primary key, body text);
        insert into docs values (1, 'hello world');
        create virtual table docs_fts using fts4(body, content="docs");
        insert into docs_fts(docs_fts) values ('rebuild');
    """)
    conn.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lambdasette.cli", "serve", str(db), "--public",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = wait_until_answering(port, proc)
        status, body = fetch(base + "/f.json?" + urllib.parse.urlencode(
            {"sql": "select hex(fts3_tokenizer('simple')) as ptr"}))
        assert status == 400 and "ptr" not in json.dumps(body.get("rows"))
        poison = base + "/f.json?" + urllib.parse.urlencode(
            {"sql": "select fts3_tokenizer('simple', x'4141414141414141')"})
        search = base + "/f.json?" + urllib.parse.urlencode(
            {"sql": "select count(*) from docs_fts where docs_fts match 'hello'"})
        with ThreadPoolExecutor(8) as pool:
            for _ in range(2):
                assert {s for s, _ in pool.map(fetch, [poison] * 16)} == {400}
                assert {s for s, _ in pool.map(fetch, [search] * 16)} == {200}
        assert proc.poll() is None
        assert fetch(base + "/-/versions.json")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_prepare_readies_any_connection_for_untrusted_sql(tmp_path: Path) -> None:
    """What an execute-write endpoint would use: the writer's kind of connection, prepared."""
    from lambdasette.query import execute
    from lambdasette.storage.base import open_read_write

    conn = open_read_write(make_db(tmp_path / "w.db"))
    execute.prepare(conn)
    execute.prepare(conn)  # once is enough; twice is harmless
    run = execute.run
    for sql, error in [
        ("select fts3_tokenizer('simple')", "SQL function fts3_tokenizer() is not allowed"),
        ("select randomblob(1e9)", "larger than 8388608 bytes"),
        ("select printf('%.*c', 1e9, 'x')", "larger than 8388608 bytes"),
        ("select * from pragma_journal_mode", "disallowed PRAGMA or ATTACH"),
        ("attach database ':memory:' as other", "disallowed PRAGMA or ATTACH"),
        ("select name from dbstat", "Permission denied"),
    ]:
        with pytest.raises(ApiError) as caught:
            run(conn, sql, time_limit_ms=1000)
        assert error in str(caught.value), (sql, caught.value)
    assert run(conn, "select count(*) from docs", time_limit_ms=1000).rows == [(2,)]
    conn.execute("insert into counter (label) values ('two')")  # our own statements still run


@pytest.mark.parametrize("pragma, argument, allowed", [
    ("table_info", "docs", True),  # names a table: a read
    ("index_list", "docs", True),
    ("page_size", None, True),  # no argument: a read
    ("page_size", "1024", False),  # an argument to any other pragma sets it
    ("max_page_count", "1", False),
    ("schema_version", "1", False),
    ("writable_schema", "1", False),
    ("hard_heap_limit", "65536", False),
])
def test_no_pragma_that_sets_anything_passes_the_guard(pragma: str, argument: str | None, allowed: bool) -> None:
    """The read guard lets through only the pragmas that read, and never an argument that
    would set one: no caller's statement changes a connection's state. Write SQL's guard
    (`pragmas=False`) lets none through at all."""
    ok = sqlite3.SQLITE_OK
    assert (authorizer.UNTRUSTED(sqlite3.SQLITE_PRAGMA, pragma, argument, "main", None) == ok) is allowed
    assert authorizer.UNTRUSTED_WRITE(sqlite3.SQLITE_PRAGMA, pragma, argument, "main", None) != ok
    # what FTS5 asks for by itself, with no argument, is the one exception
    assert authorizer.UNTRUSTED_WRITE(sqlite3.SQLITE_PRAGMA, "data_version", None, "main", None) == ok
    assert authorizer.UNTRUSTED_WRITE(sqlite3.SQLITE_PRAGMA, "data_version", "1", "main", None) != ok
    conn = sqlite3.connect(":memory:")
    conn.execute("create table docs (id integer primary key)")
    authorizer.install(conn, authorizer.UNTRUSTED)
    statement = f"pragma {pragma}" + ("" if argument is None else f" = {argument}")
    if allowed:
        conn.execute(statement).fetchall()
    else:
        # refused as SQLite asks, before the code that would apply it
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            conn.execute(statement)
    conn.close()
