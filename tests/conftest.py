from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.instance import Lambdasette, Options
from lambdasette.settings import Settings
from lambdasette.storage.local import LocalStorage

from .fixture_db import make_fixture_db

# No test touches the real home directory: the per-user token store (`lambdasette serve` and
# `token` without --tokens-db) lives in a folder of this session, for every process it starts.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="lambdasette-tests-data-")
os.environ.pop("LAMBDASETTE_TOKENS_DB", None)
atexit.register(shutil.rmtree, os.environ["XDG_DATA_HOME"], ignore_errors=True)


@pytest.fixture(autouse=True)
def package_logging() -> Iterator[None]:
    """Logging is process-wide: a test that builds a Lambda handler (which sends the package's
    logs to stdout as JSON, not to the root logger) must not change what later tests see."""
    import logging

    logger = logging.getLogger("lambdasette")
    yield
    logger.handlers[:], logger.level, logger.propagate = [], logging.NOTSET, True


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server over real HTTP for the whole session; clients get its URL."""
    import logging
    import os

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto request otherwise

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dynamodb(moto_endpoint: str) -> object:
    import boto3

    return boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture(scope="session")
def fixture_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fixture_db(tmp_path_factory.mktemp("data") / "fixtures.db")


def make_client(path: Path, *, cors: bool = False, **settings: object) -> TestClient:
    config = Settings()
    for name, value in settings.items():
        config.set(name, str(value))
    ds = Lambdasette(storage=LocalStorage([path]), settings=config, options=Options(cors=cors))
    return TestClient(create_app(ds), base_url="http://localhost")


@pytest.fixture(scope="session")
def client(fixture_path: Path) -> Iterator[TestClient]:
    with make_client(fixture_path) as c:
        yield c
