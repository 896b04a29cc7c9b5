"""DESIGN §7 for the workspace layer: every bad input is a clear error that names the thing at
fault, and the workspace is left exactly as it was (every byte of every file compared)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import fsspec
import pytest

import molexp as me
from molexp.workspace import (
    ConflictError,
    CorruptRecordError,
    CorruptRecordWarning,
    InvalidNameError,
    NotFoundError,
    RunContext,
    SchemaVersionError,
    StorageError,
)
from molexp.workspace.storage import BackendInfo, installed_backends
from molexp.workspace.storage import _registry as registry

MEMFS = fsspec.filesystem("memory")


def _forget_memory(root: str) -> None:
    """Drop everything at or below ``root`` from the process-wide in-memory filesystem."""
    for key in [k for k in MEMFS.store if k == root or k.startswith(root + "/")]:
        MEMFS.store.pop(key, None)
    MEMFS.pseudo_dirs[:] = [
        d for d in MEMFS.pseudo_dirs if d != root and not d.startswith(root + "/")
    ]


class Sandbox:
    """A workspace on one backend plus a byte-exact snapshot of everything in and around it."""

    def __init__(self, backend: str, base: Path) -> None:
        self.backend = backend
        self.base = base
        if backend == "local":
            self.root = os.path.realpath(base / "lab")
            self.ws = me.Workspace(self.root, name="lab")
        else:
            self.ws = me.Workspace(f"memory://t-{uuid4().hex}", name="lab")
            self.root = self.ws.storage.root  # type: ignore[attr-defined]

    def path(self, key: str) -> str:
        """How error messages name the file at ``key``."""
        return os.path.join(self.root, key) if self.backend == "local" else f"{self.ws.url}/{key}"

    def write_raw(self, key: str, data: bytes) -> None:
        """Write bytes behind the workspace's back (a damaged or foreign file)."""
        if self.backend == "local":
            Path(self.root, key).write_bytes(data)
        else:
            MEMFS.pipe_file(f"{self.root}/{key}", data)

    def read_raw(self, key: str) -> bytes:
        if self.backend == "local":
            return Path(self.root, key).read_bytes()
        return bytes(MEMFS.cat_file(f"{self.root}/{key}"))

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {}
        if self.backend == "local":
            for dirpath, dirnames, filenames in os.walk(self.base):
                for name in dirnames:
                    snap[os.path.join(dirpath, name)] = None
                for name in filenames:
                    snap[os.path.join(dirpath, name)] = Path(dirpath, name).read_bytes()
            return snap
        snap = {key: bytes(f.getvalue()) for key, f in MEMFS.store.items()}
        snap.update({d: None for d in MEMFS.pseudo_dirs if d not in snap})
        return snap

    def reopen(self) -> me.Workspace:
        """The same workspace as another process would open it."""
        return me.Workspace.load(self.ws.url)

    def close(self) -> None:
        if self.backend == "memory":
            _forget_memory(self.root)


@pytest.fixture(params=["local", "memory"])
def any_ws(request, tmp_path):
    sb = Sandbox(request.param, tmp_path)
    yield sb
    sb.close()


class unchanged:  # noqa: N801 - reads as a sentence: `with unchanged(sb):`
    """Assert that the block leaves every byte in the sandbox as it was."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    def __enter__(self) -> None:
        self.before = self.sb.snapshot()

    def __exit__(self, *exc: object) -> None:
        after = self.sb.snapshot()
        added = sorted(set(after) - set(self.before))
        removed = sorted(set(self.before) - set(after))
        changed = sorted(k for k in self.before if k in after and after[k] != self.before[k])
        assert (added, removed, changed) == ([], [], []), "the failed call changed the store"


def _corruptions(original: bytes) -> dict[str, tuple[bytes, str]]:
    return {
        "not-json": (b"{not json at all", "not valid JSON"),
        "truncated": (original[: len(original) // 2], "not valid JSON"),
        "empty": (b"", "empty file"),
        "blank": (b"  \n", "empty file"),
        "list": (b"[1, 2]\n", "expected a JSON object, found list"),
        "string": (b'"run"\n', "expected a JSON object, found str"),
        "binary": (b"\xff\xfe\x00\x01garbage", "not valid JSON"),
        "missing-fields": (b'{"schema_version": 1}\n', "field 'id'"),
    }


CORRUPTIONS = list(_corruptions(b"").keys())


# -- corrupt records ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_run_json_is_named_and_the_other_runs_still_list(any_ws, kind):
    exp = any_ws.ws.Project("P").Experiment("E")
    ids = [exp.Run(parameters={"i": i}).id for i in range(3)]
    key = f"projects/p/experiments/e/runs/run-{ids[1]}/run.json"
    data, reason = _corruptions(any_ws.read_raw(key))[kind]
    any_ws.write_raw(key, data)
    where = any_ws.path(key)

    with unchanged(any_ws):
        exp2 = any_ws.reopen().project("p").experiment("e")
        with pytest.warns(CorruptRecordWarning) as caught:
            listed = exp2.list_runs()
        assert sorted(r.id for r in listed) == sorted([ids[0], ids[2]])
        assert [r.parameters["i"] for r in listed] == [0, 2]
        messages = [str(w.message) for w in caught if w.category is CorruptRecordWarning]
        assert len(messages) == 1
        assert where in messages[0] and reason in messages[0]

        with pytest.raises(CorruptRecordError) as info:
            exp2.get_run(ids[1])
        assert where in str(info.value) and reason in str(info.value)
        assert info.value.location == where
        # Asking for the run by its explicit id must not overwrite the damaged file.
        with pytest.raises(CorruptRecordError, match=re.escape(where)):
            exp2.Run(parameters={"i": 1}, id=ids[1])
        with pytest.raises(CorruptRecordError, match=re.escape(where)):
            exp2.run(id=ids[1])
        with pytest.raises(CorruptRecordError, match=re.escape(where)):
            RunContext.open(str(exp2.experiment_dir) + f"/runs/run-{ids[1]}")
    assert any_ws.read_raw(key) == data


@pytest.mark.parametrize("kind", ["truncated", "empty", "list", "missing-fields"])
def test_corrupt_project_json_is_named_and_the_other_projects_still_list(any_ws, kind):
    for name in ("A", "B", "C"):
        any_ws.ws.Project(name, description=f"project {name}")
    key = "projects/b/project.json"
    data, reason = _corruptions(any_ws.read_raw(key))[kind]
    any_ws.write_raw(key, data)
    where = any_ws.path(key)

    with unchanged(any_ws):
        ws2 = any_ws.reopen()
        with pytest.warns(CorruptRecordWarning, match=re.escape(where)):
            listed = ws2.list_projects()
        assert [p.id for p in listed] == ["a", "c"]
        assert [p.description for p in listed] == ["project A", "project C"]
        with pytest.raises(CorruptRecordError) as info:
            ws2.project("b")
        assert where in str(info.value) and reason in str(info.value)
        with pytest.raises(CorruptRecordError, match=re.escape(where)):
            ws2.Project("B")


@pytest.mark.parametrize("kind", ["not-json", "blank", "string"])
def test_corrupt_experiment_json_is_named_and_the_others_still_list(any_ws, kind):
    project = any_ws.ws.Project("P")
    for name in ("e1", "e2", "e3"):
        project.Experiment(name, params={"name": name})
    key = "projects/p/experiments/e2/experiment.json"
    data, reason = _corruptions(any_ws.read_raw(key))[kind]
    any_ws.write_raw(key, data)
    where = any_ws.path(key)

    with unchanged(any_ws):
        p2 = any_ws.reopen().project("p")
        with pytest.warns(CorruptRecordWarning, match=re.escape(where)):
            listed = p2.list_experiments()
        assert [(e.id, e.params) for e in listed] == [
            ("e1", {"name": "e1"}),
            ("e3", {"name": "e3"}),
        ]
        with pytest.raises(CorruptRecordError) as info:
            p2.experiment("e2")
        assert where in str(info.value) and reason in str(info.value)
        with pytest.raises(CorruptRecordError, match=re.escape(where)):
            p2.Experiment("e2", params={"name": "e2"})


@pytest.mark.parametrize("kind", ["truncated", "empty", "list"])
def test_corrupt_workspace_json_is_named(any_ws, kind):
    any_ws.ws.materialize()
    data, reason = _corruptions(any_ws.read_raw("workspace.json"))[kind]
    any_ws.write_raw("workspace.json", data)
    where = any_ws.path("workspace.json")
    with unchanged(any_ws):
        with pytest.raises(CorruptRecordError) as info:
            me.Workspace(any_ws.ws.url)
        assert where in str(info.value) and reason in str(info.value)
        with pytest.raises(CorruptRecordError, match=re.escape(where)):
            me.Workspace.load(any_ws.ws.url)


@pytest.mark.parametrize("level", ["workspace", "project", "experiment", "run"])
def test_newer_schema_version_is_a_clear_error_saying_upgrade(any_ws, level):
    ws = any_ws.ws
    exp = ws.Project("P").Experiment("E")
    other = exp.Run(parameters={"i": 0}).id
    run_id = exp.Run(parameters={"i": 1}).id
    ws.Project("Q")
    exp.project.Experiment("F")
    key = {
        "workspace": "workspace.json",
        "project": "projects/q/project.json",
        "experiment": "projects/p/experiments/f/experiment.json",
        "run": f"projects/p/experiments/e/runs/run-{run_id}/run.json",
    }[level]
    record = json.loads(any_ws.read_raw(key))
    record["schema_version"] = 99
    any_ws.write_raw(key, json.dumps(record).encode())
    where = any_ws.path(key)

    def check(info: pytest.ExceptionInfo[SchemaVersionError]) -> None:
        text = str(info.value)
        assert where in text and "99" in text and "upgrade" in text

    with unchanged(any_ws):
        if level == "workspace":
            with pytest.raises(SchemaVersionError) as info:
                me.Workspace(ws.url)
            check(info)
            return
        ws2 = any_ws.reopen()
        if level == "project":
            with pytest.raises(SchemaVersionError) as info:
                ws2.project("q")
            check(info)
            with pytest.warns(CorruptRecordWarning, match="upgrade"):
                assert [p.id for p in ws2.list_projects()] == ["p"]
        elif level == "experiment":
            with pytest.raises(SchemaVersionError) as info:
                ws2.project("p").experiment("f")
            check(info)
            with pytest.warns(CorruptRecordWarning, match="upgrade"):
                assert [e.id for e in ws2.project("p").list_experiments()] == ["e"]
        else:
            exp2 = ws2.project("p").experiment("e")
            with pytest.raises(SchemaVersionError) as info:
                exp2.get_run(run_id)
            check(info)
            with pytest.warns(CorruptRecordWarning, match="upgrade"):
                assert [r.id for r in exp2.list_runs()] == [other]


# -- missing things ----------------------------------------------------------------------------


def test_load_of_a_missing_local_workspace_names_the_path_and_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere" / "lab"
    with pytest.raises(NotFoundError) as info:
        me.Workspace.load(missing)
    assert str(missing) in str(info.value)
    assert list(tmp_path.iterdir()) == []
    # An existing directory without workspace.json is not a workspace either, and stays empty.
    missing.mkdir(parents=True)
    with pytest.raises(NotFoundError, match=re.escape(str(missing))):
        me.Workspace.load(missing)
    assert list(missing.iterdir()) == []


def test_load_of_a_missing_memory_workspace_names_the_url_and_creates_nothing():
    url = f"memory://t-{uuid4().hex}"
    before = (dict(MEMFS.store), list(MEMFS.pseudo_dirs))
    with pytest.raises(NotFoundError) as info:
        me.Workspace.load(url)
    assert url in str(info.value)
    assert (dict(MEMFS.store), list(MEMFS.pseudo_dirs)) == before


def test_run_context_open_on_a_path_that_is_not_a_run(any_ws, tmp_path):
    exp = any_ws.ws.Project("P").Experiment("E")
    exp.Run()
    with unchanged(any_ws):
        with pytest.raises(NotFoundError, match="is not a run directory"):
            RunContext.open(str(exp.experiment_dir))
        with pytest.raises(NotFoundError, match="no run 'nope'"):
            RunContext.open(f"{exp.experiment_dir}/runs/run-nope")
        with pytest.raises(NotFoundError, match="no experiment 'zzz'"):
            RunContext.open(f"{exp.project.project_dir}/experiments/zzz/runs/run-x")
    elsewhere = tmp_path / "other" / "projects" / "p" / "experiments" / "e" / "runs" / "run-x"
    with pytest.raises(NotFoundError, match=re.escape(str(tmp_path / "other"))):
        RunContext.open(elsewhere)
    assert not (tmp_path / "other").exists()


# -- storage backends --------------------------------------------------------------------------


def test_unknown_scheme_names_it_and_lists_the_installed_backends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError) as info:
        me.Workspace("nosuch://bucket/lab")
    text = str(info.value)
    assert "'nosuch'" in text
    installed = text.split("installed backends:", 1)[1]
    assert re.search(r"\bfile\b", installed) and re.search(r"\bmemory\b", installed)
    assert list(tmp_path.iterdir()) == []  # not mistaken for a local path "nosuch:/bucket/lab"


def test_s3_without_its_plugin_says_what_to_install(tmp_path, monkeypatch):
    real = registry._entry_points
    monkeypatch.setattr(
        registry, "_entry_points", lambda: {k: v for k, v in real().items() if k != "s3"}
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageError) as info:
        me.Workspace("s3://bucket/lab")
    assert "'s3'" in str(info.value)
    assert "pip install molexp-storage-s3" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def _fake_distribution(site: Path, name: str, entry_points: dict[str, str]) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[molexp.storage]\n{lines}")


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_distribution(
        site,
        "fakeplug",
        {
            "broken": "fakeplug_missing:Nope",
            "boom": "fakeplug_boom:Storage",
            "notstorage": "json:JSONDecoder",
        },
    )
    (site / "fakeplug_boom.py").write_text('raise RuntimeError("boom while importing")\n')
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("fakeplug_boom", None)


def test_entry_points_are_listed_without_being_imported(fake_plugins):
    found = {b.scheme: b for b in installed_backends()}
    assert found["broken"] == BackendInfo("broken", "fakeplug_missing:Nope", "fakeplug", "0.1")
    assert found["file"].distribution == "molexp-workspace"
    assert "memory" in found
    assert "fakeplug_boom" not in sys.modules
    # A broken plugin does not get in the way of the other backends.
    assert me.Workspace(f"memory://t-{uuid4().hex}").storage.scheme == "memory"


def test_plugin_that_fails_to_import_names_scheme_distribution_and_error(fake_plugins, tmp_path):
    with pytest.raises(StorageError) as info:
        me.Workspace("broken://somewhere/lab")
    text = str(info.value)
    assert "'broken'" in text and "fakeplug" in text
    assert "ModuleNotFoundError" in text and "fakeplug_missing" in text
    assert "pip install" in text

    with pytest.raises(StorageError) as info:
        me.Workspace("boom://somewhere/lab")
    text = str(info.value)
    assert "'boom'" in text and "fakeplug" in text and "RuntimeError: boom while importing" in text
    assert isinstance(info.value.__cause__, RuntimeError)

    with pytest.raises(StorageError, match=r"not a molexp\.workspace\.storage\.Storage subclass"):
        me.Workspace("notstorage://x")

    with pytest.raises(StorageError) as info:
        me.Workspace("nosuch://x")
    assert "broken" in str(info.value).split("installed backends:", 1)[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


# -- parameters and definitions ----------------------------------------------------------------

NOT_JSON = [
    pytest.param({"a": {1, 2}}, "set", id="set"),
    pytest.param({"a": object()}, "object", id="object"),
    pytest.param({"a": [1, b"raw"]}, "bytes", id="bytes-in-list"),
    pytest.param({"a": {"b": 1j}}, "complex", id="nested-complex"),
    pytest.param({1: "a"}, "keys must be strings", id="int-key"),
]


@pytest.mark.parametrize(("params", "problem"), NOT_JSON)
def test_run_parameters_that_are_not_json(any_ws, params, problem):
    exp = any_ws.ws.Project("P").Experiment("E")
    with unchanged(any_ws), pytest.raises(TypeError, match=problem) as info:
        exp.Run(parameters=params)
    assert "run parameters" in str(info.value)


@pytest.mark.parametrize(("params", "problem"), NOT_JSON)
def test_experiment_params_that_are_not_json(any_ws, params, problem):
    any_ws.ws.Project("P")
    with unchanged(any_ws), pytest.raises(TypeError, match=problem) as info:
        any_ws.ws.Project("P").Experiment("E", params=params)
    assert "experiment params" in str(info.value)


@pytest.mark.parametrize(("params", "problem"), NOT_JSON)
def test_new_project_config_that_is_not_json(any_ws, params, problem):
    with unchanged(any_ws), pytest.raises(TypeError, match=problem) as info:
        any_ws.ws.Project("P", config=params)
    assert "project config" in str(info.value)


@pytest.mark.parametrize(("params", "problem"), NOT_JSON)
def test_workflow_and_profile_config_that_are_not_json(any_ws, params, problem):
    run = any_ws.ws.Project("P").Experiment("E").Run()
    with unchanged(any_ws):
        with pytest.raises(TypeError, match=problem):
            run.set_workflow(params)
        with pytest.raises(TypeError, match=problem):
            run.start(profile_config=params)
    assert run.reload().metadata.workflow_snapshot is None and run.status == "created"


@pytest.mark.parametrize(("params", "problem"), NOT_JSON)
def test_new_run_workflow_snapshot_that_is_not_json(any_ws, params, problem):
    exp = any_ws.ws.Project("P").Experiment("E")
    with unchanged(any_ws), pytest.raises(TypeError, match=problem) as info:
        exp.Run(workflow_snapshot=params)
    assert "workflow snapshot" in str(info.value)


@pytest.mark.parametrize(("params", "problem"), NOT_JSON[:-1])
def test_result_that_is_not_json(any_ws, params, problem):
    run = any_ws.ws.Project("P").Experiment("E").Run()
    with run.start() as ctx:
        with unchanged(any_ws):
            with pytest.raises(TypeError, match=problem) as info:
                ctx.set_result("bad", params["a"])
            assert "result 'bad'" in str(info.value)
            with pytest.raises(ValueError, match="result key must be a non-empty string"):
                ctx.set_result(1, "value")  # type: ignore[arg-type]
        ctx.set_result("ok", 1)
    assert run.reload().results == {"ok": 1}


def test_params_with_a_lone_surrogate_are_refused_before_anything_is_written(any_ws):
    exp = any_ws.ws.Project("P").Experiment("E")
    with unchanged(any_ws), pytest.raises(TypeError, match="run parameters"):
        exp.Run(parameters={"path": "caf\udce9"})


@pytest.mark.parametrize(
    ("level", "kwargs", "field"),
    [
        ("project", {"tags": ["ok", 1]}, "tags"),
        ("project", {"description": 5}, "description"),
        ("project", {"owner": ["me"]}, "owner"),
        ("experiment", {"tags": [1]}, "tags"),
        ("experiment", {"workflow_source": 5}, "workflow_source"),
        ("run", {"labels": {"a": 1}}, "labels"),
    ],
)
def test_mistyped_metadata_is_refused_before_anything_is_written(any_ws, level, kwargs, field):
    """A wrong type for a metadata field is an error naming the field, raised before anything
    (not even workspace.json of a fresh workspace) is written."""
    ws = any_ws.ws
    parent = None
    if level == "experiment":
        parent = ws.Project("P")
    elif level == "run":
        parent = ws.Project("P").Experiment("E")
    calls = {
        "project": lambda: ws.Project("P", **kwargs),
        "experiment": lambda: parent.Experiment("E", **kwargs),
        "run": lambda: parent.Run(**kwargs),
    }
    with unchanged(any_ws), pytest.raises((TypeError, ValueError)) as info:
        calls[level]()
    assert field in str(info.value)


def test_a_string_is_never_a_list_of_values():
    with pytest.raises(TypeError, match=r"'lr' must be a list, got str 'abc'.*\['abc'\]"):
        me.GridSpace({"lr": "abc"})
    with pytest.raises(TypeError, match="'lr' must be a list"):
        me.UniformSpace({"lr": "abc"}, n_samples=2)


@pytest.mark.parametrize(("n", "seeds"), [(3, [1, 2]), (2, [1, 2, 3]), (1, [7, 8])])
def test_seeds_that_do_not_match_n_replicas(any_ws, n, seeds):
    project = any_ws.ws.Project("P")
    problem = f"seeds has {len(seeds)} values but n_replicas is {n}"
    with unchanged(any_ws), pytest.raises(ValueError, match=problem):
        project.Experiment("E", n_replicas=n, seeds=seeds)
    exp = project.Experiment("E", n_replicas=2)
    with unchanged(any_ws), pytest.raises(ValueError, match="seeds has"):
        exp.project.Experiment("E", n_replicas=n, seeds=seeds)
    assert exp.n_replicas == 2 and exp.seeds is None


@pytest.mark.parametrize(
    ("kwargs", "error", "problem"),
    [
        ({"n_replicas": 0}, ValueError, "n_replicas must be a whole number >= 1, got 0"),
        ({"n_replicas": True}, ValueError, "n_replicas must be a whole number"),
        ({"n_replicas": 2.0}, ValueError, "n_replicas must be a whole number"),
        ({"seeds": "123"}, TypeError, "seeds must be a list of integers, got str"),
        ({"seeds": [1.5, 2]}, TypeError, "seeds must be a non-empty list of integers"),
        ({"seeds": []}, TypeError, "seeds must be a non-empty list of integers"),
    ],
)
def test_bad_replica_policies(any_ws, kwargs, error, problem):
    project = any_ws.ws.Project("P")
    with unchanged(any_ws), pytest.raises(error, match=re.escape(problem)):
        project.Experiment("E", **kwargs)


def test_explicit_run_id_with_other_parameters_is_a_conflict(any_ws):
    exp = any_ws.ws.Project("P").Experiment("E")
    run = exp.Run(parameters={"lr": 0.1, "batch": 32}, id="baseline")
    with unchanged(any_ws):
        with pytest.raises(ConflictError) as info:
            exp.Run(parameters={"lr": 0.2, "batch": 32}, id="baseline")
        text = str(info.value)
        assert "'baseline'" in text and "0.1" in text and "0.2" in text
        exp2 = any_ws.reopen().project("p").experiment("e")
        with pytest.raises(ConflictError, match="'baseline'"):
            exp2.Run(parameters={"lr": 0.2, "batch": 32}, id="baseline")
        # The same parameters in another order, or none at all, load the existing run.
        assert exp.Run(parameters={"batch": 32, "lr": 0.1}, id="baseline") is run
        assert exp.Run(id="baseline") is run
        assert exp2.Run(parameters={"batch": 32, "lr": 0.1}, id="baseline").parameters == {
            "lr": 0.1,
            "batch": 32,
        }


def test_experiment_redeclared_with_other_params_is_a_conflict(any_ws):
    project = any_ws.ws.Project("P")
    exp = project.Experiment("Scan", params={"lr": 0.1, "layers": [1, 2]}, n_replicas=2)
    with unchanged(any_ws):
        with pytest.raises(ConflictError) as info:
            project.Experiment("Scan", params={"lr": 0.5, "layers": [1, 2]}, n_replicas=3)
        text = str(info.value)
        assert "'Scan'" in text and "0.1" in text and "0.5" in text
        with pytest.raises(ConflictError, match="'Scan'"):
            any_ws.reopen().project("p").Experiment("Scan", params={"lr": 0.5})
        with pytest.raises(ConflictError, match="same dict"):
            project.Experiment("Scan", params={"lr": 0.1}, parameter_space={"lr": 0.2})
        assert project.Experiment("Scan", params={"layers": [1, 2], "lr": 0.1}) is exp
        assert project.Experiment("Scan") is exp
    assert exp.n_replicas == 2


def test_workspace_opened_under_another_name_is_a_conflict(any_ws):
    any_ws.ws.materialize()
    with unchanged(any_ws), pytest.raises(ConflictError) as info:
        me.Workspace(any_ws.ws.url, name="other")
    assert "'lab'" in str(info.value) and "'other'" in str(info.value)


@pytest.mark.parametrize("bad", [None, 3, "", "  ", "two\nlines", "nul\x00"])
def test_names_that_are_not_single_line_text(any_ws, bad):
    with unchanged(any_ws):
        with pytest.raises(InvalidNameError, match="project name"):
            any_ws.ws.Project(bad)
        if bad is not None:
            with pytest.raises(InvalidNameError, match="workspace name"):
                me.Workspace(any_ws.ws.url, name=bad)
