"""The JSON API, against a real server process on a real workspace with a real sweep."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from server_testkit import LRS, Server, Sweep, loss_of

RUNS = "/api/projects/molecules/experiments/lr-sweep/runs"


def run_path(sweep: Sweep, run_id: str) -> str:
    return f"/api/projects/{sweep.project}/experiments/{sweep.experiment}/runs/{run_id}"


def test_health_and_openapi(server: Server) -> None:
    health = server.get_json("/api/health")
    assert health["status"] == "ok"
    spec = server.get_json("/api/openapi.json")
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in (
        "/api/workspace",
        "/api/projects/{project_id}/experiments/{experiment_id}/runs",
        "/api/projects/{project_id}/experiments/{experiment_id}/runs/{run_id}/error",
        "/api/assets",
        "/api/assets/{asset_id}/content",
        "/api/assets/{asset_id}/tail",
    ):
        assert path in paths, sorted(paths)
    assert (
        "post"
        in paths["/api/projects/{project_id}/experiments/{experiment_id}/runs/{run_id}/cancel"]
    )
    # Everything else is read-only.
    writes = [(p, m) for p, ops in paths.items() for m in ops if m not in ("get", "parameters")]
    assert writes == [
        ("/api/projects/{project_id}/experiments/{experiment_id}/runs/{run_id}/cancel", "post")
    ]
    # The human-readable list of endpoints needs no CDN.
    page = server.get("/api")
    assert (
        page.status == 200 and "/api/openapi.json" in page.text and "cdn" not in page.text.lower()
    )


EXPERIMENT_KEYS = [
    "id", "name", "project_id", "description", "params", "n_replicas", "seeds",
    "workflow_source", "workflow_type", "git_commit", "tags", "created_at",
    "run_total", "run_counts", "unreadable_runs",
]  # fmt: skip
PROJECT_KEYS = [
    "id", "name", "description", "owner", "tags", "config", "created_at", "experiments",
]  # fmt: skip
ASSET_KEYS = [
    "id", "kind", "name", "scope", "producer", "tags", "meta", "size", "content_hash",
    "encoding", "created_at", "media_type", "inline", "content_url", "tail_url",
]  # fmt: skip


def test_records_are_served_without_storage_details(server: Server, sweep: Sweep) -> None:
    """Experiments, projects and assets are the workspace's records, with what the API adds and
    without the schema version or where a payload is stored, in a fixed key order."""
    exp = server.get_json("/api/projects/molecules/experiments/lr-sweep")
    assert list(exp) == EXPERIMENT_KEYS
    assert list(server.get_json("/api/projects/molecules")) == PROJECT_KEYS
    log = server.get_json(f"/api/assets/{sweep.assets['log']}")
    assert list(log) == ASSET_KEYS
    assert log["tail_url"] == f"/api/assets/{sweep.assets['log']}/tail"
    assert log["size"] > 0
    schemas = server.get_json("/api/openapi.json")["components"]["schemas"]
    for name, keys, required in [
        ("ExperimentOut", EXPERIMENT_KEYS, ["id", "name", "project_id", "created_at"]),
        ("ProjectOut", PROJECT_KEYS, ["id", "name", "created_at"]),
        (
            "AssetOut",
            ASSET_KEYS,
            ["id", "kind", "name", "scope", "created_at", "media_type", "inline", "content_url"],
        ),
    ]:
        assert list(schemas[name]["properties"]) == keys, name
        assert schemas[name]["required"] == required, name
        assert "additionalProperties" not in schemas[name], name


def test_workspace_tree_counts_runs_by_status(server: Server) -> None:
    tree = server.get_json("/api/workspace")
    assert tree["name"] == "Lab"
    projects = {p["id"]: p for p in tree["projects"]}
    assert set(projects) == {"molecules", "empty-project"}
    assert projects["empty-project"]["experiments"] == []
    exps = {e["id"]: e for e in projects["molecules"]["experiments"]}
    assert exps["lr-sweep"]["run_total"] == 9
    assert exps["lr-sweep"]["run_counts"] == {"succeeded": 7, "failed": 1, "created": 1}
    assert exps["baseline"]["run_counts"] == {"succeeded": 1}


def test_projects_and_experiments(server: Server) -> None:
    assert [p["id"] for p in server.get_json("/api/projects")] == ["empty-project", "molecules"]
    project = server.get_json("/api/projects/molecules")
    assert project["owner"] == "ada"
    assert [e["id"] for e in project["experiments"]] == ["baseline", "lr-sweep"]
    exp = server.get_json("/api/projects/molecules/experiments/lr-sweep")
    assert exp["params"] == {"lr": 1e-3, "depth": 2, "model": "gcn"}
    assert server.get("/api/projects/nope").status == 404
    assert "no project 'nope'" in server.get("/api/projects/nope").json()["detail"]


def test_runs_default_order_is_newest_first(server: Server, sweep: Sweep) -> None:
    page = server.get_json(RUNS)
    assert page["total"] == 9
    assert [r["id"] for r in page["items"]] == sweep.run_ids[::-1]
    assert page["param_columns"] == ["lr", "depth", "model"]
    assert page["result_columns"] == ["loss", "accuracy"]


def test_runs_sort_by_result_puts_missing_last(server: Server) -> None:
    page = server.get_json(f"{RUNS}?sort=result.loss&order=asc")
    losses = [r["results"].get("loss") for r in page["items"]]
    present = [v for v in losses if v is not None]
    assert present == sorted(present) and len(present) == 7
    assert losses[-2:] == [None, None]  # the failed and the never-executed run
    desc = server.get_json(f"{RUNS}?sort=result.loss&order=desc")
    assert [r["results"].get("loss") for r in desc["items"]][:7] == sorted(present, reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", 1),
        ("status=succeeded,failed", 8),
        ("status=created&status=failed", 2),
        (f"filter={quote('param.lr>=0.01')}", 4),
        (f"filter={quote('param.model=gat')}", 1),
        (f"filter={quote('param.model!=gat')}", 8),
        (f"filter={quote('result.loss<0.3')}", 2),
        (f"filter={quote('param.depth=4')}&filter={quote('param.lr<0.01')}", 2),
        (f"filter={quote('params.model~GA')}", 1),
        ("q=gat", 1),
        ("status=cancelled", 0),
    ],
)
def test_runs_filters(server: Server, query: str, expected: int) -> None:
    assert server.get_json(f"{RUNS}?{query}")["total"] == expected


def test_runs_filter_by_lr_values(server: Server) -> None:
    for lr in LRS:
        page = server.get_json(
            f"{RUNS}?filter={quote(f'param.lr={lr}')}&sort=param.depth&order=asc"
        )
        assert [r["parameters"]["depth"] for r in page["items"]] == [2, 4]
        expected = [loss_of(lr, 2), loss_of(lr, 4) if lr != 0.1 else None]
        assert [r["results"].get("loss") for r in page["items"]] == expected


def test_runs_pagination_covers_every_run_once(server: Server, sweep: Sweep) -> None:
    seen = []
    offset = 0
    while True:
        page = server.get_json(f"{RUNS}?limit=4&offset={offset}&sort=id")
        seen.extend(r["id"] for r in page["items"])
        offset += 4
        if offset >= page["total"]:
            break
    assert seen == sorted(sweep.run_ids, key=str.lower)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("filter=lr", "FIELD OP VALUE"),
        (f"filter={quote('bogus=1')}", "unknown field 'bogus'"),
        ("sort=size", "unknown field 'size'"),
        ("status=done", "unknown status 'done'"),
    ],
)
def test_runs_bad_query_is_a_clear_400(server: Server, query: str, message: str) -> None:
    resp = server.get(f"{RUNS}?{query}")
    assert resp.status == 400
    assert message in resp.json()["detail"]


def test_runs_limit_is_bounded(server: Server) -> None:
    assert server.get(f"{RUNS}?limit=100000").status == 422
    assert server.get(f"{RUNS}?offset=-1").status == 422


def test_run_record_history_results_config(server: Server, sweep: Sweep) -> None:
    run_id = sweep.run_ids[0]
    record = server.get_json(run_path(sweep, run_id))
    assert record["liveness"] == "not-running"
    assert record["cancel_requested"] is False
    meta = record["run"]
    assert meta["id"] == run_id and meta["status"] == "succeeded"
    assert meta["parameters"] == sweep.params[run_id]
    assert meta["profile_name"] == "smoke" and meta["config"] == {"epochs": 3, "device": "cpu"}
    history = server.get_json(run_path(sweep, run_id) + "/history")
    assert [h["status"] for h in history["execution_history"]] == ["succeeded"]
    results = server.get_json(run_path(sweep, run_id) + "/results")
    assert results["loss"] == loss_of(1e-4, 2)
    config = server.get_json(run_path(sweep, run_id) + "/config")
    assert config["profile_name"] == "smoke" and config["config_hash"]


def test_failed_run_error_has_the_traceback(server: Server, sweep: Sweep) -> None:
    error = server.get_json(run_path(sweep, sweep.failed) + "/error")
    assert error["error"]["type"] == "FloatingPointError"
    assert "loss diverged at lr=0.1" in error["error"]["message"]
    assert "Traceback (most recent call last)" in error["traceback"]
    assert "FloatingPointError: loss diverged" in error["traceback"]
    assert list(error["tracebacks"]) == [error["error"]["execution_id"]]
    ok = server.get_json(run_path(sweep, sweep.run_ids[0]) + "/error")
    assert ok == {"error": None, "traceback": None, "tracebacks": {}}


def test_run_assets_and_logs(server: Server, sweep: Sweep) -> None:
    assets = server.get_json(run_path(sweep, sweep.run_ids[0]) + "/assets")
    names = {a["name"]: a for a in assets}
    assert {"metrics.json", "notes.txt", "curve.png", "report.html", "figure.svg", "train"} <= set(
        names
    )
    assert names["metrics.json"]["media_type"] == "application/json"
    assert names["report.html"]["inline"] is False
    logs = server.get_json(run_path(sweep, sweep.run_ids[0]) + "/logs")
    assert [log["name"] for log in logs] == ["train"]
    assert logs[0]["tail_url"] == f"/api/assets/{logs[0]['id']}/tail"


def test_catalog_queries(server: Server, sweep: Sweep) -> None:
    metrics = server.get_json("/api/assets?kind=artifact&name=metrics.json&limit=1000")
    assert len(metrics) == 7
    assert all(a["producer"]["project_id"] == "molecules" for a in metrics)
    one_run = server.get_json(f"/api/assets?producer_run={sweep.run_ids[0]}&kind=log")
    assert [a["name"] for a in one_run] == ["train"]
    traces = server.get_json("/api/assets?kind=error_trace")
    assert len(traces) == 1 and traces[0]["scope"]["run_id"] == sweep.failed
    assert server.get_json("/api/assets?kind=artifact&limit=2").__len__() == 2
    bad = server.get("/api/assets?kind=nonsense")
    assert bad.status == 400 and "kind is one of" in bad.json()["detail"]
    record = server.get_json(f"/api/assets/{sweep.assets['json']}")
    assert record["name"] == "metrics.json" and record["content_url"].endswith("/content")


@pytest.mark.parametrize(
    ("kind", "media_type", "disposition"),
    [
        ("json", "application/json", "inline"),
        ("text", "text/plain; charset=utf-8", "inline"),
        ("png", "image/png", "inline"),
        ("html", "application/octet-stream", "attachment"),
        ("svg", "application/octet-stream", "attachment"),
        ("bin", "application/octet-stream", "attachment"),
        ("log", "text/plain; charset=utf-8", "inline"),
    ],
)
def test_content_types_are_safe(
    server: Server, sweep: Sweep, kind: str, media_type: str, disposition: str
) -> None:
    resp = server.get(f"/api/assets/{sweep.assets[kind]}/content")
    assert resp.status == 200
    assert resp.headers["content-type"] == media_type
    assert resp.headers["content-disposition"].startswith(disposition)
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in resp.headers["content-security-policy"]
    assert int(resp.headers["content-length"]) == len(resp.body)
    forced = server.get(f"/api/assets/{sweep.assets[kind]}/content?download=1")
    assert forced.headers["content-disposition"].startswith("attachment")
    assert forced.body == resp.body


def test_png_bytes_are_served_unchanged(server: Server, sweep: Sweep) -> None:
    from server_testkit import tiny_png

    assert server.get(f"/api/assets/{sweep.assets['png']}/content").body == tiny_png()


def test_log_tail_and_follow(server: Server, sweep: Sweep) -> None:
    log_id = sweep.assets["log"]
    tail = server.get_json(f"/api/assets/{log_id}/tail?lines=2")
    assert tail["text"].splitlines() == [
        f"epoch=1 loss={loss_of(1e-4, 2) + 0.1:.4f}",
        f"epoch=2 loss={loss_of(1e-4, 2):.4f}",
    ]
    assert tail["offset"] == tail["size"]
    whole = server.get_json(f"/api/assets/{log_id}/tail?offset=0")
    assert len(whole["text"].splitlines()) == 3 and whole["offset"] == tail["size"]
    nothing = server.get_json(f"/api/assets/{log_id}/tail?offset={tail['size']}")
    assert nothing["text"] == "" and not nothing["reset"]
    past = server.get_json(f"/api/assets/{log_id}/tail?offset={tail['size'] + 100}")
    assert past["reset"] is True and past["offset"] == tail["size"]
    not_a_log = server.get(f"/api/assets/{sweep.assets['json']}/tail")
    assert not_a_log.status == 400 and "not a log" in not_a_log.json()["detail"]


def test_unknown_ids_are_404_and_invalid_ids_400(server: Server, sweep: Sweep) -> None:
    assert server.get(run_path(sweep, "nope")).status == 404
    assert server.get("/api/assets/0123456789abcdef").status == 404
    bad = server.get("/api/projects/Not%20An%20Id/experiments")
    assert bad.status == 400 and "is not valid" in bad.json()["detail"]
