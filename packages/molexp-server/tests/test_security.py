"""Safety of the server, against real server processes: no file outside the workspace, tokens,
host names, safe content, and the one confirmed action (cancel)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_testkit import TOKEN, Server, start_server, stop_server

import molexp as me

SECRET = "TOPSECRET-7f3a-MARKER"
WRITER = Path(__file__).parent / "live_writer.py"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace with hostile content: links out of it, markup in parameters, a directory
    artifact hiding a link, and runs this module may cancel."""
    base = tmp_path_factory.mktemp("scratch")
    secret = base / "secret.txt"
    secret.write_text(f"{SECRET}\n")
    root = base / "lab"
    ws = me.Workspace(root, name="Scratch")
    exp = ws.Project("hostile").Experiment("xss", params={"name": "x"})
    run = exp.Run(parameters={"name": "<script>alert('p')</script>", "n": 1})
    payload_dir = base / "payload"
    payload_dir.mkdir()
    (payload_dir / "ok.txt").write_text("fine\n")
    with run.start() as ctx:
        ctx.set_result("<img src=x onerror=alert(1)>", 1.0)
        leak = ctx.artifact.save("leak.txt", "harmless for now\n")
        tree = ctx.artifact.save("tree", payload_dir)
    # After the fact, an artifact payload is replaced by a link pointing out of the workspace,
    # and the directory artifact gains one.
    assert leak.path is not None and tree.path is not None
    leak.path.unlink()
    leak.path.symlink_to(secret)
    (tree.path / "escape.txt").symlink_to(secret)
    linked = ws.data_assets.import_asset("linked-data", secret, action="symlink")
    to_cancel = exp.Run(parameters={"name": "cancel me", "n": 2})
    by_form = exp.Run(parameters={"name": "cancel me by form", "n": 3})
    return {
        "root": root,
        "secret": secret,
        "run": run.id,
        "leak": leak.id,
        "tree": tree.id,
        "linked": linked.id,
        "to_cancel": to_cancel.id,
        "by_form": by_form.id,
    }


@pytest.fixture(scope="module")
def srv(scratch: dict[str, Any]) -> Iterator[Server]:
    server = start_server(scratch["root"])
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def token_srv(scratch: dict[str, Any]) -> Iterator[Server]:
    server = start_server(scratch["root"], token=TOKEN)
    yield server
    stop_server(server)


# ------------------------------------------------------------------------------------------------
# No byte from outside the workspace
# ------------------------------------------------------------------------------------------------

TRAVERSALS = [
    "/api/projects/../../../../etc/passwd",
    "/api/projects/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/projects/%2e%2e/experiments",
    "/api/projects/hostile/experiments/..%2F..%2F..%2Fsecret.txt/runs",
    "/api/projects/hostile/experiments/xss/runs/..%2F..%2F..%2F..%2Fsecret.txt",
    "/api/projects/hostile/experiments/xss/runs/....%2F/assets",
    "/api/assets/..%2F..%2Fsecret.txt/content",
    "/api/assets/%2e%2e/content",
    "/api/assets/..%5C..%5Csecret.txt/content",
    "/api/assets/%00/content",
    "/static/../../../../etc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/static/..%2F..%2F..%2F..%2F..%2Fsecret.txt",
    "/p/..%2F..%2Fsecret.txt",
    "/p/hostile/e/xss/r/..%2F..%2F..%2Fsecret.txt",
    "/assets/..%2F..%2Fsecret.txt",
    "//etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(srv: Server, path: str) -> None:
    resp = srv.get(path)
    assert resp.status in (400, 403, 404, 405, 422), (resp.status, resp.text[:300])
    assert SECRET not in resp.text
    assert "root:x:0:0" not in resp.text


@pytest.mark.parametrize(
    "file",
    ["../../../../secret.txt", "/etc/passwd", "ok.txt/../../..", "..", ".", "a//b", "escape.txt"],
)
def test_files_inside_a_directory_payload_cannot_escape(
    srv: Server, scratch: dict[str, Any], file: str
) -> None:
    from urllib.parse import quote

    resp = srv.get(f"/api/assets/{scratch['tree']}/content?file={quote(file)}")
    assert resp.status in (400, 403, 404), (file, resp.status, resp.text[:200])
    assert SECRET not in resp.text
    good = srv.get(f"/api/assets/{scratch['tree']}/content?file=ok.txt")
    assert good.status == 200 and good.text == "fine\n"


def test_a_directory_listing_skips_links_out(srv: Server, scratch: dict[str, Any]) -> None:
    listing = srv.get_json(f"/api/assets/{scratch['tree']}/files")
    assert [f["path"] for f in listing["files"]] == ["ok.txt"]
    page = srv.get(f"/assets/{scratch['tree']}")
    assert page.status == 200 and "ok.txt" in page.text and "escape.txt" not in page.text


@pytest.mark.parametrize("which", ["leak", "linked"])
def test_symlinks_out_of_the_workspace_are_refused(
    srv: Server, scratch: dict[str, Any], which: str
) -> None:
    asset_id = scratch[which]
    resp = srv.get(f"/api/assets/{asset_id}/content")
    assert resp.status == 403
    assert "outside the workspace" in resp.json()["detail"]
    assert SECRET not in resp.text
    page = srv.get(f"/assets/{asset_id}")
    assert page.status == 200 and "outside the workspace" in page.text
    assert SECRET not in page.text


def test_run_page_never_previews_a_link_out(srv: Server, scratch: dict[str, Any]) -> None:
    page = srv.get(f"/p/hostile/e/xss/r/{scratch['run']}")
    assert page.status == 200
    assert SECRET not in page.text
    assert "refused" in page.text


def test_markup_in_workspace_data_is_escaped(srv: Server, scratch: dict[str, Any]) -> None:
    for path in (f"/p/hostile/e/xss/r/{scratch['run']}", "/p/hostile/e/xss"):
        page = srv.get(path)
        assert page.status == 200
        assert "<script>alert(" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(" in page.text


# ------------------------------------------------------------------------------------------------
# Headers
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/p/hostile/e/xss", "/api/workspace", "/static/molexp.js"])
def test_every_response_has_the_safety_headers(srv: Server, path: str) -> None:
    resp = srv.get(path)
    assert resp.status == 200
    assert resp.headers["x-content-type-options"] == "nosniff"
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert resp.headers["x-frame-options"] == "DENY"
    assert "server" not in resp.headers


def test_pages_load_nothing_from_elsewhere(srv: Server) -> None:
    page = srv.get("/").text
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "<script>" not in page  # only <script src=/static/...>


# ------------------------------------------------------------------------------------------------
# Host names and tokens
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "192.168.1.5:8765", ""])
def test_without_a_token_only_loopback_host_names_are_answered(srv: Server, host: str) -> None:
    resp = srv.get("/api/health", headers={"Host": host})
    assert resp.status == 400
    assert "127.0.0.1" in resp.json()["detail"]


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "localhost"]
)
def test_loopback_host_names_are_answered(srv: Server, host: str) -> None:
    assert srv.get("/api/health", headers={"Host": host.format(port=srv.port)}).status == 200


def test_token_is_required(token_srv: Server) -> None:
    denied = token_srv.get("/api/workspace", auth=False)
    assert denied.status == 401
    assert "token" in denied.json()["detail"]
    assert "Scratch" not in denied.text
    wrong = token_srv.get(
        "/api/workspace", headers={"Authorization": "Bearer wrong-token-000000000"}
    )
    assert wrong.status == 401
    page = token_srv.get("/", auth=False, headers={"Accept": "text/html"})
    assert page.status == 401 and "<h1>401</h1>" in page.text and "Scratch" not in page.text
    static = token_srv.get("/static/molexp.js", auth=False)
    assert static.status == 401


def test_token_by_header_cookie_or_query(token_srv: Server) -> None:
    assert token_srv.get("/api/workspace").status == 200  # Authorization: Bearer
    by_header = token_srv.get("/api/workspace", auth=False, headers={"X-Molexp-Token": TOKEN})
    assert by_header.status == 200
    redirect = token_srv.get(f"/p/hostile?token={TOKEN}&x=1", auth=False)
    assert redirect.status == 303
    assert redirect.headers["location"] == "/p/hostile?x=1"
    cookie = redirect.headers["set-cookie"]
    assert cookie.startswith(f"molexp_token={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    by_cookie = token_srv.get("/p/hostile", auth=False, headers={"Cookie": f"molexp_token={TOKEN}"})
    assert by_cookie.status == 200 and "hostile" in by_cookie.text
    bad_query = token_srv.get("/p/hostile?token=nope", auth=False)
    assert bad_query.status == 401
    # The redirect never leaves the server, whatever the path looks like.
    sneaky = token_srv.get(f"//evil.example/x?token={TOKEN}", auth=False)
    assert sneaky.status == 303 and sneaky.headers["location"] == "/evil.example/x"


def test_with_a_token_any_host_name_is_answered(token_srv: Server) -> None:
    resp = token_srv.get("/api/health", headers={"Host": "lab.example.org:8765"})
    assert resp.status == 200


def _serve_error(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MOLEXP_SERVE_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "molexp.server", *args],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_binding_a_public_address_needs_a_token(scratch: dict[str, Any]) -> None:
    proc = _serve_error(str(scratch["root"]), "--host", "0.0.0.0", "--port", "0")
    assert proc.returncode == 1
    assert "needs a token" in proc.stderr and "--token" in proc.stderr


def test_a_short_token_is_refused(scratch: dict[str, Any]) -> None:
    proc = _serve_error(str(scratch["root"]), "--port", "0", "--token", "short")
    assert proc.returncode == 1 and "at least 16 characters" in proc.stderr


def test_a_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    proc = _serve_error(str(tmp_path / "nowhere"), "--port", "0")
    assert proc.returncode == 1 and "no workspace at" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_bind_rules() -> None:
    from molexp.server import ServeError, check_bind

    check_bind("127.0.0.1", None)
    check_bind("localhost", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", TOKEN)
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        with pytest.raises(ServeError, match="needs a token"):
            check_bind(host, None)
    with pytest.raises(ServeError, match="at least 16"):
        check_bind("127.0.0.1", "a b c d e f g h i j")


# ------------------------------------------------------------------------------------------------
# Read-only, except a confirmed cancel
# ------------------------------------------------------------------------------------------------


def _status(server: Server, run_id: str) -> str:
    path = f"/api/projects/hostile/experiments/xss/runs/{run_id}"
    status: str = server.get_json(path)["run"]["status"]
    return status


def test_cancel_needs_confirmation_json_and_same_origin(
    srv: Server, scratch: dict[str, Any]
) -> None:
    run_id = scratch["to_cancel"]
    path = f"/api/projects/hostile/experiments/xss/runs/{run_id}/cancel"
    assert srv.get(path).status == 405
    missing = srv.post_json(path, {})
    assert missing.status == 422
    wrong = srv.post_json(path, {"confirm": "someone-else"})
    assert wrong.status == 400 and "confirm must repeat the run id" in wrong.json()["detail"]
    plain = srv.request(
        "POST",
        path,
        body=f'{{"confirm": "{run_id}"}}'.encode(),
        headers={"Content-Type": "text/plain"},
    )
    assert plain.status in (400, 422)  # FastAPI refuses a non-JSON body before the handler
    cross = srv.post_json(path, {"confirm": run_id}, headers={"Origin": "http://evil.example"})
    assert cross.status == 403
    assert _status(srv, run_id) == "created"
    done = srv.post_json(
        path, {"confirm": run_id}, headers={"Origin": f"http://127.0.0.1:{srv.port}"}
    )
    assert done.status == 200, done.text
    assert done.json()["status"] == "cancelled"
    assert _status(srv, run_id) == "cancelled"
    again = srv.post_json(path, {"confirm": run_id})
    assert again.status == 409 and "nothing to cancel" in again.json()["detail"]


def test_cancel_form_needs_its_page_token_and_the_typed_id(
    srv: Server, scratch: dict[str, Any]
) -> None:
    run_id = scratch["by_form"]
    page = srv.get(f"/p/hostile/e/xss/r/{run_id}").text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "the run page of a created run has a cancel form"
    csrf = match.group(1)
    path = f"/p/hostile/e/xss/r/{run_id}/cancel"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = srv.request("POST", path, body=f"confirm={run_id}&csrf=00".encode(), headers=form)
    assert forged.status == 400 and "stale or forged" in forged.text
    untyped = srv.request("POST", path, body=f"confirm=&csrf={csrf}".encode(), headers=form)
    assert untyped.status == 400 and "type the run id" in untyped.text
    assert _status(srv, run_id) == "created"
    ok = srv.request("POST", path, body=f"confirm={run_id}&csrf={csrf}".encode(), headers=form)
    assert ok.status == 303
    assert ok.headers["location"].endswith(f"/r/{run_id}?cancel=done")
    assert _status(srv, run_id) == "cancelled"


def test_cancel_of_a_run_executing_in_another_process(
    srv: Server, scratch: dict[str, Any], tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(scratch["root"]), str(stop), "7"],
        stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        run_id = writer.stdout.readline().strip()
        path = f"/api/projects/live/experiments/stream/runs/{run_id}"
        record = srv.get_json(path)
        assert record["run"]["status"] == "running" and record["liveness"] == "alive"
        resp = srv.post_json(f"{path}/cancel", {"confirm": run_id, "reason": "enough"})
        assert resp.status == 200
        assert resp.json() == {"run_id": run_id, "status": "running", "cancel_requested": True}
        assert writer.wait(timeout=30) == 0
        final = srv.get_json(path)["run"]
        assert final["status"] == "cancelled"
        assert final["error"]["message"] == "enough"
    finally:
        stop.touch()
        if writer.poll() is None:
            writer.kill()
        writer.wait()
        if writer.stdout is not None:
            writer.stdout.close()
    # The run index of the server sees the new status too.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        page = srv.get_json("/api/projects/live/experiments/stream/runs?status=cancelled")
        if run_id in [r["id"] for r in page["items"]]:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the runs table never showed the cancelled run")
