"""The `lambdasette` command explains itself and never shows a traceback: run as a user runs
it, through `subprocess`, and checked against the README."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdasette import __version__
from lambdasette.auth import tokens
from lambdasette.auth.actions import ABBREVIATIONS
from lambdasette.auth.tokens import ROOT_TOKEN_LIFESPAN, LocalTokenStore
from lambdasette.cli import build_parser
from lambdasette.settings import HELP, Settings

from .test_cli_serve import BIN, free_port, wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BIN, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **(env or {})})


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The command failed with `code` and said why in exactly one line, without a traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                         argparse.ArgumentParser]]:
    """Every command and subcommand with its parser: (("token", "create"), parser), ..."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


# -- it explains itself ----------------------------------------------------------------------------

def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"lambdasette {__version__}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{__version__}"' in pyproject


def test_every_option_has_help_that_shows_its_default() -> None:
    for path, parser in commands(build_parser()):
        text = parser.format_help()
        section = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
        entries = re.split(r"\n(?=  -)", section)  # one per option, wrapped lines and all
        for action in options(parser):
            if isinstance(action, argparse._VersionAction):
                continue
            name = " ".join(path) + " " + action.option_strings[-1]
            assert action.help, f"{name} has no help"
            [entry] = [e for e in entries if e.split()[0].rstrip(",") in action.option_strings]
            assert "default" in entry, f"{name}: its help does not say its default:\n{entry}"


def test_serve_help_lists_every_setting_with_its_default() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    defaults = Settings()
    for name in Settings.names():
        assert HELP.get(name), f"setting {name} has no help line in settings.HELP"
        value = getattr(defaults, name)
        shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
        assert re.search(rf"^  {name} +{re.escape(shown)}  \S", result.stdout, re.M), name


def test_token_create_help_lists_the_actions_and_says_when_tokens_expire() -> None:
    result = run("token", "create", "--help")
    assert result.returncode == 0
    for short, full in ABBREVIATIONS.items():
        assert re.search(rf"^  {short} +{full}$", result.stdout, re.M), (short, full)
    text = " ".join(result.stdout.split())
    assert "Tokens never expire unless -e is given" in text
    assert "root, which last 24 hours without -e" in text and "-e 0: never expires" in text


def test_an_unknown_setting_lists_the_valid_ones() -> None:
    line = one_error_line(run("serve", "--setting", "page_size", "5"), 2, "Unknown setting: page_size")
    assert all(name in line for name in Settings.names())


# -- no traceback ever reaches a user --------------------------------------------------------------

def test_db_push_of_a_missing_file(tmp_path: Path) -> None:
    one_error_line(run("db", "push", str(tmp_path / "nope.db"), "--replica-url", f"file://{tmp_path}/r"), 2,
                   "no such file", "nope.db")


@pytest.fixture
def no_aws(tmp_path: Path) -> dict[str, str]:
    """An environment with no AWS configuration at all (and no instance metadata to ask)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true", "HOME": str(tmp_path)})
    return env


def test_tokens_table_without_aws_region_or_credentials(no_aws: dict[str, str], tmp_path: Path) -> None:
    def bare(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BIN, *args], capture_output=True, text=True, env={**no_aws, **extra}, timeout=60)

    one_error_line(bare("token", "list", "--tokens-table", "tokens"), 2, "DynamoDB table tokens",
                   "no AWS region")
    one_error_line(bare("token", "create", "root", "--tokens-table", "tokens", AWS_DEFAULT_REGION="eu-west-1"), 2,
                   "no AWS credentials")
    # From the environment, as local-cloud.env sets it; serve stops before it starts.
    one_error_line(bare("serve", str(tmp_path), "--port", "0", LAMBDASETTE_TOKENS_TABLE="tokens"), 2,
                   "DynamoDB table tokens", "no AWS region")


def test_s3_unreachable(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"s3://bucket/dbs?endpoint=http://127.0.0.1:{port}&region=us-east-1"
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    one_error_line(run("db", "list", "--replica-url", url, env=env), 1, "cannot list the replica")
    source = tmp_path / "a.db"
    sqlite3.connect(source).execute("create table t (x)").connection.close()
    one_error_line(run("db", "push", str(source), "--replica-url", url, env=env), 1, "cannot list the replica")


def test_serve_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("name,age\nwren,3\n")
    one_error_line(run("serve", str(junk), "--port", "0", "--tokens-db", str(tmp_path / "t.db")), 2,
                   f"{junk} is not a SQLite database")
    # Found in a folder that is served, too; an empty file is an empty database, and is fine.
    (tmp_path / "empty.db").touch()
    one_error_line(run("serve", str(tmp_path), "--port", "0", "--tokens-db", str(tmp_path / "t.db")), 2,
                   "junk.db is not a SQLite database")
    one_error_line(run("serve", str(tmp_path / "missing.db"), "--tokens-db", str(tmp_path / "t.db")), 2,
                   "not found", "missing.db")


def test_other_mistakes_are_one_line_too(tmp_path: Path) -> None:
    db = ["--tokens-db", str(tmp_path / "t.db")]
    one_error_line(run("token", "revoke", "nope", *db), 2, "no token with id nope", str(tmp_path / "t.db"))
    one_error_line(run("token", "create", "alice", "-e", "-1", *db), 2, "-e must be")
    one_error_line(run("token", "create", "alice", "-a", "nope", *db), 2, "Unknown action")
    one_error_line(run("import", "run", str(tmp_path / "none.yml"), str(tmp_path)), 2, "no such definition file")
    one_error_line(run("serve", "--metadata", str(tmp_path / "none.yml"), *db), 2, "none.yml")
    one_error_line(run("db", "pull", "x", "-o", str(tmp_path / "o.db"),
                       env={"LAMBDASETTE_REPLICA_URL": "ftp://nowhere"}), 2, "replica URL must be")


# -- db push: replace, progress, LAMBDASETTE_REPLICA_URL -------------------------------------------

def make_db(path: Path, *values: str) -> Path:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("create table notes (body text)")
    conn.executemany("insert into notes values (?)", [(v,) for v in values])
    conn.commit()
    conn.close()
    return path


def test_db_push_says_how_to_replace_and_replace_reaches_readers(tmp_path: Path) -> None:
    from lambdasette.storage.litestream import Replica
    from lambdasette.storage.replicated import ReplicatedStorage

    url = f"file://{tmp_path}/replica"
    env = {"LAMBDASETTE_REPLICA_URL": url}  # the db commands read it, as everything else does
    first = make_db(tmp_path / "notes.db", "old")
    assert run("db", "push", str(first), env=env).returncode == 0
    assert run("db", "list", env=env).stdout.split() == ["notes"]
    reader = ReplicatedStorage(Replica(url), tmp_path / "reader", "read")
    try:
        assert reader.read_connection("notes").execute("select body from notes").fetchall() == [("old",)]
        (tmp_path / "new").mkdir()
        second = make_db(tmp_path / "new" / "notes.db", "new", "newer")
        refused = one_error_line(run("db", "push", str(second), env=env), 2, "already has a database named notes")
        assert "--replace" in refused
        replaced = run("db", "push", str(second), "--replace", env=env)
        assert replaced.returncode == 0 and replaced.stdout.startswith("Replaced notes"), replaced.stderr
        # A reader following the replica applies it like any write (fresh reads wait for it).
        rows = reader.read_connection("notes").execute("select body from notes").fetchall()
        assert rows == [("new",), ("newer",)]
    finally:
        reader.close()
    pulled = tmp_path / "pulled.db"
    assert run("db", "pull", "notes", "-o", str(pulled), env=env).returncode == 0
    assert sqlite3.connect(pulled).execute("select count(*) from notes").fetchone() == (2,)


def test_db_commands_need_a_replica() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LAMBDASETTE_REPLICA_URL"}
    result = subprocess.run([*BIN, "db", "list"], capture_output=True, text=True, env=env)
    one_error_line(result, 2, "--replica-url", "LAMBDASETTE_REPLICA_URL")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="bytes sent are read from /proc")
def test_db_push_shows_the_upload_with_bytes_and_rate(moto_endpoint: str, tmp_path: Path) -> None:
    import boto3

    bucket = f"push-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    source = tmp_path / "big.db"
    conn = sqlite3.connect(source)
    conn.execute("create table t (b blob)")
    conn.executemany("insert into t values (randomblob(100000))", [()] * 60)  # 6 MB, incompressible
    conn.commit()
    conn.close()
    result = run("db", "push", str(source), "--replica-url", f"s3://{bucket}/dbs?endpoint={moto_endpoint}")
    assert result.returncode == 0, result.stderr
    frames = [f.strip() for f in re.split(r"[\r\n]+", result.stderr) if f.strip()]  # text=True: \r is \n
    # The bytes litestream sent, as the kernel counted them, with the rate: all of the snapshot.
    uploading = [f for f in frames if f.startswith("uploading [")]
    assert uploading, frames
    last = re.search(r"\[#+\] ([\d.]+) MB of ([\d.]+) MB  [\d.]+ [KMG]?B/s", uploading[-1])
    assert last and last.group(1) == last.group(2) and float(last.group(2)) >= 6.0, uploading[-1]
    assert frames[-1].startswith("uploaded [##############################] 6.")
    assert [f.split(" [")[0] for f in frames][0] == "preparing"


def test_the_progress_bar_shows_what_it_is_doing() -> None:
    import io

    from lambdasette.storage.publish import ProgressBar

    out = io.StringIO()
    bar = ProgressBar(out)
    bar("snapshot", 3_000_000, 6_000_000)
    bar.sending = time.monotonic() - 2  # two seconds into sending
    bar("upload", 4_000_000, 6_000_000)
    bar("confirm", 6_000_000, 6_000_000)
    bar("done", 6_000_000, 6_000_000)
    frames = [f.strip() for f in out.getvalue().split("\r") if f.strip()]
    assert frames[0].startswith("preparing [###############...............] 3.0 MB of 6.0 MB")
    assert frames[1].startswith("uploading [####################..........] 4.0 MB of 6.0 MB  2.0 MB/s")
    assert frames[2].startswith("waiting for the replica [##############################] 6.0 MB of 6.0 MB")
    assert frames[3].startswith("uploaded [") and out.getvalue().endswith("\n")


# -- set-up without surprises: the same stores from any directory ---------------------------------

def test_the_token_store_is_the_same_from_any_directory(fixture_path: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    created = run("token", "create", "alice", cwd=one)
    assert created.returncode == 0
    token = created.stdout.strip()
    store = Path(os.environ["XDG_DATA_HOME"]) / "lambdasette" / "tokens.db"  # conftest's, per user
    assert f"in {store}" in created.stderr and "never expires" in created.stderr
    record = tokens.verify(LocalTokenStore(store), token)
    assert record is not None and record.id in run("token", "list", cwd=two).stdout
    # serve, started somewhere else, knows the token (and says where it looks).
    port = free_port()
    proc = subprocess.Popen([*BIN, "serve", str(fixture_path), "--port", str(port)], cwd=two,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        base = wait_until_answering(port, proc)
        request = urllib.request.Request(base + "/-/actor.json", headers={"Authorization": f"Bearer {token}"})
        assert json.loads(urllib.request.urlopen(request, timeout=5).read())["actor"]["id"] == "alice"
    finally:
        proc.terminate()
        err = proc.communicate(timeout=10)[1]
    assert f"Tokens in {store}" in err
    # LAMBDASETTE_TOKENS_DB names another store, for every command alike.
    other = tmp_path / "other.db"
    moved = run("token", "create", "bob", env={"LAMBDASETTE_TOKENS_DB": str(other)}, cwd=one)
    assert f"in {other}" in moved.stderr and other.exists()


def test_import_definitions_are_found_from_any_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LAMBDASETTE_IMPORTS_DIR"}
    listed = subprocess.run([*BIN, "import", "list"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("federal-register:"), listed.stderr
    assert f"Definitions in {ROOT / 'functions/importer/imports'}" in listed.stderr
    empty = tmp_path / "defs"
    empty.mkdir()
    elsewhere = run("import", "list", env={"LAMBDASETTE_IMPORTS_DIR": str(empty)}, cwd=tmp_path)
    assert elsewhere.returncode == 0 and f"Definitions in {empty}: none" in elsewhere.stderr
    one_error_line(run("import", "list", "--dir", "nowhere", cwd=tmp_path), 2,
                   f"no folder of import definitions at {tmp_path / 'nowhere'}")


def test_root_tokens_last_a_day_wherever_they_are_made(fixture_path: Path, tmp_path: Path) -> None:
    db = tmp_path / "tokens.db"
    store = LocalTokenStore(db)

    def made(*args: str) -> tokens.TokenRecord:
        result = run("token", "create", *args, "--tokens-db", str(db))
        assert result.returncode == 0, result.stderr
        record = tokens.verify(store, result.stdout.strip())
        assert record is not None
        return record

    root = made("root")
    assert root.expires is not None and root.expires - root.created == ROOT_TOKEN_LIFESPAN == 24 * 3600
    assert made("alice").expires is None
    assert made("root", "-e", "0").expires is None
    short = made("root", "-e", "60")
    assert short.expires is not None and short.expires - short.created == 60
    # serve --root prints one that lasts as long.
    port = free_port()
    proc = subprocess.Popen([*BIN, "serve", str(fixture_path), "--root", "--port", str(port), "--tokens-db",
                             str(db)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Root token (valid for 24 hours): ")
        record = tokens.verify(store, line.split()[-1])
        assert record is not None and record.expires is not None
        assert record.expires - record.created == ROOT_TOKEN_LIFESPAN
    finally:
        proc.terminate()
        proc.wait(10)
    # local-cloud's --root-token uses the same rule.
    source = (ROOT / "tools/localcloud/__init__.py").read_text()
    assert "tokens.cli_lifespan(actor, None)" in source


# -- the README says what the commands say ---------------------------------------------------------

def test_the_readme_mentions_every_command_and_option() -> None:
    missing = []
    for path, parser in commands(build_parser()):
        if path and f"lambdasette {' '.join(path)}" not in README and f"`{' '.join(path)}" not in README:
            missing.append(" ".join(path))
        for action in options(parser):
            if not any(option in README for option in action.option_strings if option.startswith("--")):
                missing.append(f"{' '.join(path)} {action.option_strings[-1]}")
    assert not missing, f"not in README.md: {missing}"


def test_the_readme_lists_every_setting_and_the_setup_knobs() -> None:
    for name in Settings.names():
        assert f"`{name}`" in README, name
    for needed in ("SKIP_TEMPLATE_CHECK=1", "scripts/lambdasette", "LAMBDASETTE_TOKENS_DB", "python3.12",
                   "LAMBDASETTE_REPLICA_URL", "LAMBDASETTE_IMPORTS_DIR", "LogRetentionDays", "X-Request-Id",
                   "request_id", "--replace", "lambdasette --version"):
        assert needed in README, needed


def test_scripts_lambdasette_runs_from_any_directory(tmp_path: Path) -> None:
    result = subprocess.run([str(ROOT / "scripts/lambdasette"), "--version"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == f"lambdasette {__version__}", result.stderr


def test_scripts_test_says_up_front_what_it_needs(tmp_path: Path) -> None:
    if any(Path(p).exists() for p in ("/usr/bin/python3.12", "/usr/local/bin/python3.12",
                                      "/opt/homebrew/bin/python3.12")):
        pytest.skip("a system python3.12 is installed here")
    env = {**os.environ, "PYENV_ROOT": str(tmp_path), "SKIP_TEMPLATE_CHECK": "0"}
    started = time.monotonic()
    result = subprocess.run([str(ROOT / "scripts/test")], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "python3.12" in result.stderr and "SKIP_TEMPLATE_CHECK=1" in result.stderr
    assert "stopping before anything runs" in result.stderr
    assert time.monotonic() - started < 10  # before setup, the linter or a test
