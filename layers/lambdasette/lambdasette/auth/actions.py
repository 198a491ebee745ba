"""Datasette's permission actions, their abbreviations, and token restrictions (`_r`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdasette.names import fold

# Every action Datasette 1.0a41 knows, with its abbreviation (what restrictions may store),
# plus lambdasette's own `create-token`. 1.0a41's `/-/actions.json` lists Datasette's.
ABBREVIATIONS = {
    "vi": "view-instance",
    "vd": "view-database",
    "vdd": "view-database-download",
    "vt": "view-table",
    "vq": "view-query",
    "es": "execute-sql",
    "ews": "execute-write-sql",
    "sq": "store-query",
    "uq": "update-query",
    "dq": "delete-query",
    "ir": "insert-row",
    "dr": "delete-row",
    "ur": "update-row",
    "ct": "create-table",
    "cv": "create-view",
    "at": "alter-table",
    "sct": "set-column-type",
    "dt": "drop-table",
    "dv": "drop-view",
    "pd": "permissions-debug",
    "dm": "debug-menu",
    "ctk": "create-token",
}
ACTIONS = frozenset(ABBREVIATIONS.values())


@dataclass(frozen=True)
class Action:
    """One action as Datasette 1.0a41 registers it: `resource` is what it applies to
    (None: the instance; "database"; "table", which covers views; "query"), `also_requires`
    the action it implies a need for."""

    name: str
    abbr: str
    description: str
    resource: str | None = None
    also_requires: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry 1.0a41's `/-/actions.json` gives."""
        classes = {"database": "DatabaseResource", "table": "TableResource", "query": "QueryResource"}
        return {
            "name": self.name,
            "abbr": self.abbr,
            "description": self.description,
            "takes_parent": self.resource is not None,
            "takes_child": self.resource in ("table", "query"),
            "resource_class": classes.get(self.resource or ""),
            "also_requires": self.also_requires,
        }


# Datasette 1.0a41's registry (`datasette/default_actions.py`), then lambdasette's own.
REGISTRY: tuple[Action, ...] = (
    Action("view-instance", "vi", "View Datasette instance"),
    Action("permissions-debug", "pd", "Access permission debug tool"),
    Action("debug-menu", "dm", "View debug menu items"),
    Action("view-database", "vd", "View database", "database"),
    Action("view-database-download", "vdd", "Download database file", "database", "view-database"),
    Action("execute-sql", "es", "Execute read-only SQL queries", "database", "view-database"),
    Action("execute-write-sql", "ews", "Execute writable SQL queries", "database", "view-database"),
    Action("create-table", "ct", "Create tables", "database"),
    Action("create-view", "cv", "Create views", "database"),
    Action("store-query", "sq", "Create stored queries", "database", "execute-sql"),
    Action("view-table", "vt", "View table", "table"),
    Action("insert-row", "ir", "Insert rows", "table"),
    Action("delete-row", "dr", "Delete rows", "table"),
    Action("update-row", "ur", "Update rows", "table"),
    Action("alter-table", "at", "Alter tables", "table"),
    Action("set-column-type", "sct", "Set column type", "table"),
    Action("drop-table", "dt", "Drop tables", "table"),
    Action("drop-view", "dv", "Drop views", "table"),
    Action("view-query", "vq", "View named query results", "query"),
    Action("update-query", "uq", "Update stored queries", "query"),
    Action("delete-query", "dq", "Delete stored queries", "query"),
)
LAMBDASETTE_ACTIONS: tuple[Action, ...] = (
    Action("create-token", "ctk", "Create API tokens (the token API)"),
)
BY_NAME = {action.name: action for action in REGISTRY + LAMBDASETTE_ACTIONS}


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
        # Table names as SQLite compares them (`names.fold`: ASCII case only): a restriction
        # to `kpis` is one to `KPIS`, never to `\u212apis` (KELVIN SIGN), another table.
        per_table = restrictions.get("r", {}).get(database, {})
        folded = fold(table)
        for name, actions in per_table.items():
            if action in actions and fold(name) == folded:
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


def actions_at(level: str, *, view: bool = False) -> list[str]:
    """The actions a token's restrictions can grant at `level`, in the registry's order (the
    tokens page offers exactly these checkboxes): every action at "instance" (`"a"`); at a
    "database" (`"d"`) those that take a database, a table or a query; at a "table" (`"r"`)
    those that take a table - for a `view`, only viewing and dropping it."""
    actions = REGISTRY + LAMBDASETTE_ACTIONS
    if level == "instance":
        return [a.name for a in actions]
    if level == "database":
        return [a.name for a in actions if a.resource is not None]
    if view:
        return ["view-table", "drop-view"]
    return [a.name for a in actions if a.resource == "table" and a.name != "drop-view"]
