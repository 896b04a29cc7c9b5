"""The pages in a real browser (headless Chromium through Playwright), against the real server.

Each test saves screenshots of what it saw (see the ``shots`` fixture for where).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_testkit import TOKEN, Server, Sweep, start_server, stop_server

import molexp as me

WRITER = Path(__file__).resolve().parent.parent / "live_writer.py"


def _rows(page: Any) -> Any:
    return page.locator("#runs table.runs tbody tr[data-run]")


def test_tree_shows_counts_and_leads_to_the_runs(page: Any, server: Server, shots: Path) -> None:
    page.goto(server.url)
    lr_sweep = page.locator('li.tree-experiment[data-experiment="molecules/lr-sweep"]')
    assert "9 runs" in lr_sweep.inner_text()
    assert lr_sweep.locator(".count.st-failed").inner_text() == "1 failed"
    assert lr_sweep.locator(".count.st-succeeded").inner_text() == "7 succeeded"
    assert "no experiments" in page.locator("li.tree-project").first.inner_text()
    page.screenshot(path=shots / "tree.png", full_page=True)
    lr_sweep.locator("a.tree-name").click()
    page.wait_for_url(re.compile(r"/p/molecules/e/lr-sweep$"))
    assert _rows(page).count() == 9


def test_runs_table_sorts_and_filters_on_the_server(page: Any, server: Server, shots: Path) -> None:
    page.goto(f"{server.url}p/molecules/e/lr-sweep")
    assert _rows(page).count() == 9
    assert page.locator("table.runs thead th.param").all_inner_texts() == ["lr", "depth", "model"]
    page.locator("table.runs thead th.result a", has_text="loss").click()
    page.wait_for_url(re.compile(r"sort=result.loss&order=desc"))
    losses = [v for v in _result_column(page, "loss") if v is not None]
    assert losses == sorted(losses, reverse=True) and len(losses) == 7
    page.locator("table.runs thead th.result a", has_text="loss").click()
    page.wait_for_url(re.compile(r"order=asc"))
    ascending = _result_column(page, "loss")
    assert ascending[:7] == sorted(losses) and ascending[7:] == [None, None]
    page.screenshot(path=shots / "runs-sorted.png", full_page=True)
    page.locator("input.filter-input").last.fill("param.lr>=0.01")
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url(re.compile(r"filter=param.lr"))
    assert _rows(page).count() == 4
    assert page.locator(".total-matching").inner_text() == "4"
    page.locator("#filters label.st-failed input").check()
    page.locator("#filters button[type=submit]").click()
    page.wait_for_url(re.compile(r"status=failed"))
    assert _rows(page).count() == 1
    assert page.locator("#runs .badge.st-failed").count() == 1
    page.screenshot(path=shots / "runs-filtered.png", full_page=True)


def _result_column(page: Any, name: str) -> list[float | None]:
    headers = page.locator("table.runs thead th").all_inner_texts()
    index = next(i for i, h in enumerate(headers) if h.split(" ")[0] == name)
    texts = page.locator(
        f"table.runs tbody tr[data-run] td:nth-child({index + 1})"
    ).all_inner_texts()
    return [float(t) if t.strip() else None for t in texts]


def test_failed_run_page_shows_the_traceback(
    page: Any, server: Server, sweep: Sweep, shots: Path
) -> None:
    page.goto(f"{server.url}p/molecules/e/lr-sweep")
    page.locator(f'tr[data-run="{sweep.failed}"] a').first.click()
    page.wait_for_url(re.compile(f"/r/{sweep.failed}$"))
    assert page.locator("h1 .badge").inner_text() == "failed"
    error = page.locator("section.error")
    assert "FloatingPointError: loss diverged at lr=0.1" in error.inner_text()
    traceback = error.locator("pre.traceback").inner_text()
    assert traceback.startswith("Traceback (most recent call last)")
    assert 'raise FloatingPointError(f"loss diverged at lr={lr}")' in traceback
    history = page.locator("section.history tbody tr")
    assert history.count() == 1 and "failed" in history.inner_text()
    assert '"epochs": 3' in page.locator("section.config pre").inner_text()
    assert "epoch=2" in page.locator("pre.log").inner_text()
    page.screenshot(path=shots / "failed-run.png", full_page=True)


def test_compare_selected_runs_with_a_chart(
    page: Any, server: Server, sweep: Sweep, shots: Path
) -> None:
    page.goto(f"{server.url}p/molecules/e/lr-sweep?sort=param.lr&order=asc")
    chosen = [r for r in sweep.run_ids if sweep.params.get(r, {}).get("depth") == 2]
    for run_id in chosen:
        page.locator(f'tr[data-run="{run_id}"] input[name=run]').check()
    page.locator("#compare-button").click()
    page.wait_for_url(re.compile(r"/compare\?"))
    assert page.locator("table.compare thead th code").count() == 4
    differs = page.locator("table.compare tr.differs th").all_inner_texts()
    assert "lr" in differs and "loss" in differs and "depth" not in differs
    page.locator("select[name=x]").select_option("param.lr")
    page.locator("select[name=y]").select_option("result.loss")
    page.locator("input[name=logx]").check()
    page.locator("#chart-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"logx=1"))
    chart = page.locator("svg.chart")
    assert chart.locator("circle").count() == 4
    assert chart.locator("polyline.chart-mean").count() == 1
    assert "lr (log)" in chart.text_content()
    tooltips = chart.locator("circle title").all_text_contents()
    assert all("loss=" in t for t in tooltips)
    page.screenshot(path=shots / "compare-chart.png", full_page=True)


def test_experiment_chart_of_all_runs(page: Any, server: Server, shots: Path) -> None:
    page.goto(f"{server.url}p/molecules/e/lr-sweep")
    page.locator("#chart-form select[name=x]").select_option("param.depth")
    page.locator("#chart-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/chart\?"))
    assert page.locator("svg.chart circle").count() == 7  # runs with a numeric loss
    assert "not shown" in page.locator("figcaption").inner_text()
    page.screenshot(path=shots / "experiment-chart.png", full_page=True)


def test_catalog_search_and_asset_previews(
    page: Any, server: Server, sweep: Sweep, shots: Path
) -> None:
    page.goto(f"{server.url}catalog")
    page.locator("select[name=kind]").select_option("artifact")
    page.locator("input[name=name]").fill("metrics.json")
    page.locator("#catalog-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"name=metrics.json"))
    assert page.locator("table.catalog tbody tr[data-asset]").count() == 7
    page.screenshot(path=shots / "catalog.png", full_page=True)
    page.goto(f"{server.url}assets/{sweep.assets['png']}")
    image = page.locator("img.preview-image")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 24
    page.goto(f"{server.url}assets/{sweep.assets['json']}")
    assert '"loss":' in page.locator("pre.json").inner_text()
    # HTML and SVG are shown as source text, and their scripts never run (the page fixture
    # fails the test on any dialog).
    for kind in ("html", "svg"):
        page.goto(f"{server.url}assets/{sweep.assets[kind]}")
        assert "<script>alert" in page.locator("pre.source").inner_text()
    page.goto(f"{server.url}p/molecules/e/lr-sweep/r/{sweep.run_ids[0]}")
    page.locator("tr.asset-row", has_text="curve.png").locator("summary").click()
    assert page.locator("tr.asset-row", has_text="curve.png").locator("img").is_visible()
    page.screenshot(path=shots / "run-assets.png", full_page=True)


# ------------------------------------------------------------------------------------------------
# Pages that follow a run while it executes
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A fresh workspace, its server, and a run executing in another process that writes a log
    line every 0.2 s until told to stop."""
    root = tmp_path / "lab"
    me.Workspace(root, name="Live").Project("live").Experiment("stream", params={"n": 0})
    server = start_server(root)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(root), str(stop)],
        stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert writer.stdout is not None
    run_id = writer.stdout.readline().strip()
    try:
        yield {"server": server, "run": run_id, "stop": stop, "writer": writer, "root": root}
    finally:
        stop.touch()
        try:
            writer.wait(timeout=30)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
            writer.stdout.close()
            stop_server(server)


def _wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("timed out waiting for the page to change")


def test_log_tail_grows_and_pages_follow_the_run(
    browser: Any, page: Any, live: dict[str, Any], shots: Path
) -> None:
    server: Server = live["server"]
    run_id = live["run"]
    runs_page = browser.new_page(viewport={"width": 1280, "height": 700})
    runs_page.goto(f"{server.url}p/live/e/stream")
    assert runs_page.locator(f'tr[data-run="{run_id}"] .badge').inner_text() == "running"
    assert runs_page.locator(".live-dot").is_visible()

    page.goto(f"{server.url}p/live/e/stream/r/{run_id}")
    log = page.locator("#logs pre.log").first
    page.evaluate("window.molexpNotReloaded = true")
    _wait_for(lambda: "line 3" in log.inner_text())
    first = log.inner_text()
    page.screenshot(path=shots / "live-log-1.png", full_page=True)
    # It grows while the run writes, without reloading the page.
    _wait_for(lambda: len(log.inner_text().splitlines()) >= len(first.splitlines()) + 5)
    grown = log.inner_text()
    assert grown.startswith(first)
    assert page.evaluate("window.molexpNotReloaded") is True
    lines = grown.splitlines()
    assert lines == [f"line {i}" for i in range(len(lines))], "lines lost or repeated"
    page.screenshot(path=shots / "live-log-2.png", full_page=True)

    live["stop"].touch()
    # The run finishes: both pages show it by themselves.
    badge = page.locator("#run-live h1 .badge").first
    _wait_for(lambda: badge.inner_text() == "succeeded", timeout=20)
    row_badge = runs_page.locator(f'tr[data-run="{run_id}"] .badge')
    _wait_for(lambda: row_badge.inner_text() == "succeeded", timeout=20)
    final_lines = int(page.locator("section.results td").first.inner_text())
    _wait_for(lambda: len(log.inner_text().splitlines()) == final_lines, timeout=10)
    page.screenshot(path=shots / "live-log-done.png", full_page=True)
    runs_page.screenshot(path=shots / "live-runs-done.png", full_page=True)
    runs_page.close()


def test_cancel_from_the_run_page(page: Any, live: dict[str, Any], shots: Path) -> None:
    server: Server = live["server"]
    run_id = live["run"]
    page.goto(f"{server.url}p/live/e/stream/r/{run_id}")
    page.locator("details.cancel summary").click()
    page.locator("input[name=confirm]").fill("not-the-id")
    page.locator("button.danger").click()
    assert "type the run id" in page.locator(".flash-error").inner_text()
    page.go_back()
    page.reload()
    page.locator("details.cancel summary").click()
    page.locator("input[name=confirm]").fill(run_id)
    page.screenshot(path=shots / "cancel-form.png", full_page=True)
    page.locator("button.danger").click()
    page.wait_for_url(re.compile(r"cancel=requested"))
    assert "Cancel requested" in page.locator(".flash-info").inner_text()
    assert live["writer"].wait(timeout=30) == 0
    badge = page.locator("#run-live h1 .badge").first
    _wait_for(lambda: badge.inner_text() == "cancelled", timeout=20)
    page.screenshot(path=shots / "cancelled.png", full_page=True)


def test_token_in_the_url_once_then_cookie(browser: Any, sweep: Sweep, shots: Path) -> None:
    server = start_server(sweep.root, token=TOKEN)
    try:
        context = browser.new_context()
        tab = context.new_page()
        response = tab.goto(server.url)
        assert response.status == 401
        assert "needs its token" in tab.inner_text("body")
        tab.goto(f"{server.url}?token={TOKEN}")
        assert tab.url == server.url  # the token left the address bar
        assert "lr-sweep" in tab.inner_text("body")
        tab.locator("a.tree-name", has_text="lr-sweep").click()
        assert tab.locator("#runs table.runs tbody tr[data-run]").count() == 9
        tab.screenshot(path=shots / "token.png")
        context.close()
    finally:
        stop_server(server)
