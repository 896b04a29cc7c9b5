"""Names, ids and storage keys: nothing a user types can place a byte outside the workspace.

DESIGN §3 "Names are validated": slugs are lowercase ASCII, an explicit id must be a safe path
segment, two names sharing a slug are an error, and no name can write outside its scope. Every
property is checked against a local workspace and an fsspec ``memory://`` one.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import fsspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import molexp as me
from molexp.workspace import InvalidNameError, StorageError, slugify
from molexp.workspace._names import MAX_ID_LENGTH, check_id
from molexp.workspace.storage import check_key

# On a failing example hypothesis' pytest plugin imports libcst, whose import warns (mypy_extensions
# TypedDict deprecation); under `filterwarnings = error` that would crash the session instead of
# reporting the failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

MEMFS = fsspec.filesystem("memory")


def _forget_memory(root: str) -> None:
    """Drop everything at or below ``root`` from the process-wide in-memory filesystem."""
    for key in [k for k in MEMFS.store if k == root or k.startswith(root + "/")]:
        MEMFS.store.pop(key, None)
    MEMFS.pseudo_dirs[:] = [
        d for d in MEMFS.pseudo_dirs if d != root and not d.startswith(root + "/")
    ]


ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_MISSING = object()


# -- a workspace on either backend, and every byte around it ---------------------------------


class Sandbox:
    """A fresh workspace, plus a snapshot of every byte its backend holds in and around it.

    Local: the workspace is ``<base>/outer/ws`` and snapshots cover all of ``<base>``, so a write
    that escapes the root by a few levels is seen. Memory: snapshots cover the whole (process-
    global) in-memory filesystem.
    """

    def __init__(self, backend: str, base: Path, *, fsync: bool = True) -> None:
        self.backend = backend
        self.base = base
        if backend == "local":
            (base / "outer").mkdir(parents=True, exist_ok=True)
            self.root = os.path.realpath(base / "outer" / "ws")
            self.ws = me.Workspace(self.root, storage_options={"fsync": fsync})
        else:
            self.ws = me.Workspace(f"memory://t-{uuid4().hex}")
            self.root = self.ws.storage.root  # type: ignore[attr-defined]

    def snapshot(self) -> dict[str, Any]:
        """path -> bytes for files, None for directories, ('link', target) for symlinks."""
        snap: dict[str, Any] = {}
        if self.backend == "local":
            for dirpath, dirnames, filenames in os.walk(self.base):
                for name in dirnames + filenames:
                    path = os.path.join(dirpath, name)
                    if os.path.islink(path):
                        snap[path] = ("link", os.readlink(path))
                    elif os.path.isdir(path):
                        snap[path] = None
                    else:
                        snap[path] = Path(path).read_bytes()
            return snap
        snap = {key: bytes(f.getvalue()) for key, f in MEMFS.store.items()}
        snap.update({d: None for d in MEMFS.pseudo_dirs if d not in snap})
        return snap

    def inside(self, path: str) -> bool:
        if self.backend == "local":
            real = os.path.realpath(path)
            return real == self.root or real.startswith(self.root + os.sep)
        return path == self.root or path.startswith(self.root + "/")

    def escaped(self, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
        """Paths created, changed or removed outside the workspace root."""
        changed = [p for p, v in after.items() if before.get(p, _MISSING) != v]
        changed += [p for p in before if p not in after]
        return sorted(p for p in changed if not self.inside(p))

    def symlinks(self) -> list[str]:
        if self.backend != "local":
            return []
        return [p for p, v in self.snapshot().items() if isinstance(v, tuple)]

    def close(self) -> None:
        if self.backend == "memory":
            _forget_memory(self.root)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="module", params=["local", "memory"])
def new_sandbox(request, tmp_path_factory):
    """A factory of fresh sandboxes (module-scoped, so hypothesis can call it per example)."""
    opened: list[Sandbox] = []

    def make() -> Sandbox:
        sb = Sandbox(request.param, tmp_path_factory.mktemp("names"), fsync=False)
        opened.append(sb)
        return sb

    yield make
    for sb in opened:
        sb.close()


@pytest.fixture(params=["local", "memory"])
def any_ws(request, tmp_path):
    with Sandbox(request.param, tmp_path) as sb:
        yield sb


def _attempt(fn, *args, errors=(InvalidNameError,)):
    """``(result, None)`` or ``(None, the error)``: for properties that allow either outcome."""
    try:
        return fn(*args), None
    except errors as exc:
        return None, exc


# -- strategies --------------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    ".",
    "..",
    "...",
    "../",
    "../..",
    "../../etc/passwd",
    "./x",
    "/abs",
    "/",
    "//x",
    "a/b",
    "a/../..",
    "a\\b",
    "..\\..",
    "\\",
    "C:\\x",
    "c:",
    "\x00",
    "a\x00b",
    "\n",
    "a\nb",
    "~",
    "~root",
    "-x",
    "-",
    "_x",
    ".hidden",
    ".git",
    "QM9",
    "qm9",
    "run-x",
    "%2e%2e",
    "é",
    "名前",
    "Ünïcödé Nämé",
    "\u2028",
    "\u202e",
    "ﬁle",
    "x" * (MAX_ID_LENGTH + 1),
    "x" * MAX_ID_LENGTH,
    "a.",
    "a..b",
    "ok-name_1.2",
]
PATHY = st.text(alphabet=st.sampled_from(list("aZ09./\\-_ ~:é\x00\n")), max_size=12)
# Lone surrogates: what os.fsdecode() makes of undecodable file names (surrogateescape).
SURROGATES = st.text(alphabet=st.characters(categories=["Cs", "Ll"]), min_size=1, max_size=6)
ANY_TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    PATHY,
    SURROGATES,
    st.lists(st.sampled_from([*NASTY, "a", "b"]), min_size=1, max_size=4).map("/".join),
)
KEY_TEXT = st.one_of(
    st.sampled_from(NASTY[:-3]),
    PATHY,
    st.lists(st.sampled_from(["a", "b", ".", "..", "", "c.d", "\\", "\x00"]), max_size=5).map(
        "/".join
    ),
)
SETTINGS = settings(max_examples=60, deadline=None)


# -- slugify and check_id ----------------------------------------------------------------------


@SETTINGS
@given(ANY_TEXT)
def test_slugify_gives_a_valid_id_or_a_clear_error(name):
    slug, exc = _attempt(slugify, name)
    if exc is not None:
        assert repr(name) in str(exc)
        assert "letters or digits" in str(exc)
        return
    assert ID_RE.fullmatch(slug), slug
    assert len(slug) <= MAX_ID_LENGTH
    assert slug.isascii() and slug == slug.lower()
    assert check_id(slug) == slug
    assert slugify(slug) == slug  # idempotent


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("QM9", "qm9"),
        ("My  Exp!", "my-exp"),
        ("Ünïcödé Nämé", "unicode-name"),
        ("../etc", "etc"),
        ("a/b\\c", "a-b-c"),
        ("-x-", "x"),
        ("ﬁle", "file"),
    ],
)
def test_slugify_examples(name, slug):
    assert slugify(name) == slug


@pytest.mark.parametrize("name", ["", "   ", "..", "/", "名前", "\x00", "---", "\u2028"])
def test_slugify_rejects_names_without_ascii_letters_or_digits(name):
    with pytest.raises(InvalidNameError, match=re.escape(repr(name))):
        slugify(name)


@pytest.mark.parametrize("value", [None, 3, b"qm9", ["qm9"]])
def test_slugify_and_check_id_reject_non_strings(value):
    with pytest.raises(InvalidNameError, match=type(value).__name__):
        slugify(value)
    with pytest.raises(InvalidNameError, match=type(value).__name__):
        check_id(value)


@SETTINGS
@given(st.one_of(ANY_TEXT, st.from_regex(r"[a-z0-9][a-z0-9._-]{0,140}", fullmatch=True)))
def test_check_id_accepts_exactly_safe_segments(value):
    expected = ID_RE.fullmatch(value) is not None and len(value) <= MAX_ID_LENGTH
    if not expected:
        with pytest.raises(InvalidNameError) as info:
            check_id(value)
        assert repr(value) in str(info.value)
        return
    assert check_id(value) == value
    # What "safe" means, independently of the regex above:
    assert value not in (".", "..")
    assert not any(c in value for c in "/\\\x00\n")
    assert value[0] not in "-."
    assert value.isascii() and value == value.lower()
    assert posixpath.basename(value) == value == posixpath.normpath(value)


@pytest.mark.parametrize(
    "value",
    [
        ".",
        "..",
        "...",
        "/",
        "a/b",
        "a\\b",
        "\x00",
        "a\x00",
        "QM9",
        "Abc",
        "-x",
        ".x",
        "_x",
        "",
        "a b",
        "abc\n",
        "é",
        "x" * (MAX_ID_LENGTH + 1),
    ],
)
def test_check_id_rejects_unsafe_segments(value):
    with pytest.raises(InvalidNameError, match="is not valid") as info:
        check_id(value, what="run id")
    assert repr(value) in str(info.value)
    assert "run id" in str(info.value)


@pytest.mark.parametrize("value", ["a", "0", "qm9", "a.b", "a..b", "x-1_2.3", "x" * MAX_ID_LENGTH])
def test_check_id_accepts_safe_segments(value):
    assert check_id(value) == value


# -- arbitrary text used as names and ids in a real workspace ----------------------------------

ROLES = ["project name", "project id", "experiment name", "experiment id", "run id"]


def _prepare(ws, role):
    if role.startswith("project"):
        return None
    exp = ws.Project("Base").Experiment("base")
    return exp


def _use(ws, parent, role, value):
    if role == "project name":
        return ws.Project(value)
    if role == "project id":
        return ws.Project("Some project", id=value)
    if role == "experiment name":
        return parent.project.Experiment(value)
    if role == "experiment id":
        return parent.project.Experiment("Some experiment", id=value)
    return parent.Run(parameters={"x": 1}, id=value)


@pytest.mark.parametrize("role", ROLES)
@SETTINGS
@given(value=ANY_TEXT, materialized=st.booleans())
def test_names_and_ids_never_write_outside_the_workspace(new_sandbox, role, value, materialized):
    with new_sandbox() as sb:
        ws = sb.ws
        if materialized:
            ws.materialize()
        parent = _prepare(ws, role)
        before = sb.snapshot()
        entity, exc = _attempt(_use, ws, parent, role, value)
        if exc is not None:
            assert repr(value) in str(exc), str(exc)
            assert sb.snapshot() == before, f"a rejected {role} {value!r} changed the store"
            return
        after = sb.snapshot()
        assert sb.escaped(before, after) == []
        assert sb.symlinks() == []
        # The entity landed where its id says, directly under its scope's directory.
        if role.startswith("project"):
            where, expected_dir = "projects", entity.id
        elif role.startswith("experiment"):
            where, expected_dir = f"{parent.project.key}/experiments", entity.id
        else:
            where, expected_dir = f"{parent.key}/runs", f"run-{entity.id}"
        if role.endswith("id"):
            assert entity.id == value
        else:
            assert entity.id == slugify(value)
            assert entity.name == value
        assert ws.storage.list(where) == sorted(
            {expected_dir} | ({"base"} if "experiment" in role else set())
        )
        new = [p for p in after if p not in before]
        assert all(sb.inside(p) for p in new)
        assert new or (role == "experiment name" and value == "base")  # "base" already existed


@pytest.mark.parametrize("role", ["project name", "experiment name"])
@pytest.mark.parametrize("value", ["a\ud800", "caf\udce9"])
def test_name_that_cannot_be_stored_as_utf8_is_a_clear_error(any_ws, role, value):
    """A lone surrogate (what os.fsdecode makes of an undecodable file name) cannot be written to
    a UTF-8 JSON file: it must be refused up front, naming the value, with nothing written."""
    parent = _prepare(any_ws.ws, "experiment name") if role == "experiment name" else None
    before = any_ws.snapshot()
    with pytest.raises(InvalidNameError) as info:
        _use(any_ws.ws, parent, role, value)
    assert repr(value) in str(info.value)
    assert any_ws.snapshot() == before


def test_sandbox_detects_escapes(any_ws):
    """The containment check above can fail: a write beside the root is reported."""
    before = any_ws.snapshot()
    if any_ws.backend == "local":
        outside = os.path.join(os.path.dirname(any_ws.root), "evil.txt")
        Path(outside).write_bytes(b"x")
    else:
        outside = any_ws.root + "-evil/x"
        MEMFS.pipe_file(outside, b"x")
    try:
        assert outside in any_ws.escaped(before, any_ws.snapshot())
    finally:
        if any_ws.backend == "memory":
            _forget_memory(any_ws.root + "-evil")


# -- slug collisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"), [("QM9", "qm9"), ("My Project", "my-project"), ("a b", "A  B!")]
)
def test_project_slug_collision_names_both(any_ws, first, second):
    ws = any_ws.ws
    project = ws.Project(first, description="first")
    assert ws.Project(first) is project
    before = any_ws.snapshot()
    with pytest.raises(InvalidNameError) as info:
        ws.Project(second, description="second")
    assert repr(first) in str(info.value) and repr(second) in str(info.value)
    assert any_ws.snapshot() == before
    # The same from another process's point of view (a fresh Workspace on the same root).
    with pytest.raises(InvalidNameError) as info:
        me.Workspace(ws.url).Project(second)
    assert repr(first) in str(info.value) and repr(second) in str(info.value)
    assert any_ws.snapshot() == before
    assert [p.name for p in me.Workspace(ws.url).list_projects()] == [first]


@pytest.mark.parametrize(("first", "second"), [("Energy Scan", "energy-scan"), ("E1", "e1")])
def test_experiment_slug_collision_names_both(any_ws, first, second):
    project = any_ws.ws.Project("P")
    exp = project.Experiment(first, params={"a": 1})
    assert project.Experiment(first) is exp
    before = any_ws.snapshot()
    with pytest.raises(InvalidNameError) as info:
        project.Experiment(second, params={"a": 1})
    assert repr(first) in str(info.value) and repr(second) in str(info.value)
    with pytest.raises(InvalidNameError) as info:
        me.Workspace(any_ws.ws.url).project("p").Experiment(second)
    assert repr(first) in str(info.value) and repr(second) in str(info.value)
    assert any_ws.snapshot() == before


@SETTINGS
@given(
    name=st.text(alphabet=st.sampled_from(list("abcXYZ019 _-")), min_size=1, max_size=15),
    variant=st.sampled_from(["swapcase", "punct", "upper"]),
)
def test_any_two_names_sharing_a_slug_collide(new_sandbox, name, variant):
    other = {"swapcase": name.swapcase(), "punct": f"!{name}!", "upper": name.upper()}[variant]
    try:
        slug = slugify(name)
    except InvalidNameError:
        return
    if other == name:
        return
    assert slugify(other) == slug
    with new_sandbox() as sb:
        sb.ws.Project(name)
        before = sb.snapshot()
        with pytest.raises(InvalidNameError) as info:
            sb.ws.Project(other)
        assert repr(name) in str(info.value) and repr(other) in str(info.value)
        assert sb.snapshot() == before


# -- storage keys ------------------------------------------------------------------------------


@SETTINGS
@given(KEY_TEXT)
def test_check_key_rejects_every_escape(key):
    checked, exc = _attempt(check_key, key, errors=(StorageError,))
    if exc is not None:
        assert repr(key) in str(exc)
        return
    assert checked == key
    if not key:
        return
    segments = key.split("/")
    assert all(s not in ("", ".", "..") for s in segments)
    assert "\\" not in key and "\x00" not in key
    joined = f"/root/{key}"
    assert posixpath.normpath(joined) == joined
    assert joined.startswith("/root/")


@pytest.mark.parametrize(
    "key",
    [
        "/",
        "/etc/passwd",
        "..",
        "../x",
        "a/../../x",
        "a/./b",
        "a//b",
        "a/",
        ".",
        "a\\..\\b",
        "a\x00b",
        "./a",
    ],
)
def test_check_key_rejects_examples(key):
    with pytest.raises(StorageError, match="must be a relative"):
        check_key(key)


def test_check_key_rejects_non_strings():
    with pytest.raises(StorageError, match="must be a string, got bytes"):
        check_key(b"a")  # type: ignore[arg-type]


@SETTINGS
@given(KEY_TEXT.filter(bool))
def test_storage_writes_stay_inside_the_root(new_sandbox, key):
    with new_sandbox() as sb:
        storage = sb.ws.storage
        before = sb.snapshot()
        _, exc = _attempt(storage.write_bytes, key, b"payload", errors=(StorageError,))
        if exc is not None:
            assert repr(key) in str(exc)
            assert sb.snapshot() == before
            with pytest.raises(StorageError):
                storage.read_bytes(key)
            return
        after = sb.snapshot()
        assert sb.escaped(before, after) == []
        assert storage.read_bytes(key) == b"payload"
        assert storage.list(posixpath.dirname(key)) == [posixpath.basename(key)]


@pytest.mark.parametrize("materialized", [False, True])
def test_storage_refuses_to_write_the_root_itself(any_ws, materialized):
    """The empty key names the workspace root: writing bytes there must not replace the root."""
    if materialized:
        any_ws.ws.materialize()
    before = any_ws.snapshot()
    with pytest.raises((StorageError, IsADirectoryError)):
        any_ws.ws.storage.write_bytes("", b"payload")
    assert any_ws.snapshot() == before
