"""The demo database `lambdasette serve` creates when given no files."""

from __future__ import annotations

import datetime
import json
import random
import sqlite3
from pathlib import Path

CITIES = [
    ("lon", "London", "GB"), ("par", "Paris", "FR"), ("ber", "Berlin", "DE"),
    ("nyc", "New York", "US"), ("sfo", "San Francisco", "US"), ("tyo", "Tokyo", "JP"),
    ("syd", "Sydney", "AU"), ("lag", "Lagos", "NG"),
]
SPECIES = ["oak", "plane", "lime", "birch", "cherry", "maple", "ash", "willow"]
WORDS = ("river garden market winter summer beacon archive copper falcon meadow "
         "harbor signal orbit crystal canyon prairie willow ember quartz velvet").split()


def create_demo(path: Path, rows: int = 2500) -> Path:
    """Creates `path` (once) with tables that exercise the whole read API."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    conn = sqlite3.connect(str(path))
    with conn:
        conn.executescript(
            """
            CREATE TABLE cities (code TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT);
            CREATE TABLE species (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE trees (
                id INTEGER PRIMARY KEY,
                city_code TEXT REFERENCES cities(code),
                species_id INTEGER REFERENCES species(id),
                planted TEXT,
                height_m REAL,
                tags TEXT,
                details TEXT
            );
            CREATE TABLE notes (title TEXT, body TEXT, created TEXT);
            CREATE VIRTUAL TABLE notes_fts USING fts5(title, body, content="notes");
            CREATE VIEW tall_trees AS SELECT id, city_code, height_m FROM trees WHERE height_m > 20;
            """
        )
        conn.executemany("INSERT INTO cities VALUES (?, ?, ?)", CITIES)
        conn.executemany("INSERT INTO species (name) VALUES (?)", [(s,) for s in SPECIES])
        start = datetime.date(2015, 1, 1)
        trees = []
        for i in range(1, rows + 1):
            planted = start + datetime.timedelta(days=rng.randrange(0, 3650))
            tags = rng.sample(["shade", "fruit", "native", "heritage", "young"], rng.randrange(0, 3))
            details = {"girth_cm": rng.randrange(20, 400), "protected": rng.random() < 0.1}
            trees.append((i, rng.choice(CITIES)[0], rng.randrange(1, len(SPECIES) + 1),
                          planted.isoformat(), round(rng.uniform(1, 35), 1), json.dumps(tags),
                          json.dumps(details)))
        conn.executemany("INSERT INTO trees VALUES (?, ?, ?, ?, ?, ?, ?)", trees)
        notes = []
        for i in range(200):
            title = " ".join(rng.sample(WORDS, 3)).capitalize()
            body = " ".join(rng.choice(WORDS) for _ in range(30))
            notes.append((title, body, (start + datetime.timedelta(days=i * 7)).isoformat()))
        conn.executemany("INSERT INTO notes VALUES (?, ?, ?)", notes)
        conn.execute("INSERT INTO notes_fts (rowid, title, body) SELECT rowid, title, body FROM notes")
    conn.close()
    return path
