"""The ``storage:`` section of molcfg.yaml: the storage options workspaces are opened with, in
`molexp run` and in the `molexp execute` processes it starts (real executable, real moto S3)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from molexp.cli import load_profile

FSYNC_SCRIPT = """
wf = workflow(name="probe")


@wf.task
def probe(ctx: TaskContext) -> None:
    ctx.set_result("fsync", ctx.run_context.run.storage.fsync)


spec = wf.build()
ws = me.Workspace(HERE / "lab")
spec.bind_to(ws.Project("p").Experiment("e", n_replicas=2))
me.entry(ws)
"""

FSYNC_CONFIG = """\
storage:
  file: {fsync: false}
profiles:
  durable:
    storage:
      file: {fsync: true}
  other: {}
"""


def test_storage_options_reach_the_runs_here_and_in_child_processes(cli, script, tmp_path):
    script("probe.py", FSYNC_SCRIPT)
    (tmp_path / "molcfg.yaml").write_text(FSYNC_CONFIG)
    assert cli("run", "probe.py").code == 0
    assert cli("run", "probe.py", "--profile", "durable").code == 0
    children = cli("run", "probe.py", "--profile", "other", "--jobs", "2")  # `molexp execute`
    assert children.code == 0, children
    listed = cli("runs", "list", "--json", "-w", "lab")
    assert listed.code == 0, listed
    seen = sorted((run["profile"] or "-", run["results"]["fsync"]) for run in listed.json())
    assert seen == [
        ("-", False),
        ("-", False),
        ("durable", True),
        ("durable", True),
        ("other", False),
        ("other", False),
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "storage:\n  file: {fsnyc: false}\n",
            (
                "molcfg.yaml: storage.file: unknown storage option(s) fsnyc for local workspaces; "
                "accepted: fsync"
            ),
        ),
        (
            "storage:\n  file: {fsync: 'no'}\n",
            "molcfg.yaml: storage.file.fsync must be true or false, got str 'no'",
        ),
        (
            "profiles:\n  fast:\n    storage:\n      local: {sync: 1}\n",
            "molcfg.yaml: profiles.fast.storage.local: unknown storage option(s) sync",
        ),
        ("storage: [s3]\n", "molcfg.yaml: storage must be a mapping, got a list"),
        (
            "storage:\n  /data/lab: {fsync: false}\n",
            "molcfg.yaml: storage has the key '/data/lab', which is neither a URL scheme",
        ),
        (
            "storage:\n  s3: http://127.0.0.1:9000\n",
            "molcfg.yaml: storage.s3 must map storage option names to values",
        ),
    ],
)
def test_bad_storage_sections_are_refused_before_anything_runs(
    cli, script, tmp_path, config, message
):
    script("probe.py", FSYNC_SCRIPT)
    (tmp_path / "molcfg.yaml").write_text(config)
    result = (
        cli("run", "probe.py", "--profile", "fast") if "fast" in config else cli("run", "probe.py")
    )
    assert result.code == 1, result
    assert result.err.startswith("error: "), result
    assert message in result.err, result
    assert len(result.err.splitlines()) == 1, result
    assert not (tmp_path / "lab").exists()


def test_a_bad_inherited_table_is_a_clear_error(cli, tmp_path):
    result = cli("execute", "nowhere", env={"MOLEXP_STORAGE_DEFAULTS": "{not json"})
    assert result.code == 1, result
    assert "error: the environment variable MOLEXP_STORAGE_DEFAULTS is not valid JSON" in result.err
    assert "{not json" not in result.err  # it may hold credentials


def test_storage_merges_along_extends_and_stays_out_of_the_config(tmp_path):
    path = tmp_path / "molcfg.yaml"
    path.write_text(
        """\
defaults: {lr: 0.1}
storage:
  s3: {region: eu-central-1, read_timeout: 30}
profiles:
  minio:
    storage:
      s3: {endpoint_url: "http://minio:9000"}
  slow:
    extends: minio
    storage:
      s3: {read_timeout: 300}
      s3://archive: {profile: archive}
"""
    )
    plain = load_profile(config=path)
    slow = load_profile("slow", config=path)
    assert plain.storage == {"s3": {"region": "eu-central-1", "read_timeout": 30}}
    assert slow.storage == {
        "s3": {"region": "eu-central-1", "read_timeout": 300, "endpoint_url": "http://minio:9000"},
        "s3://archive": {"profile": "archive"},
    }
    assert slow.config == plain.config == {"lr": 0.1}
    assert slow.config_hash == plain.config_hash


# -- S3 -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto S3 server with the bucket ``cli-storage``: its endpoint, and an environment with
    test credentials and no storage options (those come from molcfg.yaml here)."""
    import os

    from molexp_storage_s3.testing import TEST_CREDENTIALS, MotoServer

    with MotoServer() as server:
        server.create_bucket("cli-storage")
        env = {
            **TEST_CREDENTIALS,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        yield server.endpoint, env


S3_SCRIPT = """
wf = workflow(name="s3")


@wf.task
def square(ctx: TaskContext) -> None:
    ctx.set_result("square", ctx.params["replica"] ** 2)


spec = wf.build()
ws = me.Workspace("{url}")
spec.bind_to(ws.Project("p").Experiment("e", n_replicas=2))
me.entry(ws)
"""


def test_an_s3_endpoint_from_molcfg_reaches_run_and_execute(cli, script, tmp_path, moto):
    from molexp_storage_s3.testing import free_port

    endpoint, env = moto
    cli.env.update(env)
    url = f"s3://cli-storage/lab-{uuid.uuid4().hex[:8]}"
    script("s3.py", S3_SCRIPT.replace("{url}", url))
    closed = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "molcfg.yaml").write_text(
        f"storage:\n  s3: {{endpoint_url: '{endpoint}'}}\n"
        f"profiles:\n  offline:\n    storage:\n"
        f"      s3: {{endpoint_url: '{closed}', max_attempts: 1}}\n"
    )
    result = cli("run", "s3.py", "--jobs", "2")  # each run in a `molexp execute` child
    assert result.code == 0, result
    offline = cli("run", "s3.py", "--profile", "offline")
    assert offline.code == 1, offline
    assert closed in offline.err, offline
    assert offline.err.startswith("error: the script") and len(offline.err.splitlines()) == 1
    listed = cli(
        "runs",
        "list",
        "--json",
        "-w",
        url,
        env={"MOLEXP_STORAGE_OPTIONS": json.dumps({"s3": {"endpoint_url": endpoint}})},
    )
    assert listed.code == 0, listed
    runs = listed.json()
    assert sorted((r["status"], r["results"]["square"]) for r in runs) == [
        ("succeeded", 0),
        ("succeeded", 1),
    ]
