"""Datasette's permission actions, their abbreviations, and token restrictions (`_r`)."""

from __future__ import annotations

from typing import Any

ABBREVIATIONS = {
    "vi": "view-instance",
    "vd": "view-database",
    "vdd": "view-database-download",
    "vt": "view-table",
    "vq": "view-query",
    "es": "execute-sql",
    "ews": "execute-write-sql",
    "ir": "insert-row",
    "dr": "delete-row",
    "ur": "update-row",
    "ct": "create-table",
    "at": "alter-table",
    "dt": "drop-table",
    "pd": "permissions-debug",
    "ctk": "create-token",
}
ACTIONS = frozenset(ABBREVIATIONS.values())


def full_action(name: str) -> str:
    """The full action name for a name or an abbreviation; ValueError if unknown."""
    action = ABBREVIATIONS.get(name, name)
    if action not in ACTIONS:
        raise ValueError(f"Unknown action: {shown_name(name)}")
    return action


def shown_name(name: str) -> str:
    """`name` safe to put in a message: lone surrogates (which cannot be encoded) escaped."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _name(name: Any, what: str) -> str:
    """A database or table name in restrictions: text that SQLite and every store can hold."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} names must be non-empty strings")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} name {shown_name(name)} is not valid Unicode text") from None
    if "\x00" in name:
        raise ValueError(f"{what} names cannot contain NUL characters")
    return name


def normalize_restrictions(raw: Any) -> dict[str, Any]:
    """Validate Datasette's {"a": [...], "d": {db: [...]}, "r": {db: {table: [...]}}} shape."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - {"a", "d", "r"}:
        raise ValueError('restrictions must be an object with only "a", "d" and "r" keys')
    out: dict[str, Any] = {}
    if "a" in raw:
        if not isinstance(raw["a"], list):
            raise ValueError('"a" must be a list of actions')
        out["a"] = sorted({full_action(str(a)) for a in raw["a"]})
    if "d" in raw:
        if not isinstance(raw["d"], dict) or not all(isinstance(v, list) for v in raw["d"].values()):
            raise ValueError('"d" must map database names to lists of actions')
        out["d"] = {_name(db, "Database"): sorted({full_action(str(a)) for a in acts})
                    for db, acts in raw["d"].items()}
    if "r" in raw:
        tables = raw["r"]
        if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
            raise ValueError('"r" must map database names to {table: [actions]}')
        out["r"] = {}
        for db, per_table in tables.items():
            if not all(isinstance(v, list) for v in per_table.values()):
                raise ValueError('"r" must map database names to {table: [actions]}')
            out["r"][_name(db, "Database")] = {_name(t, "Table"): sorted({full_action(str(a)) for a in acts})
                                               for t, acts in per_table.items()}
    return out


def restrictions_allow(
    restrictions: dict[str, Any] | None, action: str, database: str | None, table: str | None
) -> bool:
    """An allowlist: the action must be granted globally, for the database, or for the table."""
    if not restrictions:
        return True
    if action in restrictions.get("a", ()):
        return True
    if database is not None and action in restrictions.get("d", {}).get(database, ()):
        return True
    if database is not None and table is not None:
        per_table = restrictions.get("r", {}).get(database, {})
        for name, actions in per_table.items():
            if name.lower() == table.lower() and action in actions:
                return True
    return False


def restrictions_within(inner: dict[str, Any], outer: dict[str, Any] | None) -> list[str]:
    """What `inner` grants that `outer` does not (empty when inner is no wider than outer).
    An empty `inner` means "no restrictions": within `outer` only if outer is unrestricted."""
    if not outer:
        return []
    if not inner:
        return ["everything (no restrictions)"]
    wider = [a for a in inner.get("a", []) if not restrictions_allow(outer, a, None, None)]
    for db, actions in inner.get("d", {}).items():
        wider += [f"{a} on {db}" for a in actions if not restrictions_allow(outer, a, db, None)]
    for db, tables in inner.get("r", {}).items():
        for table, actions in tables.items():
            wider += [f"{a} on {db}/{table}" for a in actions
                      if not restrictions_allow(outer, a, db, table)]
    return wider
