"""How SQLite compares the names of tables, views and indexes, for every comparison of such
names the policy makes.

SQLite folds case for ASCII letters only (`sqlite3StrICmp`): `Kpis` and `kpis` name one table,
while `Ünïcode` and `ünïcode` - or `kpis` and `\u212apis` (KELVIN SIGN) - name two. Python's
`str.lower()` folds all of Unicode, so comparing with it would make a token restricted to one
table reach another, and a hidden table hide its Unicode-case twin. Whatever decides about a
table (restrictions, the permissions file, the SQL guard, hidden sets, schema lookups, the
shadow schema) compares `fold(name)`: same table to SQLite, same table to the policy.
"""

from __future__ import annotations

import string

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(name: str) -> str:
    """`name` with ASCII letters lower-cased and nothing else changed: equal for two names
    exactly when SQLite takes them for the same table."""
    if name.isascii():
        return name.lower()  # the common case; for ASCII text identical to the table below
    return name.translate(_ASCII_LOWER)


def same(a: str, b: str) -> bool:
    """Do `a` and `b` name the same table to SQLite?"""
    return fold(a) == fold(b)
