"""The `lambdasette` command: serve locally, manage tokens, databases and imports."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lambdasette", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="Serve SQLite files (or a demo database) on HTTP")
    serve.add_argument("files", nargs="*", type=Path, help="SQLite files or folders of them")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--cors", action="store_true", help="Send CORS headers")
    serve.add_argument("--public", action="store_true", help="Let anonymous callers read")
    serve.add_argument("--setting", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    serve.add_argument("--metadata", type=Path, help="Datasette metadata file (JSON or YAML)")
    serve.add_argument("--permissions", type=Path,
                       help="Permissions file (JSON or YAML) granting actions to actors")
    serve.add_argument("--root", action="store_true",
                       help="Print a new token for the root actor, who may do everything")
    serve.add_argument("--replica-url", metavar="URL",
                       help="Serve the databases of this Litestream replica: s3://BUCKET/PREFIX"
                            "?endpoint=...&region=... or file:///DIR (files given are pushed to it)")
    serve.add_argument("--role", choices=["all", "read", "write"], default="all",
                       help="Serve reads, writes or both, like the read and write functions")
    serve.add_argument("--data-dir", type=Path, default=Path(".lambdasette/copies"),
                       help="Where local copies of replicated databases live")
    serve.add_argument("--demo-dir", type=Path, default=Path(".lambdasette"),
                       help="Where the demo database is created when no files are given")

    token = sub.add_parser("token", help="Create, list and revoke API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="Create a token for ACTOR and print it (shown once)")
    create.add_argument("actor")
    create.add_argument("-a", "--all", dest="all_actions", action="append", default=[],
                        metavar="ACTION", help="Allow ACTION everywhere")
    create.add_argument("-d", "--database", nargs=2, action="append", default=[],
                        metavar=("DB", "ACTION"), help="Allow ACTION on database DB")
    create.add_argument("-r", "--resource", nargs=3, action="append", default=[],
                        metavar=("DB", "TABLE", "ACTION"), help="Allow ACTION on DB/TABLE")
    create.add_argument("-e", "--expires-after", type=int, metavar="SECONDS")
    listing = token_sub.add_parser("list", help="List tokens (never their secrets)")
    listing.add_argument("--actor")
    revoke = token_sub.add_parser("revoke", help="Revoke a token by id")
    revoke.add_argument("id")
    db = sub.add_parser("db", help="Push databases to a replica, pull them back, list them")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    push = db_sub.add_parser("push", help="Publish a SQLite file as a new replicated database")
    push.add_argument("file", type=Path)
    push.add_argument("--name", help="Database name (default: the file's name without extension)")
    pull = db_sub.add_parser("pull", help="Restore a replicated database to a file")
    pull.add_argument("name")
    pull.add_argument("--output", "-o", type=Path, required=True)
    pull.add_argument("--timestamp", help="Restore as of this time (RFC 3339, e.g. 2026-11-22T10:00:00Z)")
    db_list = db_sub.add_parser("list", help="List the replica's databases")
    for p in (push, pull, db_list):
        p.add_argument("--replica-url", required=True, metavar="URL")

    imports = sub.add_parser("import", help="Run scheduled-import definitions locally, list them")
    import_sub = imports.add_subparsers(dest="import_command", required=True)
    import_run = import_sub.add_parser("run", help="Run one import definition now, with progress")
    import_run.add_argument("definition", type=Path, help="A definition file (YAML or JSON)")
    import_run.add_argument("databases", nargs="*", type=Path,
                            help="SQLite files or folders holding the target")
    import_run.add_argument("--replica-url", metavar="URL", help="Write to this replica instead")
    import_run.add_argument("--data-dir", type=Path, default=Path(".lambdasette/copies"))
    import_run.add_argument("--today", type=datetime.date.fromisoformat, help="Date for {today} (YYYY-MM-DD)")
    import_list = import_sub.add_parser("list", help="Show definitions and their last runs")
    import_list.add_argument("databases", nargs="*", type=Path,
                             help="SQLite files or folders with run records")
    import_list.add_argument("--dir", type=Path, default=Path("functions/importer/imports"))

    for p in (serve, create, listing, revoke):
        p.add_argument("--tokens-db", type=Path, default=Path(".lambdasette/tokens.db"),
                       help="SQLite file for API tokens (default: %(default)s)")
        p.add_argument("--tokens-table", metavar="NAME", default=os.environ.get("LAMBDASETTE_TOKENS_TABLE"),
                       help="Keep tokens in this DynamoDB table instead (default: $LAMBDASETTE_TOKENS_TABLE;"
                            " AWS credentials from the environment)")
    return parser


def token_command(options: argparse.Namespace) -> int:
    import json

    from lambdasette.auth import tokens

    store = tokens.open_store(table=options.tokens_table, path=options.tokens_db)
    assert store is not None
    if options.token_command == "create":
        restrictions: dict = {}
        if options.all_actions:
            restrictions["a"] = options.all_actions
        for db, action in options.database:
            restrictions.setdefault("d", {}).setdefault(db, []).append(action)
        for db, table, action in options.resource:
            restrictions.setdefault("r", {}).setdefault(db, {}).setdefault(table, []).append(action)
        try:
            token, _ = tokens.create(store, options.actor, restrictions or None, options.expires_after)
        except ValueError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        print(token)
        return 0
    if options.token_command == "list":
        for record in store.list(options.actor):
            print(json.dumps(record.public()))
        return 0
    if not store.revoke(options.id):
        print(f"Error: no token with id {options.id}", file=sys.stderr)
        return 1
    print(f"Revoked {options.id}")
    return 0


def db_command(options: argparse.Namespace) -> int:
    from lambdasette.errors import ReplicaUnavailable
    from lambdasette.storage import publish
    from lambdasette.storage.litestream import Replica

    try:
        replica = Replica(options.replica_url)
        if options.db_command == "push":
            name = options.name or options.file.stem
            txid = publish.push(replica, options.file, name, progress=publish.bar)
            print(f"Pushed {options.file} as {name} (transaction {txid})")
        elif options.db_command == "pull":
            publish.pull(replica, options.name, options.output, options.timestamp)
            print(f"Restored {options.name} to {options.output}")
        else:
            for name in replica.names():
                print(name)
    except (ValueError, ReplicaUnavailable, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


def import_command(options: argparse.Namespace) -> int:
    import sqlite3

    from lambdasette import imports

    if options.import_command == "list":
        try:
            definitions = imports.load_definitions(options.dir)
        except ValueError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        files = [f for p in options.databases for f in ([p] if p.is_file() else sorted(p.glob("*.db")))]
        for d in definitions:
            print(f"{d.name}: {d.source_type} {', '.join(d.urls)} -> {d.database}/{d.table} "
                  f"({d.mode}, pk {d.pk}); schedule {d.schedule or '-'}")
            for path in files:
                if path.stem != d.database:
                    continue
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                for r in imports.last_runs(conn, d.name):
                    print(f"    {r['started']}  {r['status']:5}  pages {r['pages']}  rows {r['rows_written']}"
                          f"  {r['duration_s']} s" + (f"  {r['error']}" if r.get("error") else ""))
                conn.close()
        return 0
    from lambdasette.instance import Lambdasette, Options
    from lambdasette.storage.local import LocalStorage

    try:
        definition = imports.load_definition(options.definition)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if options.replica_url:
        from lambdasette.errors import DataDirLocked
        from lambdasette.settings import Settings
        from lambdasette.storage.replicated import ReplicatedStorage

        try:
            storage: Any = ReplicatedStorage.configured(options.replica_url, options.data_dir, "write",
                                                        Settings())
        except DataDirLocked as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
    elif options.databases:
        storage = LocalStorage(options.databases)
    else:
        print("Error: give the database files (or --replica-url) to import into", file=sys.stderr)
        return 2
    ds = Lambdasette(storage=storage, options=Options(threaded=False))

    def show(p: imports.Progress) -> None:
        sys.stderr.write(f"\r{definition.name}: pages {p.pages}  records {p.received}"
                         f"  rows written {p.written}")
        sys.stderr.flush()

    progress = imports.Progress(listeners=[show])
    try:
        result = imports.run(definition, imports.LocalSink(ds), today=options.today, progress=progress)
    finally:
        storage.close()
    sys.stderr.write("\n")
    print(f"{result['status']}: {result['rows_written']} rows from {result['pages']} pages "
          f"in {result['duration_s']} s" + (f"; {result['error']}" if result["error"] else ""))
    return 0 if result["status"] == "ok" else 1


def replicated_storage(options: argparse.Namespace, settings: Any, protected: Any, lock: Any) -> Any:
    """Storage on a replica; files named on the command line are pushed (writer) or awaited
    (reader) first, so a writer and a reader can be started together on one replica.
    `lock`: the data directory's, taken before anything else."""
    import time

    from lambdasette.errors import ReplicaUnavailable
    from lambdasette.storage import publish
    from lambdasette.storage.litestream import Replica
    from lambdasette.storage.replicated import ReplicatedStorage

    replica = Replica(options.replica_url)
    deadline = time.monotonic() + 120
    for path in options.files:
        name = path.stem
        if options.role == "read":
            while name not in replica.names():
                if time.monotonic() > deadline:
                    raise ValueError(f"{name} did not appear in the replica")
                time.sleep(0.2)
        elif name not in replica.names():
            publish.push(replica, path, name)
    storage = ReplicatedStorage.configured(options.replica_url, options.data_dir, options.role, settings,
                                           protected=protected, lock=lock)
    try:
        storage.open_all()
    except ReplicaUnavailable as exc:  # S3 hiccups at start are worth one more try
        print(f"Retrying after: {exc}", file=sys.stderr)
        time.sleep(1)
        storage.open_all()
    return storage


def serve(options: argparse.Namespace) -> int:
    import uvicorn

    from lambdasette.app import create_app
    from lambdasette.auth import tokens
    from lambdasette.auth.permissions import Policy
    from lambdasette.demo import create_demo
    from lambdasette.errors import DataDirLocked
    from lambdasette.instance import Lambdasette, Options
    from lambdasette.metadata import Metadata
    from lambdasette.settings import Settings
    from lambdasette.storage.datadir import LOCK_NAME, DataDirLock, Protected
    from lambdasette.storage.local import LocalStorage

    try:
        settings = Settings.from_pairs([tuple(pair) for pair in options.setting])
        policy = Policy.load(options.permissions)
    except (ValueError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    files = list(options.files)
    if not files and not options.replica_url:
        demo = create_demo(options.demo_dir / "demo.db")
        print(f"Serving the demo database {demo}", file=sys.stderr)
        files = [demo]
    missing = [str(f) for f in files if not f.exists()]
    if missing and options.role != "read":
        print(f"Error: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    # The token store is never a database, even in a folder that is served or named outright.
    protected = Protected([options.tokens_db])
    if options.replica_url:
        from lambdasette.errors import ReplicaUnavailable

        try:
            # First of all: a second process on this data directory stops here, at once.
            lock = DataDirLock(options.data_dir)
            storage = replicated_storage(options, settings, protected, lock)
        except DataDirLocked as exc:
            print(f"Error: {exc} (lock file {Path(exc.directory) / LOCK_NAME})", file=sys.stderr)
            return 2
        except (ValueError, ReplicaUnavailable) as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
    else:
        try:
            storage = LocalStorage(files, protected)
        except ValueError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
    store = tokens.open_store(table=options.tokens_table, path=options.tokens_db)
    ds = Lambdasette(
        storage=storage,
        settings=settings,
        metadata=Metadata.load(options.metadata),
        options=Options(cors=options.cors, public=options.public, role=options.role),
        tokens=store,
        policy=policy,
    )
    if options.root and store is not None:
        secret, _ = tokens.create(store, "root", None, 24 * 3600)
        print(f"Root token (valid for 24 hours): {secret}", flush=True)
    print(f"Serving on http://{options.host}:{options.port}/"
          + ("" if options.public else " (private: every request needs a token)"), file=sys.stderr)
    try:
        uvicorn.run(create_app(ds), host=options.host, port=options.port, log_level="warning")
    finally:
        storage.close()  # stop litestream children
    return 0


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.command == "serve":
        return serve(options)
    if options.command == "token":
        return token_command(options)
    if options.command == "db":
        return db_command(options)
    if options.command == "import":
        return import_command(options)
    return 2


if __name__ == "__main__":
    sys.exit(main())
