"""Writes and exports (issue 13, C): download names, CSV caps, BLOB downloads, insert return
(cases/data/10 and 12 and their siblings)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from .conftest import make_client


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    conn = sqlite3.connect(folder / "data.db")
    conn.executescript('''
        create table "城市" (id integer primary key, name text); insert into "城市" values (1, 'x');
        create table "say ""hi""" (id integer primary key); insert into "say ""hi""" values (1);
        create table files (id integer primary key, name text, content blob);
        insert into files values (1, 'a', x'00ff10'), (2, 'b', NULL), (3, 'c', 'text');
        create table blobkeys (k blob primary key, v blob) without rowid;
        insert into blobkeys values (x'0001', x'cafe');
        create table wide (id integer primary key, body text);
    ''')
    conn.execute("insert into wide values (1, ?), (2, 'short')", ["x" * 500])
    conn.commit()
    conn.close()
    conn = sqlite3.connect(folder / "дані.db")
    conn.execute("create table t (id integer primary key)")
    conn.commit()
    conn.close()
    return folder


@pytest.fixture(scope="module")
def client(folder: Path) -> Iterator[TestClient]:
    with make_client(folder) as c:
        yield c


def disposition_filename(header: str) -> str:
    header.encode("ascii")  # a header value that is not ASCII is not sent as written
    match = re.search(r'filename="((?:[^"\\]|\\.)*)"(;|$)', header)
    assert match, header
    return match.group(1)


@pytest.mark.parametrize("path,name", [
    ("/data/~E5~9F~8E~E5~B8~82.csv?_dl=1", "城市.csv"),
    ("/~D0~B4~D0~B0~D0~BD~D1~96.csv?sql=select+1&_dl=1", "дані.csv"),
    ('/data/say+~22hi~22.csv?_dl=1', 'say "hi".csv'),
    ("/data/files.csv?_dl=1", "files.csv"),
])
def test_download_names_are_valid_headers(client: TestClient, path: str, name: str) -> None:
    # cases/data/10: a name that is not Latin-1 was a 500, a '"' broke the header.
    r = client.get(path)
    assert r.status_code == 200
    header = r.headers["content-disposition"]
    fallback = disposition_filename(header)
    if fallback == name:
        assert header == f'attachment; filename="{name}"'  # Datasette's header, unchanged
    else:
        assert "filename*=UTF-8''" in header
        from urllib.parse import unquote
        assert unquote(header.split("filename*=UTF-8''", 1)[1]) == name


def test_csv_blob_cells_link_to_blob_downloads(client: TestClient) -> None:
    rows = list(csv.reader(io.StringIO(client.get("/data/files.csv").text)))
    link = rows[1][2]
    assert link == "http://localhost/data/files/1.blob?_blob_column=content"
    download = client.get(link)
    assert download.status_code == 200 and download.content == b"\x00\xff\x10"
    assert download.headers["content-type"] == "application/binary"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == 'attachment; filename="files-1-content.blob"'
    assert rows[3][2] == "text"  # text stays text
    # A BLOB key makes a row URL too.
    key_rows = list(csv.reader(io.StringIO(client.get("/data/blobkeys.csv").text)))
    assert client.get(key_rows[1][1]).content == b"\xca\xfe"
    assert client.get(key_rows[1][0]).content == b"\x00\x01"


def test_query_blob_downloads(client: TestClient) -> None:
    text = client.get("/data.csv?sql=select+id,+content+from+files+order+by+id").text
    link = list(csv.reader(io.StringIO(text)))[1][1]
    digest = hashlib.sha256(b"\x00\xff\x10").hexdigest()
    assert link.startswith("http://localhost/data.blob?sql=") and f"_blob_hash={digest}" in link
    r = client.get(link)
    assert r.status_code == 200 and r.content == b"\x00\xff\x10"
    assert r.headers["content-disposition"] == f'attachment; filename="content-{digest[:6]}.blob"'
    assert client.get("/data/files/1.blob").status_code == 400  # ?_blob_column= is required
    assert client.get("/data/files/1.blob?_blob_column=nope").status_code == 400
    assert client.get("/data/files/9.blob?_blob_column=content").status_code == 404
    expired = client.get("/data.blob?sql=select+content+from+files&_blob_column=content&_blob_hash=00")
    assert expired.status_code == 400 and "expired" in expired.json()["error"]
    assert client.get("/data/-/query.blob?sql=select+x'01'+as+b&_blob_column=b").content == b"\x01"


def test_first_row_too_big_still_has_its_header(folder: Path) -> None:
    with make_client(folder, max_response_bytes=100) as c:
        text = c.get("/data/wide.csv?_stream=on").text
        assert text.splitlines() == ["id,body", "CSV contains more than 100 bytes"]


def test_sql_csv_is_capped_too(folder: Path) -> None:
    with make_client(folder, max_response_bytes=100) as c:
        text = c.get("/data.csv?sql=select+*+from+wide").text
        assert text.startswith("id,body\r\n") and text.endswith("CSV contains more than 100 bytes")
        assert len(text.encode()) <= 100 + len("CSV contains more than 100 bytes")


def test_row_csv_downloads(client: TestClient) -> None:
    r = client.get("/data/files/2.csv?_dl=1&_header=off")
    assert r.text == "2,b,\r\n"
    assert r.headers["content-disposition"] == 'attachment; filename="files.csv"'
