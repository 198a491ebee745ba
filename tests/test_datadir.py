"""What storage never serves (the token store and its companions, however they are reached)
and the lock that keeps one process per data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lambdasette.auth import tokens
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.errors import DatabaseNotFound, DataDirLocked
from lambdasette.storage.datadir import LOCK_NAME, DataDirLock, Protected
from lambdasette.storage.local import LocalStorage

from .test_cli_serve import BIN, free_port, serving, wait_until_answering


def make_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("create table t1 (id integer primary key)")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def space(tmp_path: Path) -> Path:
    """A folder with a database and the token store (with a token in it)."""
    folder = tmp_path / "space"
    folder.mkdir()
    make_db(folder / "data.db")
    tokens.create(LocalTokenStore(folder / "tokens.db"), "alice")
    return folder


# -- the token store is never a database ----------------------------------------------------------

def test_a_served_folder_never_lists_the_store_however_it_is_linked(space: Path, tmp_path: Path) -> None:
    store = space / "tokens.db"
    (space / "alias.db").symlink_to(store)                       # a symlink
    os.link(store, space / "hard.sqlite")                        # a hard link
    journal = Path(f"{store}-journal")
    journal.write_bytes(b"x")
    (space / "journal.db").symlink_to(journal)                   # a link to a companion file
    elsewhere = tmp_path / "linked-space"
    elsewhere.symlink_to(space)                                  # the folder through a link
    (space / ".hidden.db").write_bytes((space / "data.db").read_bytes())  # internal by convention
    for served in (space, elsewhere):
        storage = LocalStorage([served], Protected([store]))
        assert storage.names() == ["data"]
        for name in ("tokens", "alias", "hard", "journal", ".hidden"):
            with pytest.raises(DatabaseNotFound):
                storage.read_connection(name)
            with pytest.raises(DatabaseNotFound):
                storage.write_connection(name)
    # The store given through a link is matched by what it is, not by its name.
    assert LocalStorage([space], Protected([space / "alias.db"])).names() == ["data"]


def test_naming_the_store_as_a_file_is_refused(space: Path) -> None:
    store = space / "tokens.db"
    (space / "alias.db").symlink_to(store)
    for named in (store, space / "alias.db"):
        with pytest.raises(ValueError, match="token store"):
            LocalStorage([space / "data.db", named], Protected([store]))


def test_serve_never_publishes_or_writes_the_store(space: Path) -> None:
    root = subprocess.run([*BIN, "token", "create", "root", "--tokens-db", str(space / "tokens.db")],
                          capture_output=True, text=True, check=True).stdout.strip()
    (space / "alias.db").symlink_to(space / "tokens.db")
    with serving(str(space), "--public", "--tokens-db", str(space / "tokens.db")) as base:
        listed = json.loads(urllib.request.urlopen(base + "/-/databases.json").read())
        assert [d["name"] for d in listed] == ["data"]
        for name in ("tokens", "alias"):
            for path, data in [(f"/{name}.json", None), (f"/{name}/tokens.json", None),
                               (f"/{name}/tokens/-/insert", b'{"row": {"id": "x"}}')]:
                request = urllib.request.Request(base + path, data=data,
                                                 headers={"Authorization": f"Bearer {root}"})
                with pytest.raises(urllib.error.HTTPError) as caught:
                    urllib.request.urlopen(request)
                assert caught.value.code == 404, path
    assert sorted(r.actor for r in LocalTokenStore(space / "tokens.db").list()) == ["alice", "root"]


def test_serve_refuses_the_store_as_a_file_argument(space: Path) -> None:
    result = subprocess.run([*BIN, "serve", str(space / "data.db"), str(space / "tokens.db"),
                             "--tokens-db", str(space / "tokens.db"), "--port", str(free_port())],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "token store" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_replica_database_never_lands_on_the_store(tmp_path: Path) -> None:
    from lambdasette.storage import publish
    from lambdasette.storage.litestream import Replica
    from lambdasette.storage.replicated import ReplicatedStorage

    url = f"file://{tmp_path / 'replica'}"
    publish.push(Replica(url), make_db(tmp_path / "tokens-src.db"), "tokens")
    publish.push(Replica(url), make_db(tmp_path / "data-src.db"), "data")
    data_dir = tmp_path / "copies"
    data_dir.mkdir()
    store = data_dir / "tokens.db"
    tokens.create(LocalTokenStore(store), "alice")
    before = store.read_bytes()
    storage = ReplicatedStorage(Replica(url), data_dir, "read", protected=Protected([store]))
    try:
        assert storage.names() == ["data"]
        with pytest.raises(DatabaseNotFound):
            storage.read_connection("tokens")
        storage.open_all()
    finally:
        storage.close()
    assert store.read_bytes() == before


# -- one process per data directory ---------------------------------------------------------------

def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path / "d")
    with pytest.raises(DataDirLocked, match=str((tmp_path / "d").resolve())):
        DataDirLock(tmp_path / "d")
    with pytest.raises(DataDirLocked):
        DataDirLock(tmp_path / "d" / ".." / "d")  # however the path is spelled
    first.release()
    DataDirLock(tmp_path / "d").release()
    assert (tmp_path / "d" / LOCK_NAME).exists()


def test_a_second_lambda_app_on_one_data_dir_is_refused(tmp_path: Path) -> None:
    from lambdasette.handlers.lambda_app import build

    env = {"LAMBDASETTE_DATA_DIR": str(tmp_path / "data"),
           "LAMBDASETTE_REPLICA_URL": f"file://{tmp_path / 'replica'}"}
    app = build("read", env)
    with pytest.raises(DataDirLocked):
        build("write", env)
    storage = app.app.state.lambdasette.storage
    assert storage.lock.held
    storage.close()
    build("write", env).app.state.lambdasette.storage.close()  # free again


def test_two_processes_on_one_data_dir(tmp_path: Path) -> None:
    """The second `serve --replica-url` on a data directory (and `import run` on it) exits at
    once with one line naming the directory; once the first ends, however it ends, the
    directory is free again."""
    replica = f"file://{tmp_path / 'replica'}"
    subprocess.run([*BIN, "db", "push", str(make_db(tmp_path / "data.db")), "--replica-url", replica],
                   check=True, capture_output=True)
    data_dir = tmp_path / "copies"
    common = ["--replica-url", replica, "--data-dir", str(data_dir), "--tokens-db", str(tmp_path / "tokens.db")]
    port = free_port()
    first = subprocess.Popen([*BIN, "serve", "--role", "write", "--port", str(port), *common],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answering(port, first, timeout=60)
        for args in (["serve", "--role", "read", "--public", "--port", str(free_port()), *common],
                     ["serve", "--port", str(free_port()), *common]):
            started = time.monotonic()
            second = subprocess.run([*BIN, *args], capture_output=True, text=True, timeout=60)
            assert second.returncode == 2
            assert time.monotonic() - started < 10  # at once: before any restore or wait
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and str(data_dir.resolve()) in lines[0], second.stderr
        definition = tmp_path / "import.yml"
        definition.write_text("name: x\nsource: {type: json, url: 'http://127.0.0.1:9/x'}\n"
                              "target: {database: data, table: t, pk: id}\n")
        imported = subprocess.run([*BIN, "import", "run", str(definition), "--replica-url", replica,
                                   "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
        assert imported.returncode == 2 and str(data_dir.resolve()) in imported.stderr
    finally:
        first.kill()  # even kill -9 frees the directory: the kernel drops the flock
        first.wait(20)
    DataDirLock(data_dir).release()
