"""Finding the plugin, configuring it in one place, and the clear errors of a misconfiguration:
a wrong endpoint, a missing bucket, missing credentials, bad options."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

import molexp as me
from molexp.workspace import StorageError
from molexp.workspace.storage import (
    STORAGE_OPTIONS_ENV,
    installed_backends,
    open_storage,
    set_default_storage_options,
    storage_options_for,
)
from molexp_storage_s3 import S3Options, S3Storage
from molexp_storage_s3.testing import MotoServer, free_port

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_entry_point_is_listed_with_its_distribution_and_version() -> None:
    with PYPROJECT.open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    (s3,) = [b for b in installed_backends() if b.scheme == "s3"]
    assert s3.target == "molexp_storage_s3:S3Storage"
    assert (s3.distribution, s3.version) == ("molexp-storage-s3", version)


def test_workspace_layer_imports_s3fs_only_for_an_s3_url(bucket: str, tmp_path: Path) -> None:
    code = f"""
import sys
import molexp as me
assert not [m for m in sys.modules if m.split(".")[0] in ("s3fs", "botocore", "molexp_storage_s3")]
me.Workspace({str(tmp_path)!r})
assert "s3fs" not in sys.modules
ws = me.Workspace("s3://{bucket}/import-check")
assert type(ws.storage).__name__ == "S3Storage" and "s3fs" in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True, stdin=subprocess.DEVNULL)


def test_open_storage_resolves_the_scheme(s3_url: str, options: dict[str, Any]) -> None:
    storage = open_storage(s3_url, **options)
    assert isinstance(storage, S3Storage) and storage.url == s3_url


# -- configuration --------------------------------------------------------------------------------


def test_environment_options_apply_by_scheme_and_url_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = {
        "s3": {"endpoint_url": "http://a:9000", "region": "r1"},
        "s3://bucket": {"region": "r2"},
        "s3://bucket/lab": {"profile": "lab"},
    }
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps(table))
    assert storage_options_for("s3://bucket/lab/x", {"anon": True}) == {
        "endpoint_url": "http://a:9000",
        "region": "r2",
        "profile": "lab",
        "anon": True,
    }
    assert storage_options_for("s3://bucketful") == {
        "endpoint_url": "http://a:9000",
        "region": "r1",
    }
    assert storage_options_for("./local") == {}
    assert storage_options_for("s3://bucket", {"region": "explicit"})["region"] == "explicit"


def test_defaults_rank_below_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps({"s3": {"region": "from-env"}}))
    set_default_storage_options({"s3": {"region": "from-molcfg", "anon": True}})
    try:
        assert storage_options_for("s3://b") == {"region": "from-env", "anon": True}
    finally:
        set_default_storage_options(None)
    assert storage_options_for("s3://b") == {"region": "from-env"}


def test_malformed_environment_options_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, '{"s3": {"secret": "hunter2"')
    with pytest.raises(StorageError, match=f"{STORAGE_OPTIONS_ENV} is not valid JSON") as info:
        storage_options_for("s3://b")
    assert "hunter2" not in str(info.value)
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, '{"s3": "http://x"}')
    with pytest.raises(StorageError, match="URL scheme or URL prefix"):
        storage_options_for("s3://b")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"endpoint": "http://x"}, "unknown storage option.*endpoint.*accepted: endpoint_url"),
        ({"anon": "yes"}, "'anon' must be true or false"),
        ({"read_timeout": 0}, "'read_timeout' must be > 0"),
        ({"max_attempts": 1.5}, "'max_attempts' must be an integer"),
        ({"part_size": 1024}, "'part_size' must be at least"),
        ({"endpoint_url": "127.0.0.1:9000"}, "must be an http:// or https:// URL"),
        ({"addressing_style": "dns"}, "'addressing_style' must be"),
    ],
)
def test_bad_options_are_clear_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(StorageError, match=message):
        S3Options.parse(options)


@pytest.mark.parametrize(
    "url",
    ["s3://", "s3:///prefix", "s3://bucket/a//b", "s3://bucket/../up", "s3://b/x?versionId=1"],
)
def test_bad_urls_are_clear_errors(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(StorageError, match=r"S3 workspace URL|not an S3 URL"):
        S3Storage.from_url(url, **options)


# -- misconfiguration ------------------------------------------------------------------------------


def test_wrong_endpoint_names_the_url_and_the_endpoint(bucket: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        me.Workspace(f"s3://{bucket}/lab", storage_options={"endpoint_url": endpoint})
    message = str(info.value)
    assert f"cannot open s3://{bucket}/lab" in message
    assert f"cannot connect to the S3 endpoint {endpoint}" in message
    assert "endpoint_url" in message
    assert time.monotonic() - started < 15  # bounded retries with backoff, then a clear error


def test_missing_bucket_names_the_bucket_and_the_url(options: dict[str, Any]) -> None:
    with pytest.raises(StorageError) as info:
        me.Workspace("s3://no-such-bucket/lab", storage_options=options)
    message = str(info.value)
    assert "cannot open s3://no-such-bucket/lab" in message
    assert "the bucket 'no-such-bucket' does not exist" in message
    assert options["endpoint_url"] in message


def test_missing_credentials_are_a_clear_error(
    bucket: str, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no AWS credentials were found") as info:
        me.Workspace(f"s3://{bucket}/lab", storage_options=options)
    message = str(info.value)
    assert f"cannot open s3://{bucket}/lab" in message
    assert "AWS_ACCESS_KEY_ID" in message and "profile" in message and "anon=True" in message


def test_explicit_credentials_and_anonymous_access(
    s3_url: str, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = S3Storage.from_url(s3_url, **options, key="k", secret="s")
    storage.write_bytes("private", b"x")
    storage.write_bytes("public", b"y")
    storage.call("put_object_acl", "public", Key=storage.object_key("public"), ACL="public-read")
    anonymous = S3Storage.from_url(s3_url, **options, anon=True)
    assert anonymous.read_bytes("public") == b"y"
    with pytest.raises(StorageError, match=r"S3 read of .*/private failed: access denied by"):
        anonymous.read_bytes("private")


def test_unknown_profile_is_a_clear_error(bucket: str, options: dict[str, Any]) -> None:
    with pytest.raises(StorageError, match=r"profile.*could not be found.*AWS config files"):
        S3Storage.from_url(f"s3://{bucket}/x", **options, profile="no-such-profile")


def test_a_stalled_server_does_not_hang(moto: MotoServer, s3_url: str) -> None:
    storage = S3Storage.from_url(
        s3_url, endpoint_url=moto.endpoint, read_timeout=0.5, max_attempts=1
    )
    moto.pause()  # connections are accepted, never answered
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match=r"did not answer within 0.5 s"):
            storage.read_bytes("f")
        assert time.monotonic() - started < 5
    finally:
        moto.resume()
