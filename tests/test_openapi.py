"""`/-/openapi.json`: a valid OpenAPI 3.1 document of the API as the caller may use it - and
nothing the caller may not see - and `/-/api`, the explorer that renders it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage

from .test_pages import BROWSER, HOSTILE_DB, SCRIPT, assert_safe_page, hostile_db


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory, fixture_path: Path) -> Iterator[tuple[TestClient, dict]]:
    folder = tmp_path_factory.mktemp("openapi")
    store = LocalTokenStore(folder / "tokens.db")
    # bob may not see `owners` at all.
    policy = Policy.parse({"databases": {"fixtures": {"tables": {"owners": {"permissions": {
        "view-table": {"id": "root"}}}}}}})
    ds = Lambdasette(storage=LocalStorage([fixture_path, hostile_db(folder)]), options=Options(public=True),
                     tokens=store, policy=policy)
    who = {
        "root": tokens.create(store, "root")[0],
        "bob": tokens.create(store, "bob")[0],
        "dogs": tokens.create(store, "alice", {"r": {"fixtures": {"dogs": ["vt"]}}})[0],
    }
    with TestClient(create_app(ds)) as c:
        yield c, who


def document(c: TestClient, token: str | None) -> dict[str, Any]:
    r = c.get("/-/openapi.json", headers={"Authorization": f"Bearer {token}"} if token else {})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


@pytest.fixture(scope="module")
def documents(instance) -> dict[str, dict[str, Any]]:
    c, who = instance
    return {"anonymous": document(c, None), **{name: document(c, token) for name, token in who.items()}}


def test_every_document_is_valid_openapi_3_1(documents) -> None:
    from openapi_spec_validator import validate  # ~0.5-1 s to import: only here

    for name, doc in documents.items():
        assert doc["openapi"] == "3.1.0"
        validate(doc)  # also: unique operationIds, every $ref resolves, path parameters declared
        text = json.dumps(doc)
        assert '"nullable"' not in text, f"{name}: 3.0's nullable is not 3.1"


def test_root_sees_every_table_and_every_write(documents) -> None:
    paths = documents["root"]["paths"]
    for path in ["/fixtures.json", "/fixtures/-/query.json", "/fixtures/-/create", "/fixtures/dogs.json",
                 "/fixtures/dogs.csv", "/fixtures/dogs/{pk}.json", "/fixtures/dogs/-/insert",
                 "/fixtures/dogs/-/upsert", "/fixtures/dogs/{pk}/-/update", "/fixtures/dogs/{pk}/-/delete",
                 "/fixtures/dogs/-/drop", "/fixtures/dogs/-/alter", "/fixtures/owners.json",
                 "/fixtures/table+with+spaces.json", "/fixtures/slash~2Fdot~2Ename.json",
                 "/-/api/tokens", "/-/api/tokens/{token_id}", "/-/api/tokens/{token_id}/-/revoke"]:
        assert path in paths, path
    # Datasette 1.0a41's endpoints, as main has them.
    for path in ["/fixtures/-/execute-write", "/fixtures/-/execute-write/analyze", "/fixtures/-/queries/store",
                 "/fixtures/-/queries.json", "/-/queries.json", "/fixtures/-/schema.json", "/-/schema.json",
                 "/-/actions.json", "/fixtures/dogs/-/count", "/fixtures/dogs/-/set-column-type"]:
        assert path in paths, path
    assert any(p.get("$ref", "").endswith("/extra_table") for p in paths["/fixtures/dogs.json"]["get"]["parameters"])
    assert "/fixtures/old_dogs/-/insert" not in paths  # a view is not writable
    assert "/fixtures/docs_fts.json" not in paths  # FTS index tables are hidden
    # Rows are typed from the columns.
    read = paths["/fixtures/dogs.json"]["get"]
    schemas = documents["root"]["components"]["schemas"]
    dog = schemas["fixtures.dogs.Row"]["properties"]
    assert dog["id"]["type"] == ["integer", "null"] and dog["weight"]["type"] == ["number", "null"]
    assert dog["name"]["type"] == ["string", "null"]
    assert schemas["fixtures.owners.Row"]["properties"]["name"]["type"] == ["string"]  # NOT NULL
    insert = paths["/fixtures/dogs/-/insert"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert insert["properties"]["rows"]["maxItems"] == 100
    read = paths["/fixtures/dogs.json"]["get"]
    names = {p.get("name") for p in read["parameters"]} | {p["$ref"].rsplit("/", 1)[1]
                                                           for p in read["parameters"] if "$ref" in p}
    assert {"breed", "age", "size", "next", "sort", "shape", "facet", "filters"} <= names
    assert "search" in {p["$ref"].rsplit("/", 1)[1] for p in paths["/fixtures/docs.json"]["get"]["parameters"]
                        if "$ref" in p}


def test_only_what_the_caller_may_see(documents) -> None:
    bob = json.dumps(documents["bob"])
    assert "owners" not in bob  # not its paths, not its schema, not a foreign key
    assert "/fixtures/dogs.json" in documents["bob"]["paths"]
    assert "/fixtures/dogs/-/insert" not in documents["bob"]["paths"]  # bob may only read
    assert "/-/api/tokens" not in documents["bob"]["paths"]  # nor manage tokens
    dogs = documents["dogs"]["paths"]
    assert set(dogs) == {"/-/actor.json", "/-/openapi.json", "/fixtures/dogs.json", "/fixtures/dogs.csv",
                         "/fixtures/dogs/{pk}.json", "/fixtures/dogs/-/schema.json", "/fixtures/dogs/-/count"}
    anonymous = documents["anonymous"]["paths"]
    assert "/fixtures/dogs.json" in anonymous and not [p for p in anonymous if "/-/insert" in p]
    assert documents["anonymous"]["security"] == [{"bearer": []}, {}]


def test_markup_in_names_stays_data(documents) -> None:
    doc = documents["root"]
    encoded = "/~22~27~3E~3Cimg+src~3Dx~3E/~3Cscript~3Ealert~281~29~3C~2Fscript~3E.json"
    assert encoded in doc["paths"]
    assert any(t["name"] == f"{HOSTILE_DB}: {SCRIPT}" for t in doc["tags"])  # JSON, never HTML


def descriptions(node: Any) -> Iterator[str]:
    """Every Markdown field of the document (Swagger UI renders `description` as Markdown)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from descriptions(value)
    elif isinstance(node, list):
        for item in node:
            yield from descriptions(item)


def test_names_in_markdown_fields_are_literal_text(documents) -> None:
    """Names are callers' data (create-table): in a Markdown field no tag, link or image may
    form - Swagger UI keeps <a>, <img> and <input> through its sanitiser."""
    import re

    texts = list(descriptions(documents["root"]))
    assert any("img src" in t for t in texts)  # the hostile names are there...
    for text in texts:  # ...but never as markup: outside code (literal), each '<' and '[' escaped
        prose = re.sub(r"`[^`]*`", "", re.sub(r"(`{3,})sql\n.*?\n\1", "", text, flags=re.S))
        assert not re.search(r"(?<!\\)[<\[]", prose), text


def test_stored_query_text_cannot_leave_its_block(tmp_path: Path) -> None:
    from lambdasette.endpoints.openapi import md, md_code_block

    assert md("[sign in](https://evil.example) <img src=x>\n# Heading") == (
        "\\[sign in\\]\\(https\\:\\/\\/evil\\.example\\) \\<img src\\=x\\> \\# Heading")
    block = md_code_block("select 1 -- ```\n<a href=x>y</a>")
    fence = block.split("sql", 1)[0]
    assert fence == "````" and block.endswith("\n````") and block.count("````") == 2


def test_every_listed_read_answers(instance, documents) -> None:
    c, who = instance
    for path, operations in documents["root"]["paths"].items():
        if "get" not in operations or "{" in path:
            continue
        r = c.get(path + ("?sql=select+1" if path.endswith(("/-/query.json", "/analyze")) else ""),
                  headers={"Authorization": f"Bearer {who['root']}"})
        assert r.status_code == 200, (path, r.text[:200])


def test_the_explorer_page(instance) -> None:
    c, who = instance
    r = c.get("/-/api", headers=BROWSER)
    assert_safe_page(r)
    assert 'src="/-/static/swagger-ui-5.35.0/swagger-ui-bundle.js?v=' in r.text
    assert 'src="/-/static/explorer.js?v=' in r.text and 'data-spec="/-/openapi.json"' in r.text
    assert c.get("/-/static/swagger-ui-5.35.0/LICENSE").status_code == 200
