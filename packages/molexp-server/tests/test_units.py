"""The server's pieces in-process: queries, the run index (local and remote-like stores), log
tails, content policy, the chart, and the layer boundary."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

import molexp as me
from molexp.server._chart import Point, nice_ticks, scatter_svg
from molexp.server._content import media_policy, read_from, tail_lines
from molexp.server._query import Filter, QueryError, RunQuery
from molexp.server._runindex import RunIndex


@pytest.fixture(params=["local", "memory"])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[me.Workspace]:
    """A workspace on local disk, and one on fsspec's memory store (which, like S3, has no local
    paths: the server then takes its remote code paths)."""
    if request.param == "local":
        yield me.Workspace(tmp_path / "lab", name="Lab")
        return
    url = f"memory://server-{uuid.uuid4().hex}/lab"
    yield me.Workspace(url, name="Lab")
    from fsspec.implementations.memory import MemoryFileSystem

    MemoryFileSystem().rm(url.removeprefix("memory://"), recursive=True)


def _sweep(ws: me.Workspace, n: int = 6) -> me.Experiment:
    exp = ws.Project("P").Experiment("E", params={"lr": 0.1})
    for i in range(n):
        run = exp.Run(parameters={"lr": 10.0**-i, "opt": {"name": "adam" if i % 2 else "sgd"}})
        with run.start() as ctx:
            ctx.set_result("loss", 1.0 / (i + 1))
    return exp


# ------------------------------------------------------------------------------------------------
# The run index
# ------------------------------------------------------------------------------------------------


def test_index_lists_runs_and_counts(ws: me.Workspace) -> None:
    exp = _sweep(ws)
    snapshot = RunIndex(exp).snapshot()
    assert [r.id for r in snapshot.rows] == [r.id for r in exp.list_runs()]
    assert snapshot.counts == {"succeeded": 6}
    assert snapshot.param_columns == ("lr", "opt.name")
    assert snapshot.result_columns == ("loss",)
    assert not snapshot.active


def test_index_sees_new_changed_and_removed_runs(ws: me.Workspace) -> None:
    exp = _sweep(ws, 2)
    index = RunIndex(exp)
    index.min_interval = index.max_stale = 0.0  # refresh before every answer
    first = index.snapshot()
    new = exp.Run(parameters={"lr": 5.0})
    second = index.snapshot()
    assert new.id in [r.id for r in second.rows] and second.version > first.version
    assert second.counts == {"succeeded": 2, "created": 1}
    with new.start() as ctx:
        running = index.snapshot()
        assert running.active and running.counts["running"] == 1
        ctx.set_result("loss", 9.0)
    done = index.snapshot()
    assert {r.id: r.status.value for r in done.rows}[new.id] == "succeeded"
    assert {r.id: r.results for r in done.rows}[new.id] == {"loss": 9.0}
    ws.storage.remove(f"{exp.key}/runs/run-{new.id}", recursive=True)
    assert new.id not in [r.id for r in index.snapshot().rows]
    unchanged = index.snapshot()
    assert index.snapshot() is unchanged  # nothing changed: the same snapshot object


def test_index_reads_only_what_changed_on_local_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = _sweep(me.Workspace(tmp_path / "lab"), 5)
    index = RunIndex(exp)
    index.min_interval = index.max_stale = 0.0
    index.snapshot()
    reads: list[str] = []
    original = index._read
    monkeypatch.setattr(index, "_read", lambda run_id: reads.append(run_id) or original(run_id))
    index.snapshot()
    assert reads == []
    run = exp.list_runs()[2]
    with run.start() as ctx:
        ctx.set_result("extra", 1)
    index.snapshot()
    assert reads == [run.id]


def test_a_little_stale_index_answers_at_once_and_refreshes_behind(tmp_path: Path) -> None:
    exp = _sweep(me.Workspace(tmp_path / "lab"), 2)
    index = RunIndex(exp)
    index.min_interval, index.max_stale = 0.0, 60.0
    first = index.snapshot()
    new = exp.Run(parameters={"lr": 5.0})
    assert index.snapshot() is first  # served at once, a refresh started behind it
    deadline = time.monotonic() + 10
    while new.id not in [r.id for r in index.snapshot().rows]:
        assert time.monotonic() < deadline, "the background refresh never landed"
        time.sleep(0.01)
    index.invalidate(new.id)
    with new.start() as ctx:
        ctx.set_result("loss", 1.0)
    # After invalidate, the next answer is refreshed first (a cancel shows up at once).
    assert {r.id: r.status.value for r in index.snapshot().rows}[new.id] == "succeeded"


def test_index_skips_a_corrupt_record_and_names_it(ws: me.Workspace) -> None:
    exp = _sweep(ws, 3)
    victim = exp.list_runs()[1]
    ws.storage.write_bytes(f"{victim.key}/run.json", b"{ not json")
    snapshot = RunIndex(exp).snapshot()
    assert len(snapshot.rows) == 2
    assert len(snapshot.problems) == 1 and "run.json" in snapshot.problems[0]
    assert "not valid JSON" in snapshot.problems[0]


def test_index_refuses_a_run_record_linking_out(tmp_path: Path) -> None:
    exp = _sweep(me.Workspace(tmp_path / "lab"), 2)
    outside = tmp_path / "outside.json"
    run = exp.list_runs()[0]
    record = Path(str(run.run_dir)) / "run.json"
    outside.write_bytes(record.read_bytes())
    record.unlink()
    record.symlink_to(outside)
    snapshot = RunIndex(exp).snapshot()
    assert [r.id for r in snapshot.rows] == [exp.list_runs()[1].id]
    assert "links outside the workspace" in snapshot.problems[0]


# ------------------------------------------------------------------------------------------------
# Queries
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "op", "value"),
    [
        ("param.lr>=0.01", "param.lr", ">=", 0.01),
        ("params.opt.name = adam", "param.opt.name", "=", "adam"),
        ("result.loss<1e-3", "result.loss", "<", 1e-3),
        ('label.kind="x y"', "label.kind", "=", "x y"),
        ("status!=failed", "status", "!=", "failed"),
        ("param.flag=true", "param.flag", "=", True),
    ],
)
def test_filter_parse(text: str, field: str, op: str, value: object) -> None:
    f = Filter.parse(text)
    assert (f.field, f.op, f.value) == (field, op, value)


@pytest.mark.parametrize("text", ["lr", "param.=1", "size>3", "=1"])
def test_filter_parse_errors(text: str) -> None:
    with pytest.raises(QueryError):
        Filter.parse(text)


def test_query_sort_filter_page(tmp_path: Path) -> None:
    exp = _sweep(me.Workspace(tmp_path / "lab"), 6)
    snapshot = RunIndex(exp).snapshot()
    q = RunQuery.build(filters=["param.opt.name=adam"], sort="result.loss", order="asc", limit=2)
    total, page = q.run(snapshot)
    assert total == 3
    assert [r.flat_results["loss"] for r in page] == [1 / 6, 1 / 4]
    assert q.run(snapshot) == (total, page)  # memoised
    everything = RunQuery.build(sort="param.lr", order="desc", limit=1000).all(snapshot)
    assert [r.flat_params["lr"] for r in everything] == sorted(
        (r.flat_params["lr"] for r in snapshot.rows), reverse=True
    )


def test_query_mixed_types_sort_without_error(tmp_path: Path) -> None:
    exp = me.Workspace(tmp_path / "lab").Project("P").Experiment("E")
    for value in [3, "b", None, 1.5, True, [1], "a"]:
        exp.Run(parameters={"v": value})
    exp.Run(parameters={"w": 1})
    snapshot = RunIndex(exp).snapshot()
    ordered = RunQuery.build(sort="param.v", order="asc").all(snapshot)
    values = [r.flat_params.get("v", "missing") for r in ordered]
    assert values[:6] == [1.5, 3, True, "a", "b", [1]]
    assert sorted(values[6:], key=str) == [None, "missing"]  # null and missing go last
    descending = RunQuery.build(sort="param.v", order="desc").all(snapshot)
    assert [r.flat_params.get("v", "missing") for r in descending][:2] == [[1], "b"]


# ------------------------------------------------------------------------------------------------
# Log tails and content
# ------------------------------------------------------------------------------------------------


def test_tail_and_follow_a_growing_log(ws: me.Workspace) -> None:
    storage = ws.storage
    key = "logs/train.log"
    storage.write_bytes(key, b"".join(f"line {i}\n".encode() for i in range(1000)))
    tail = tail_lines(storage, key, 3, max_bytes=100)
    assert tail.text == "line 997\nline 998\nline 999\n"
    assert tail.offset == tail.size == storage.size(key)
    with storage.open(key, "ab") as stream:
        stream.write(b"line 1000\nline 10")  # the last line is still being written
    more = read_from(storage, key, tail.offset)
    assert more.text == "line 1000\n"
    with storage.open(key, "ab") as stream:
        stream.write(b"01\n")
    assert read_from(storage, key, more.offset).text == "line 1001\n"
    storage.write_bytes(key, b"fresh\n")
    reset = read_from(storage, key, more.offset)
    assert reset.reset and reset.text == "fresh\n"


def test_one_huge_line_is_handed_over_in_pieces(ws: me.Workspace) -> None:
    ws.storage.write_bytes("big.log", b"x" * 1000)
    piece = read_from(ws.storage, "big.log", 0, max_bytes=300)
    assert piece.text == "x" * 300 and piece.offset == 300


@pytest.mark.parametrize(
    ("name", "encoding", "media_type", "inline", "preview"),
    [
        ("a.png", None, "image/png", True, "image"),
        ("a.JPG", None, "image/jpeg", True, "image"),
        ("a.svg", None, "application/octet-stream", False, "source"),
        ("a.html", "text", "application/octet-stream", False, "source"),
        ("a.js", None, "application/octet-stream", False, "source"),
        ("a.json", None, "application/json", True, "json"),
        ("state", "json", "application/json", True, "json"),
        ("notes", "text", "text/plain; charset=utf-8", True, "text"),
        ("x.csv", None, "text/plain; charset=utf-8", True, "text"),
        ("model.pt", "bytes", "application/octet-stream", False, "none"),
    ],
)
def test_media_policy(
    name: str, encoding: str | None, media_type: str, inline: bool, preview: str
) -> None:
    policy = media_policy(name, encoding)
    assert (policy.media_type, policy.inline, policy.preview) == (media_type, inline, preview)


# ------------------------------------------------------------------------------------------------
# The chart
# ------------------------------------------------------------------------------------------------


def test_nice_ticks() -> None:
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.27, 0.43)[0] <= 0.27 and nice_ticks(0.27, 0.43)[-1] >= 0.43
    assert nice_ticks(5, 5)[0] < 5 < nice_ticks(5, 5)[-1]


def test_chart_is_valid_escaped_svg() -> None:
    points = [
        Point(0.1, 0.5, "<r1>", "succeeded", "/p/a/e/b/r/r1"),
        Point(0.01, 0.3, "r2", "failed", "/p/a/e/b/r/r2"),
        Point(0.01, 0.4, "r3", "succeeded", "/p/a/e/b/r/r3"),
        Point(1.0, "n/a", "r4", "succeeded", "/p/a/e/b/r/r4"),
    ]
    svg, note = scatter_svg(points, "lr<x>", "loss&y", log_x=True)
    tree = ElementTree.fromstring(svg)  # well-formed XML, every string escaped
    circles = tree.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 3
    assert "<r1>" not in svg and "&lt;r1&gt;" in svg
    assert note == "1 run(s) without a numeric loss&y are not shown"
    assert "<script" not in svg
    assert tree.find(".//{http://www.w3.org/2000/svg}polyline") is not None  # the mean line


def test_chart_of_categories_and_of_nothing() -> None:
    points = [Point(name, float(i), f"r{i}", "succeeded", "/x") for i, name in enumerate("abcab")]
    svg, _ = scatter_svg(points, "model", "loss")
    assert svg.count("<circle") == 5 and ">a</text>" in svg and ">c</text>" in svg
    empty, _ = scatter_svg([], "x", "y")
    assert "no run has a numeric y" in empty


# ------------------------------------------------------------------------------------------------
# The app object and the layer boundary
# ------------------------------------------------------------------------------------------------


def test_create_app_accepts_a_workspace_object_or_path(tmp_path: Path) -> None:
    from molexp.server import create_app

    ws = me.Workspace(tmp_path / "lab")
    ws.Project("p")
    assert create_app(ws, warm=False).state.molexp.workspace is ws
    assert create_app(str(tmp_path / "lab"), warm=False).state.molexp.workspace.id == ws.id
    with pytest.raises(me.workspace.NotFoundError):
        create_app(tmp_path / "missing")


def test_importing_the_server_imports_no_upper_layer() -> None:
    code = (
        "import sys, molexp.server, molexp.server.__main__;"
        "bad = [m for m in sys.modules if m.split('.')[:2] in (['molexp', 'workflow'], "
        "['molexp', 'cli'])];"
        "assert not bad, bad"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    assert time.monotonic() - started < 30


def test_the_server_imports_only_public_workspace_names() -> None:
    """Private workspace modules may change at any release; the server uses the public API."""
    import ast

    import molexp.server

    private = []
    for source in Path(molexp.server.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "molexp.workspace._"
            ):
                private.append(f"{source.name}:{node.lineno} {node.module}")
    assert private == []


def test_api_models_write_non_finite_numbers_as_null(tmp_path: Path) -> None:
    """A workspace record keeps NaN; the JSON API writes plain JSON (null), as it always did."""
    from molexp.server._models import ExperimentOut

    exp = me.Workspace(tmp_path / "lab").Project("p").Experiment("e", params={"x": float("nan")})
    assert math.isnan(exp.metadata.model_dump(mode="json")["params"]["x"])
    out = ExperimentOut.of(exp, None).model_dump(mode="json")
    assert out["params"] == {"x": None} and "schema_version" not in out
