"""Fixtures: one moto S3 server process for the whole session, reached over HTTP through s3fs.

The server is started as ``python -m moto.server`` on a free port of 127.0.0.1 (moto[server] is a
test dependency in hatch.toml), a bucket is created, and the process is stopped at the end. The
AWS settings of the machine are hidden in every test (fake credentials, no profile, no config
files, no instance-metadata lookups), so the tests behave the same everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from molexp.workspace.storage import STORAGE_OPTIONS_ENV
from molexp_storage_s3 import S3Storage
from molexp_storage_s3.testing import MotoServer, fake_credentials

BUCKET = "molexp-tests"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """The session's moto server, with :data:`BUCKET` created."""
    if importlib.util.find_spec("moto") is None:
        pytest.fail(
            "moto is not installed: it is a test dependency (moto[server] in hatch.toml); run "
            "the tests with `hatch run test`",
            pytrace=False,
        )
    with MotoServer() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture(autouse=True)
def _s3_environment(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """For each test (and the processes it starts): fake credentials and nothing of the
    machine's AWS settings, and the endpoint in MOLEXP_STORAGE_OPTIONS — the documented way to
    configure storage for code that is only given a URL. Restored after the test."""
    options = json.dumps({"s3": {"endpoint_url": moto.endpoint}})
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, options)
    with fake_credentials():
        yield


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    """The test bucket (it exists)."""
    return BUCKET


@pytest.fixture
def options(moto: MotoServer) -> dict[str, Any]:
    """Storage options that reach the session's server."""
    return {"endpoint_url": moto.endpoint}


@pytest.fixture
def s3_url(moto: MotoServer) -> str:
    """A fresh, empty prefix of the test bucket."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def storage(s3_url: str, options: dict[str, Any]) -> S3Storage:
    """A fresh store on the test bucket (the conformance suite's fixture)."""
    return S3Storage.from_url(s3_url, **options)
