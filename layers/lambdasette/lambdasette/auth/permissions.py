"""Who may do what: root, the permissions file, public reads, then token restrictions.

A permissions file (JSON or YAML) grants actions at three levels, like Datasette 1.0's
`permissions:` blocks::

    permissions:                # the whole instance
      create-token: {id: alice}
    databases:
      data:
        permissions:            # every table of `data`
          insert-row: {id: [alice, bob]}
        tables:
          dogs:
            permissions:        # just `dogs`
              view-table: {id: "*"}

A block is an *allow block*: `true`, `false`, `{}` (nobody), `{"id": "alice"}`,
`{"id": ["a", "b"]}`, `{"id": "*"}` (any signed-in actor), `{"unauthenticated": true}`
(anonymous callers); several keys are OR-ed. The most specific level that has a block for an
action decides it: callers the block matches are allowed there, everyone else is denied there.
With no block at any level, the defaults apply: signed-in actors may read (view actions and
`execute-sql`), anonymous callers may read only when the instance is public, and nobody but
`root` may write. Seeing cascades as in Datasette 0.65: with no block for `view-table` (or
`view-query`) the table's database decides through `view-database`, and with none for that, the
instance through `view-instance`. A token's restrictions then narrow the answer; they never
widen it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdasette.auth.actions import BY_NAME, full_action, restrictions_allow
from lambdasette.names import fold

READ_ACTIONS = frozenset(
    {"view-instance", "view-database", "view-database-download", "view-table", "view-query",
     "execute-sql"}
)
# Datasette's `also_requires`: running SQL on a database needs seeing that database, storing
# a query needs running SQL, and so on.
ALSO_REQUIRES = {name: action.also_requires for name, action in BY_NAME.items() if action.also_requires}
# Seeing is decided by the closest level that speaks to it, as Datasette 0.65 checks a table page
# with [view-table, view-database, view-instance] (the first answer that is not None wins): a
# table without its own view-table block is visible exactly when its database is, and a database
# without a view-database block when the instance is. Without this a database hidden with
# view-database still answered for its tables, and was listed by what enumerates tables.
VISIBILITY_PARENT = {"view-table": "view-database", "view-query": "view-database",
                     "view-database": "view-instance"}
ROOT = "root"


def actor_matches(block: Any, actor: dict[str, Any] | None) -> bool:
    if isinstance(block, bool):
        return block
    if not isinstance(block, dict):
        return False
    if actor is None:
        return bool(block.get("unauthenticated"))
    for key, wanted in block.items():
        if key == "unauthenticated":
            continue
        have = actor.get(key)
        if have is None:
            continue
        wanted_values = wanted if isinstance(wanted, list) else [wanted]
        have_values = have if isinstance(have, list) else [have]
        if "*" in wanted_values or any(str(v) in map(str, wanted_values) for v in have_values):
            return True
    return False


def _blocks(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: permissions must map action names to allow blocks")
    out = {}
    for action, block in raw.items():
        if not isinstance(block, (bool, dict)):
            raise ValueError(f"{where}: the block for {action} must be true, false or an object")
        out[full_action(str(action))] = block
    return out


@dataclass
class Policy:
    """The permissions file, parsed: action blocks per level."""

    instance: dict[str, Any] = field(default_factory=dict)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (database, folded table name): SQLite takes `Secret` and `secret` for one table, so
    # the file's rule for either is that table's rule (`names.fold`: ASCII case only).
    tables: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any) -> Policy:
        if raw is None:
            return cls()
        if not isinstance(raw, dict) or set(raw) - {"permissions", "databases"}:
            raise ValueError('a permissions file has only "permissions" and "databases" keys')
        policy = cls(instance=_blocks(raw.get("permissions"), "permissions"))
        databases = raw.get("databases") or {}
        if not isinstance(databases, dict):
            raise ValueError('"databases" must map database names to objects')
        for db, config in databases.items():
            if not isinstance(config, dict) or set(config) - {"permissions", "tables"}:
                raise ValueError(f'databases.{db} has only "permissions" and "tables" keys')
            policy.databases[db] = _blocks(config.get("permissions"), f"databases.{db}")
            for table, tconfig in (config.get("tables") or {}).items():
                if not isinstance(tconfig, dict) or set(tconfig) - {"permissions"}:
                    raise ValueError(f'databases.{db}.tables.{table} has only a "permissions" key')
                if (db, fold(str(table))) in policy.tables:
                    raise ValueError(f"databases.{db}.tables: {table} names a table named before "
                                     "(SQLite compares table names ignoring ASCII case)")
                policy.tables[(db, fold(str(table)))] = _blocks(
                    tconfig.get("permissions"), f"databases.{db}.tables.{table}"
                )
        return policy

    @classmethod
    def load(cls, path: Path | None) -> Policy:
        if path is None:
            return cls()
        from lambdasette.metadata import load_document

        return cls.parse(load_document(path))

    def has_table_rules(self, database: str) -> bool:
        """Could two tables of `database` get different view-table answers?"""
        return any(db == database and "view-table" in blocks for (db, _), blocks in self.tables.items())

    def decide(self, actor: dict[str, Any] | None, action: str, database: str | None,
               table: str | None) -> bool | None:
        """The most specific block's answer, or None when no block speaks to the action."""
        if database is not None and table is not None:
            block = self.tables.get((database, fold(table)), {}).get(action)
            if block is not None:
                return actor_matches(block, actor)
        if database is not None:
            block = self.databases.get(database, {}).get(action)
            if block is not None:
                return actor_matches(block, actor)
        block = self.instance.get(action)
        if block is not None:
            return actor_matches(block, actor)
        return None


def allowed(policy: Policy, public: bool, actor: dict[str, Any] | None, action: str,
            database: str | None = None, table: str | None = None) -> bool:
    """May `actor` do `action` on the database/table? Restrictions in `actor["_r"]` narrow it."""
    if actor is not None and not restrictions_allow(actor.get("_r"), action, database, table):
        return False
    if actor is not None and actor.get("id") == ROOT:
        granted = True
    else:
        decision = policy.decide(actor, action, database, table)
        asked = action
        while decision is None and asked in VISIBILITY_PARENT:
            asked = VISIBILITY_PARENT[asked]
            decision = policy.decide(actor, asked, None if asked == "view-instance" else database, None)
        if decision is None:
            decision = action in READ_ACTIONS and (actor is not None or public)
        granted = decision
    required = ALSO_REQUIRES.get(action)
    if granted and required is not None:
        return allowed(policy, public, actor, required, database)
    return granted
