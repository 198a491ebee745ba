"""`lambdasette serve` as a user runs it: a real process on a real port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = [sys.executable, "-m", "lambdasette.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(*args: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*BIN, "serve", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/-/versions.json", timeout=1).read()
                break
            except urllib.error.HTTPError:
                break  # answering, if only to say a token is needed
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise AssertionError(f"server did not start: {out}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_until_answering(port: int, proc: subprocess.Popen, timeout: float = 20) -> str:
    """The base URL once the server answers anything at all (a private one answers 401)."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(base + "/-/versions.json", timeout=1).read()
            return base
        except urllib.error.HTTPError:
            return base
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server did not start") from None
            time.sleep(0.1)


def get(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=5).read())


def test_serves_files_with_settings(fixture_path: Path, tmp_path: Path) -> None:
    with serving(str(fixture_path), "--public", "--cors", "--setting", "default_page_size", "3",
                 "--tokens-db", str(tmp_path / "tokens.db")) as base:
        body = get(base + "/fixtures/dogs.json")
        assert len(body["rows"]) == 3
        assert get(base + "/-/settings.json")["default_page_size"] == 3


def test_demo_database_when_no_files(tmp_path: Path) -> None:
    with serving("--public", "--demo-dir", str(tmp_path)) as base:
        body = get(base + "/demo.json")
        names = {t["name"] for t in body["tables"]}
        assert {"trees", "cities", "species", "notes"} <= names
        trees = get(base + "/demo/trees.json?_labels=on&_size=2")
        assert trees["next"] == "2" and isinstance(trees["rows"][0]["city_code"], dict)
        assert get(base + "/demo/notes.json?_search=river")["rows"]


def test_bad_setting_is_reported() -> None:
    proc = subprocess.run([*BIN, "serve", "--setting", "nope", "1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Unknown setting" in proc.stderr


def test_private_by_default_and_root_token(fixture_path: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*BIN, "serve", str(fixture_path), "--root", "--port", str(port),
                             "--tokens-db", str(tmp_path / "tokens.db")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Root token (valid for 24 hours): lstok_"), line
        token = line.rsplit(" ", 1)[1].strip()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/-/versions.json", timeout=1)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        request = urllib.request.Request(base + "/fixtures.json",
                                         headers={"Authorization": f"Bearer {token}"})
        assert json.loads(urllib.request.urlopen(request, timeout=5).read())["database"] == "fixtures"
        request = urllib.request.Request(base + "/-/api/tokens", method="POST", data=b"{}",
                                         headers={"Authorization": f"Bearer {token}"})
        minted = json.loads(urllib.request.urlopen(request, timeout=5).read())
        assert minted["actor"] == "root" and minted["token"].startswith("lstok_")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
