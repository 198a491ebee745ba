"""The second attacker review's findings (`/work/notes/breaker/B01...B13`) as tests: each
scenario as its script sets it up, and what must hold, plus the siblings of each kind. (The
kinds are also covered where they live: test_names for B07, test_sql_sandbox for B13,
test_limits for the budgets.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.settings import Settings
from lambdasette.storage.local import LocalStorage


class Space:
    """`lambdasette serve data.db --tokens-db tokens.db [--permissions ...] [--setting ...]`,
    in process."""

    def __init__(self, tmp_path: Path, schema: str, *, public: bool = False,
                 permissions: dict[str, Any] | None = None, **settings: Any) -> None:
        self.db = tmp_path / "data.db"
        conn = sqlite3.connect(self.db)
        conn.executescript(schema)
        conn.commit()
        conn.close()
        self.store = LocalTokenStore(tmp_path / "tokens.db")
        config = Settings()
        for name, value in settings.items():
            setattr(config, name, value)
        self.ds = Lambdasette(storage=LocalStorage([self.db]), options=Options(public=public),
                              settings=config, tokens=self.store, policy=Policy.parse(permissions))
        self.client = TestClient(create_app(self.ds), raise_server_exceptions=False)

    def token(self, actor: str, restrictions: dict[str, Any] | None = None) -> str:
        return tokens.create(self.store, actor, restrictions, 3600)[0]

    def request(self, method: str, path: str, token: str | None = None, body: Any = None,
                **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = json.dumps(body).encode() if body is not None else None
        return self.client.request(method, "http://testserver" + path, headers=headers, content=content,
                                   follow_redirects=False, **kwargs)


# -- B08: the write API never shows the schema of a table the caller may not view -------------

SECRET = """
create table secret (id integer primary key, ssn text not null, salary integer default 100000 check (salary > 0));
create view v_secret as select * from secret;
create table open (id integer primary key, v text);
create view v_open as select * from open;
"""
WRITE_ONLY = {"databases": {"data": {
    "permissions": {"insert-row": {"id": "alice"}, "create-table": {"id": "alice"},
                    "alter-table": {"id": "alice"}},
    "tables": {"secret": {"permissions": {"view-table": {"id": "root"}}}},
}}}


def test_b08_create_into_a_hidden_table_does_not_echo_its_schema(tmp_path: Path) -> None:
    s = Space(tmp_path, SECRET, permissions=WRITE_ONLY)
    alice = s.token("alice")
    assert s.request("GET", "/data/secret.json", alice).status_code == 403
    r = s.request("POST", "/data/-/create", alice, {"table": "secret", "rows": [{"ssn": "x"}]})
    assert r.status_code == 201, r.text
    assert "schema" not in r.json() and "salary" not in r.text and r.json()["row_count"] == 1
    # ... while a caller who may view the table gets it, as 1.0a41 answers.
    root = s.token("root")
    r = s.request("POST", "/data/-/create", root, {"table": "secret", "rows": [{"ssn": "y"}]})
    assert "check (salary > 0)" in r.json()["schema"]


def test_b08_alter_of_a_hidden_table_does_not_echo_its_schema(tmp_path: Path) -> None:
    s = Space(tmp_path, SECRET, permissions=WRITE_ONLY)
    alice = s.token("alice")
    r = s.request("POST", "/data/secret/-/alter", alice,
                  {"operations": [{"op": "add_column", "args": {"name": "note", "type": "text"}}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "schema" not in body and "before_schema" not in body and "salary" not in r.text
    assert body["operations_applied"] == 1
    r = s.request("POST", "/data/open/-/alter", alice,
                  {"operations": [{"op": "add_column", "args": {"name": "note", "type": "text"}}]})
    assert "note" in r.json()["schema"] and "before_schema" in r.json()


def test_b08_hidden_views_answer_writes_as_missing_tables_do(tmp_path: Path) -> None:
    s = Space(tmp_path, SECRET, permissions=WRITE_ONLY)
    alice = s.token("alice")
    for path in ("/data/v_secret/-/insert", "/data/v_nosuch/-/insert"):
        r = s.request("POST", path, alice, {"row": {"ssn": "x"}})
        assert (r.status_code, r.json()["error"]) == (404, "Table not found"), path
    # A view the caller may view is named, as 1.0a41 names it.
    r = s.request("POST", "/data/v_open/-/insert", alice, {"row": {"v": "x"}})
    assert (r.status_code, r.json()["error"]) == (404, "Table not found: v_open")


# -- B12: no table is created or renamed into SQLite's, Litestream's or lambdasette's names -----

RESERVED = ["_litestream_x", "_LITESTREAM_seq", "_lambdasette_queries", "_Lambdasette_x", "sqlite_x", "SQLITE_x"]


@pytest.mark.parametrize("name", RESERVED)
def test_b12_reserved_names_in_every_write_path(tmp_path: Path, name: str) -> None:
    s = Space(tmp_path, "create table notes(id integer primary key, v text); insert into notes values (1, 'x');")
    root = s.token("root")
    q = name.replace('"', '""')
    attempts = [
        s.request("POST", "/data/-/create", root, {"table": name, "columns": [{"name": "v"}]}),
        s.request("POST", "/data/-/create", root, {"table": name, "rows": [{"v": 1}]}),
        s.request("POST", "/data/notes/-/alter", root, {"operations": [{"op": "rename_table", "args": {"to": name}}]}),
        s.request("POST", "/data/-/execute-write", root, {"sql": f'create table "{q}" (v)'}),
        s.request("POST", "/data/-/execute-write", root, {"sql": f'alter table notes rename to "{q}"'}),
        s.request("POST", "/data/-/execute-write", root, {"sql": f'create view "{q}" as select 1'}),
    ]
    for r in attempts:
        assert r.status_code in (400, 403), r.text
    conn = sqlite3.connect(s.db)
    assert [r[0] for r in conn.execute("select name from sqlite_master where type in ('table', 'view')")] == ["notes"]
    assert s.request("GET", "/data/notes.json", root).json()["rows"] == [[1, "x"]]
