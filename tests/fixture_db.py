"""A small database with the shapes the read API must handle."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def make_fixture_db(path: Path) -> Path:
    conn = sqlite3.connect(str(path))
    with conn:
        conn.executescript(
            """
            CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE dogs (
                id INTEGER PRIMARY KEY, name TEXT, breed TEXT, age INTEGER, weight REAL,
                born TEXT, tags TEXT, owner_id INTEGER REFERENCES owners(id)
            );
            CREATE TABLE compound (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b));
            CREATE TABLE log (msg TEXT, level TEXT);
            CREATE TABLE "table with spaces" (id INTEGER PRIMARY KEY, "a column" TEXT);
            CREATE TABLE "slash/dot.name" (id INTEGER PRIMARY KEY, v TEXT);
            CREATE TABLE odd (id INTEGER PRIMARY KEY, data BLOB, num REAL, doc TEXT);
            CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT);
            CREATE VIRTUAL TABLE docs_fts USING fts5(title, body, content="docs");
            CREATE VIEW old_dogs AS SELECT id, name, age FROM dogs WHERE age > 5;
            """
        )
        conn.executemany("INSERT INTO owners VALUES (?, ?)", [(1, "Ada"), (2, "Grace"), (3, "Alan")])
        breeds = ["Corgi", "Mutt", "Poodle", None]
        dogs = []
        for i in range(1, 31):
            dogs.append((i, f"Dog {i}", breeds[i % 4], i % 12, i * 1.5, f"2020-01-{i % 28 + 1:02d}",
                         '["good", "fluffy"]' if i % 3 == 0 else '["good"]', (i % 3) + 1))
        conn.executemany("INSERT INTO dogs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", dogs)
        conn.executemany("INSERT INTO compound VALUES (?, ?, ?)",
                         [("a", 1, "x"), ("a", 2, "y"), ("b,c", 1, "z"), ("d/e.f", 3, "w")])
        conn.executemany("INSERT INTO log VALUES (?, ?)", [(f"m{i}", "info") for i in range(5)])
        conn.executemany('INSERT INTO "table with spaces" VALUES (?, ?)', [(1, "one"), (2, "two")])
        conn.execute('INSERT INTO "slash/dot.name" VALUES (1, ?)', ("v",))
        conn.executemany("INSERT INTO odd VALUES (?, ?, ?, ?)", [
            (1, b"\x00\xff binary", 1e999, '{"a": [1, 2]}'),
            (2, b"hello", -1e999, "not json"),
            (3, None, None, None),
        ])
        conn.executemany("INSERT INTO docs VALUES (?, ?, ?)", [
            (1, "River walk", "A walk by the river AND the sea"),
            (2, "Mountain", "Up the mountain"),
            (3, "River boat", "Boats on the river"),
        ])
        conn.execute("INSERT INTO docs_fts (rowid, title, body) SELECT id, title, body FROM docs")
    conn.close()
    return path
