"""The `lambdasette` command: serve locally, manage tokens, databases and imports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    for p in (serve, create, listing, revoke):
        p.add_argument("--tokens-db", type=Path, default=Path(".lambdasette/tokens.db"),
                       help="SQLite file for API tokens (default: %(default)s)")
        p.add_argument("--tokens-table", metavar="NAME",
                       help="Keep tokens in this DynamoDB table instead (AWS credentials from the env)")
    return parser


def token_command(options: argparse.Namespace) -> int:
    import json

    from . import tokens

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


def serve(options: argparse.Namespace) -> int:
    import uvicorn

    from . import tokens
    from .app import create_app
    from .core import Lambdasette, Options
    from .demo import create_demo
    from .metadata import Metadata
    from .permissions import Policy
    from .settings import Settings
    from .storage import LocalStorage

    try:
        settings = Settings.from_pairs([tuple(pair) for pair in options.setting])
        policy = Policy.load(options.permissions)
    except (ValueError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    files = list(options.files)
    if not files:
        demo = create_demo(options.demo_dir / "demo.db")
        print(f"Serving the demo database {demo}", file=sys.stderr)
        files = [demo]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        print(f"Error: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    store = tokens.open_store(table=options.tokens_table, path=options.tokens_db)
    ds = Lambdasette(
        storage=LocalStorage(files),
        settings=settings,
        metadata=Metadata.load(options.metadata),
        options=Options(cors=options.cors, public=options.public),
        tokens=store,
        policy=policy,
    )
    if options.root and store is not None:
        secret, _ = tokens.create(store, "root", None, 24 * 3600)
        print(f"Root token (valid for 24 hours): {secret}", flush=True)
    print(f"Serving on http://{options.host}:{options.port}/"
          + ("" if options.public else " (private: every request needs a token)"), file=sys.stderr)
    uvicorn.run(create_app(ds), host=options.host, port=options.port, log_level="warning")
    return 0


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.command == "serve":
        return serve(options)
    if options.command == "token":
        return token_command(options)
    return 2


if __name__ == "__main__":
    sys.exit(main())
