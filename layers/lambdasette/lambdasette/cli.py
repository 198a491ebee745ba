"""The `lambdasette` command: serve locally, manage tokens, databases and imports.

Every failure a user can cause or meet - a missing file, a file that is not SQLite, an
unreachable replica, no AWS region or credentials - ends as one line on stderr and a non-zero
exit (`main`), never a Python traceback; LAMBDASETTE_DEBUG=1 shows the traceback of an
unexpected one. Every option's help says its default (`Formatter`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdasette import __version__

# The repository this package runs from, when it runs from a checkout (an editable install):
# its import definitions are then found from any directory.
CHECKOUT = Path(__file__).resolve().parents[3]
DEFINITIONS_IN_CHECKOUT = CHECKOUT / "functions" / "importer" / "imports"


def default_tokens_db() -> Path:
    """The local token store: $LAMBDASETTE_TOKENS_DB, else one per user (not per directory,
    so `serve` and `token create` agree wherever they are run)."""
    env = os.environ.get("LAMBDASETTE_TOKENS_DB")
    if env:
        return Path(env)
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "lambdasette" / "tokens.db"


def default_imports_dir() -> Path | None:
    env = os.environ.get("LAMBDASETTE_IMPORTS_DIR")
    if env:
        return Path(env)
    return DEFINITIONS_IN_CHECKOUT if DEFINITIONS_IN_CHECKOUT.is_dir() else None


def shown_default(action: argparse.Action) -> str:
    default = action.default
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return "on" if default else "off"
    if default is None or default == []:
        return "none"
    return str(default)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, unless it says it already; descriptions
    and epilogs (the settings, the actions) keep their lines."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.default is argparse.SUPPRESS
                or "default" in text or isinstance(action, argparse._VersionAction)):
            return text
        return f"{text} (default: {shown_default(action).replace('%', '%%')})"


def settings_epilog() -> str:
    from lambdasette.settings import describe

    rows = describe()
    width = max(len(name) for name, _, _ in rows)
    lines = ["settings (--setting NAME VALUE; in Lambda, LAMBDASETTE_SETTING_<NAME>):"]
    lines += [f"  {name:<{width}}  {default:>8}  {text}" for name, default, text in rows]
    return "\n".join(lines)


def actions_epilog() -> str:
    from lambdasette.auth.actions import ABBREVIATIONS
    from lambdasette.auth.tokens import ROOT_TOKEN_LIFESPAN

    lines = ["actions (ACTION is a full name or its abbreviation):"]
    lines += [f"  {short:<4} {full}" for short, full in ABBREVIATIONS.items()]
    hours = ROOT_TOKEN_LIFESPAN // 3600
    lines += [
        "",
        "Tokens never expire unless -e is given - except tokens for root, which last",
        f"{hours} hours without -e, like those `serve --root` and local-cloud's --root-token print.",
        "-e 0: never expires. The token is printed once, alone on stdout",
        "(T=$(lambdasette token create root)); the store keeps only its hash.",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lambdasette", description=__doc__.split("\n\n")[0],
                                     formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"lambdasette {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        return parent.add_parser(name, help=text, description=text, epilog=epilog, formatter_class=Formatter)

    serve = command(sub, "serve", "Serve SQLite files (or a demo database) on HTTP", settings_epilog())
    serve.add_argument("files", nargs="*", type=Path,
                       help="SQLite files, or folders of them (none: the demo database in --demo-dir)")
    serve.add_argument("--host", default="127.0.0.1", help="Address to listen on")
    serve.add_argument("--port", type=int, default=8001, help="Port to listen on")
    serve.add_argument("--cors", action="store_true", help="Send CORS headers")
    serve.add_argument("--public", action="store_true",
                       help="Let anonymous callers read; off, every request needs a token")
    serve.add_argument("--setting", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="Set a setting (repeatable; the settings are listed below)")
    serve.add_argument("--metadata", type=Path, metavar="FILE", help="Datasette metadata file (JSON or YAML)")
    serve.add_argument("--permissions", type=Path, metavar="FILE",
                       help="Permissions file (JSON or YAML) granting actions to actors")
    serve.add_argument("--root", action="store_true",
                       help="Print a new token for the root actor, who may do everything (valid 24 hours)")
    serve.add_argument("--replica-url", metavar="URL",
                       help="Serve the databases of this Litestream replica: s3://BUCKET/PREFIX"
                            "?endpoint=...&region=... or file:///DIR (files given are pushed to it)")
    serve.add_argument("--role", choices=["all", "read", "write"], default="all",
                       help="With --replica-url: serve reads, writes or both (as the read and write "
                            "functions do)")
    serve.add_argument("--data-dir", type=Path, default=Path(".lambdasette/copies"), metavar="DIR",
                       help="With --replica-url: where the local copies live (relative to the current "
                            "directory)")
    serve.add_argument("--demo-dir", type=Path, default=Path(".lambdasette"), metavar="DIR",
                       help="Where the demo database is created when no files are given")

    token = command(sub, "token", "Create, list and revoke API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = command(token_sub, "create", "Create a token for ACTOR and print it (shown once)",
                     actions_epilog())
    create.add_argument("actor", help="Who the token speaks for (root may do everything)")
    create.add_argument("-a", "--all", dest="all_actions", action="append", default=[], metavar="ACTION",
                        help="Allow ACTION everywhere (repeatable; with any of -a/-d/-r the token may do "
                             "only what they list)")
    create.add_argument("-d", "--database", nargs=2, action="append", default=[], metavar=("DB", "ACTION"),
                        help="Allow ACTION on database DB (repeatable)")
    create.add_argument("-r", "--resource", nargs=3, action="append", default=[],
                        metavar=("DB", "TABLE", "ACTION"),
                        help="Allow ACTION on table TABLE of DB (repeatable)")
    create.add_argument("-e", "--expires-after", type=int, metavar="SECONDS",
                        help="Lifespan in seconds; 0: never expires (default: never, root: 24 hours)")
    create.add_argument("--description", metavar="TEXT",
                        help="What the token is for (shown in lists and on the API tokens page)")
    listing = command(token_sub, "list", "List tokens, with their status (never their secrets)")
    listing.add_argument("--actor", help="Only this actor's tokens")
    revoke = command(token_sub, "revoke", "Revoke a token (and every token minted from it)")
    revoke.add_argument("id", help="The token's id (lstok_<id>_..., as `token list` shows it)")

    db = command(sub, "db", "Push databases to a replica, pull them back, list them")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    push = command(db_sub, "push", "Publish a SQLite file as a replicated database (with a progress bar)")
    push.add_argument("file", type=Path, help="The SQLite file")
    push.add_argument("--name", help="Database name (default: the file's name without extension)")
    push.add_argument("--replace", action="store_true",
                      help="Replace the content of a database the replica already has (one more "
                           "transaction: readers and the writer pick it up, older versions stay restorable)")
    pull = command(db_sub, "pull", "Restore a replicated database to a file")
    pull.add_argument("name", help="The database's name in the replica")
    pull.add_argument("--output", "-o", type=Path, required=True, metavar="FILE",
                      help="The file to create (required; it must not exist)")
    pull.add_argument("--timestamp", help="Restore as of this time (RFC 3339, e.g. 2026-11-22T10:00:00Z; "
                                          "default: the newest)")
    db_list = command(db_sub, "list", "List the replica's databases")
    for p in (push, pull, db_list):
        p.add_argument("--replica-url", metavar="URL", default=os.environ.get("LAMBDASETTE_REPLICA_URL"),
                       help="The replica: s3://BUCKET/PREFIX?region=... or file:///DIR "
                            "($LAMBDASETTE_REPLICA_URL if set)")

    imports = command(sub, "import", "Run scheduled-import definitions locally, list them")
    import_sub = imports.add_subparsers(dest="import_command", required=True, metavar="COMMAND")
    import_run = command(import_sub, "run", "Run one import definition now, with progress")
    import_run.add_argument("definition", type=Path, help="A definition file (YAML or JSON)")
    import_run.add_argument("databases", nargs="*", type=Path,
                            help="SQLite files or folders holding the target (or give --replica-url)")
    import_run.add_argument("--replica-url", metavar="URL", help="Write to this replica instead")
    import_run.add_argument("--data-dir", type=Path, default=Path(".lambdasette/copies"), metavar="DIR",
                            help="With --replica-url: where the local copies live")
    import_run.add_argument("--today", type=datetime.date.fromisoformat, metavar="YYYY-MM-DD",
                            help="The date {today} stands for (default: today)")
    import_list = command(import_sub, "list", "Show definitions and their last runs")
    import_list.add_argument("databases", nargs="*", type=Path,
                             help="SQLite files or folders with run records")
    import_list.add_argument("--dir", type=Path, default=default_imports_dir(), metavar="DIR",
                             help="The folder of definitions: $LAMBDASETTE_IMPORTS_DIR if set, else "
                                  "functions/importer/imports of the checkout lambdasette runs from")

    for p in (serve, create, listing, revoke):
        p.add_argument("--tokens-db", type=Path, default=default_tokens_db(), metavar="PATH",
                       help="SQLite file for API tokens: $LAMBDASETTE_TOKENS_DB if set, else one per "
                            "user, $XDG_DATA_HOME/lambdasette/tokens.db (~/.local/share/...)")
        p.add_argument("--tokens-table", metavar="NAME", default=os.environ.get("LAMBDASETTE_TOKENS_TABLE"),
                       help="Keep tokens in this DynamoDB table instead ($LAMBDASETTE_TOKENS_TABLE if "
                            "set; AWS region and credentials from the environment)")
    return parser


def open_tokens(options: argparse.Namespace) -> tuple[Any, str]:
    """The token store the options name, checked to answer now (a DynamoDB table: one
    lookup, so a missing region, credentials or table is said at once), and where it is."""
    from lambdasette.auth import tokens

    if options.tokens_table:
        where = f"DynamoDB table {options.tokens_table}"
        try:
            store = tokens.open_store(table=options.tokens_table)
            assert store is not None
            store.get("lambdasette-cli-check")
        except ImportError:
            raise CliError(f"{where}: boto3 is needed: pip install 'lambdasette[aws]'") from None
        except Exception as exc:
            raise CliError(f"{where}: {explain(exc)}") from None
        return store, where
    path = options.tokens_db.expanduser()
    store = tokens.open_store(path=path)
    return store, str(path.resolve())


def token_command(options: argparse.Namespace) -> int:
    import json

    from lambdasette.auth import tokens

    store, where = open_tokens(options)
    if options.token_command == "create":
        restrictions: dict = {}
        if options.all_actions:
            restrictions["a"] = options.all_actions
        for db, action in options.database:
            restrictions.setdefault("d", {}).setdefault(db, []).append(action)
        for db, table, action in options.resource:
            restrictions.setdefault("r", {}).setdefault(db, {}).setdefault(table, []).append(action)
        if options.expires_after is not None and options.expires_after < 0:
            raise CliError("-e must be 0 (never expires) or a positive number of seconds, "
                           f"not {options.expires_after}")
        lifespan = tokens.cli_lifespan(options.actor, options.expires_after)
        token, record = tokens.create(store, options.actor, restrictions or None, lifespan,
                                      description=options.description)
        print(token)
        expires = "never expires"
        if record.expires is not None:
            when = datetime.datetime.fromtimestamp(record.expires, datetime.UTC)
            expires = f"expires {when:%Y-%m-%d %H:%M} UTC"
        print(f"Token {record.id} for {record.actor}, {expires}, in {where}", file=sys.stderr)
        return 0
    if options.token_command == "list":
        print(f"Tokens in {where}", file=sys.stderr)
        for found in store.list(options.actor):
            print(json.dumps(found.public()))
        return 0
    if not tokens.valid_id(options.id) or not store.revoke(options.id):
        raise CliError(f"no token with id {options.id} in {where}")
    print(f"Revoked {options.id}")
    return 0


def db_command(options: argparse.Namespace) -> int:
    from lambdasette.storage import publish
    from lambdasette.storage.litestream import Replica

    if not options.replica_url:
        raise CliError("which replica? Give --replica-url URL or set LAMBDASETTE_REPLICA_URL")
    replica = Replica(options.replica_url)
    if options.db_command == "push":
        name = options.name or options.file.stem
        txid = publish.push(replica, options.file, name, progress=publish.ProgressBar(),
                            replace=options.replace)
        done = "Replaced" if options.replace else "Pushed"
        print(f"{done} {name} with {options.file} (transaction {txid})")
    elif options.db_command == "pull":
        publish.pull(replica, options.name, options.output, options.timestamp)
        print(f"Restored {options.name} to {options.output}")
    else:
        for name in replica.names():
            print(name)
    return 0


def import_command(options: argparse.Namespace) -> int:
    import sqlite3

    from lambdasette import imports

    if options.import_command == "list":
        if options.dir is None:
            raise CliError("where are the definitions? Give --dir DIR or set LAMBDASETTE_IMPORTS_DIR")
        folder = options.dir.resolve()
        if not folder.is_dir():
            raise CliError(f"no folder of import definitions at {folder}")
        definitions = imports.load_definitions(folder)
        print(f"Definitions in {folder}" + ("" if definitions else ": none"), file=sys.stderr)
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

    if not options.definition.is_file():
        raise CliError(f"no such definition file: {options.definition}")
    definition = imports.load_definition(options.definition)
    if options.replica_url:
        from lambdasette.settings import Settings
        from lambdasette.storage.replicated import ReplicatedStorage

        storage: Any = ReplicatedStorage.configured(options.replica_url, options.data_dir, "write",
                                                    Settings())
    elif options.databases:
        for path in options.databases:
            # The first batch creates the table; a new database file is made for it the same way
            # (as sqlite-utils does), in a folder that exists.
            if not path.exists() and path.suffix in (".db", ".sqlite", ".sqlite3") and path.parent.is_dir():
                sqlite3.connect(path).close()
                print(f"Created the database {path}", file=sys.stderr)
        check_databases(options.databases)
        storage = LocalStorage(options.databases)
    else:
        raise CliError("give the database files (or --replica-url) to import into")
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
    summary = f"{result['rows_written']} rows from {result['pages']} pages in {result['duration_s']} s"
    if result["status"] != "ok":  # the CLI's one error line, on stderr like every other
        print(f"Error: import {definition.name} failed after {summary}: {result['error']}", file=sys.stderr)
        return 1
    print(f"ok: {summary}")
    return 0


def replicated_storage(options: argparse.Namespace, settings: Any, protected: Any, lock: Any) -> Any:
    """Storage on a replica; files named on the command line are pushed (writer) or awaited
    (reader) first, so a writer and a reader can be started together on one replica.
    `lock`: the data directory's, taken before anything else."""
    import time

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
    # Each database is restored by the first request that needs it, as in Lambda.
    return ReplicatedStorage.configured(options.replica_url, options.data_dir, options.role, settings,
                                        protected=protected, lock=lock)


SQLITE_HEADER = b"SQLite format 3\x00"


def check_databases(paths: list[Path]) -> None:
    """CliError for a path that does not exist or a file (named, or found in a named folder)
    that is not SQLite: served, it would answer every request with an error."""
    from lambdasette.storage.local import SUFFIXES

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"not found: {', '.join(missing)}")
    files = [p for p in paths if not p.is_dir()]
    for folder in (p for p in paths if p.is_dir()):
        files += [f for f in sorted(folder.iterdir())
                  if f.suffix in SUFFIXES and not f.name.startswith(".") and f.is_file()]
    for path in files:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
        if head and head != SQLITE_HEADER:  # an empty file is an empty database to SQLite
            raise CliError(f"{path} is not a SQLite database")


def serve(options: argparse.Namespace) -> int:
    import uvicorn

    from lambdasette import logs
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

    settings = Settings.from_pairs([tuple(pair) for pair in options.setting])
    policy = Policy.load(options.permissions)
    metadata = Metadata.load(options.metadata)
    files = list(options.files)
    if not files and not options.replica_url:
        demo = create_demo(options.demo_dir / "demo.db")
        print(f"Serving the demo database {demo}", file=sys.stderr)
        files = [demo]
    if options.role != "read":  # a reader waits for files to appear in the replica
        check_databases(files)
    store, where = open_tokens(options)
    # The token store is never a database, even in a folder that is served or named outright.
    protected = Protected([options.tokens_db.expanduser()])
    if options.replica_url:
        try:
            # First of all: a second process on this data directory stops here, at once.
            lock = DataDirLock(options.data_dir)
            storage = replicated_storage(options, settings, protected, lock)
        except DataDirLocked as exc:
            raise CliError(f"{exc} (lock file {Path(exc.directory) / LOCK_NAME})") from None
    else:
        storage = LocalStorage(files, protected)
    ds = Lambdasette(
        storage=storage,
        settings=settings,
        metadata=metadata,
        options=Options(cors=options.cors, public=options.public, role=options.role),
        tokens=store,
        policy=policy,
    )
    logs.configure("stderr")  # one JSON line per request (uvicorn's access log stays off)
    print(f"Tokens in {where}", file=sys.stderr)
    if options.root:
        secret, _ = tokens.create(store, "root", None, tokens.cli_lifespan("root", None))
        print(f"Root token (valid for {tokens.ROOT_TOKEN_LIFESPAN // 3600} hours): {secret}", flush=True)
    print(f"Serving on http://{options.host}:{options.port}/"
          + ("" if options.public else " (private: every request needs a token)"), file=sys.stderr)
    try:
        uvicorn.run(create_app(ds), host=options.host, port=options.port, log_level="warning")
    finally:
        storage.close()  # stop litestream children
    return 0


class CliError(Exception):
    """A failure to tell the user in one line (`main` prints it and exits 2)."""


def exit_status(exc: BaseException) -> int:
    """2: what the command line asks for cannot be done as asked (a bad setting, a missing or
    non-SQLite file, a name that exists, a data directory in use, no AWS configuration);
    1: something failed while doing it (an unreachable replica, AWS refusing, a bug)."""
    from lambdasette.errors import DataDirLocked

    return 2 if isinstance(exc, (CliError, ValueError, FileNotFoundError, DataDirLocked)) else 1


def explain(exc: BaseException) -> str:
    """One line a person can act on, for an error from anywhere below the CLI."""
    kind = type(exc).__name__
    if type(exc).__module__.startswith("botocore"):
        if kind == "NoRegionError":
            return "no AWS region: set AWS_DEFAULT_REGION, or configure one with `aws configure`"
        if kind in ("NoCredentialsError", "PartialCredentialsError"):
            return ("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
                    "or configure them with `aws configure`")
        return f"AWS: {exc}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    if isinstance(exc, (CliError, ValueError, OSError)) or type(exc).__module__.startswith("lambdasette"):
        return str(exc) or kind
    return f"{kind}: {exc} (LAMBDASETTE_DEBUG=1 shows where)"


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": serve, "token": token_command, "db": db_command, "import": import_command,
}


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        return COMMANDS[options.command](options)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("LAMBDASETTE_DEBUG"):
            raise
        message = " ".join(explain(exc).split())  # one line, whatever the message holds
        print(f"Error: {message}", file=sys.stderr)
        return exit_status(exc)


if __name__ == "__main__":
    sys.exit(main())
