import pytest

from lambdasette.tilde import tilde_decode, tilde_encode
from lambdasette.web.routing import decode_segment, resolve


@pytest.mark.parametrize("raw,encoded", [
    ("table with spaces", "table+with+spaces"),
    ("one/two", "one~2Ftwo"),
    ("three.four", "three~2Efour"),
    ("b,c", "b~2Cc"),
    ("~tilde", "~7Etilde"),
    ("ünï", "~C3~BCn~C3~AF"),
])
def test_round_trip(raw: str, encoded: str) -> None:
    assert tilde_encode(raw) == encoded
    assert tilde_decode(encoded) == raw
    assert decode_segment(encoded) == raw


def test_percent_encoding_is_accepted_too() -> None:
    assert decode_segment("hello%20world") == "hello world"
    assert decode_segment("plus%2Bsign") == "plus+sign"
    assert decode_segment("table~20with~20spaces") == "table with spaces"


def test_resolve_shapes() -> None:
    assert resolve("/").kind == "index"
    assert resolve("/.json").kind == "index"
    t = resolve("/db/compound/b~2Cc,1.json")
    assert (t.kind, t.database, t.table, t.pk, t.format) == ("row", "db", "compound", ["b,c", "1"], "json")
    t = resolve("/db/slash~2Fdot~2Ename.csv")
    assert (t.kind, t.table, t.format) == ("table", "slash/dot.name", "csv")
    t = resolve("/db/-/query.json")
    assert (t.kind, t.action) == ("database-action", "query")
    t = resolve("/db/t/-/insert")
    assert (t.kind, t.action) == ("table-action", "insert")
