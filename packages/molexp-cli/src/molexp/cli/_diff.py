"""``molexp runs diff RUN_A RUN_B``: two runs side by side, so that what made them differ shows.

Compared, section by section: the parameters; the profile and its merged config (flattened to
dotted keys); the code (workflow name and id, the hash of the tasks' code, the hash of the
workflow source file, git commit, branch, dirty flag and the hash of the uncommitted diff); the
environment (host, Python, platform, and only the installed distributions whose versions differ);
the results; and the artifacts (size and content hash of each name). The code and environment
come from the newest attempt of each run that recorded provenance.

``--json`` prints the same comparison as data: for each section a list of
``{"key", "a", "b", "same"}`` rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from molexp.cli._format import compact, echo, print_json, size
from molexp.cli._options import json_option, workspace_option
from molexp.workspace import flatten_keys

if TYPE_CHECKING:
    from molexp.workspace import Run

SECTIONS = ("parameters", "config", "code", "environment", "results", "artifacts")
MISSING = "-"
_HASH = re.compile(r"(?P<algo>[a-z0-9]+:)?(?P<digits>[0-9a-f]{40,})")


def _short(value: Any, length: int = 12) -> Any:
    """``sha256:0123456789ab`` for a long hash, the first 12 digits of a commit (the full value
    stays in ``--json``); anything else unchanged."""
    if isinstance(value, str) and (match := _HASH.fullmatch(value)):
        algo, digits = match["algo"] or "", match["digits"]
        return f"{algo}{digits[:length]}"
    return value


def describe(run: Run) -> dict[str, Any]:
    """The comparable facts of ``run``, by section (plain JSON values)."""
    from molexp.workspace import latest_provenance, load_environment

    meta = run.metadata
    snapshot = meta.workflow_snapshot or {}
    latest = latest_provenance(run)
    provenance = latest[1] if latest is not None else None
    git = provenance.git if provenance is not None else None
    code: dict[str, Any] = {
        "workflow": snapshot.get("name"),
        "workflow_id": snapshot.get("workflow_id"),
        "code_hash": snapshot.get("code_hash"),
        "source_file": provenance.source_file if provenance else snapshot.get("source_file"),
        "source_hash": provenance.source.content_hash if provenance and provenance.source else None,
        "git_status": git.status if git else None,
        "commit": (git.commit if git else None) or snapshot.get("git_commit"),
        "branch": git.branch if git else None,
        "dirty": git.dirty if git else None,
        "diff_hash": git.diff_hash if git else None,
        "untracked": git.untracked if git else None,
    }
    environment: dict[str, Any] = {
        "host": provenance.host if provenance else None,
        "python": provenance.python if provenance else None,
        "platform": provenance.platform if provenance else None,
        "environment_hash": provenance.environment_hash if provenance else None,
    }
    distributions = load_environment(run, provenance) if provenance is not None else None
    artifacts: dict[str, Any] = {}
    for asset in run.assets.list("artifact"):  # oldest first: the newest of a name wins
        artifacts[asset.name] = {"size": asset.size, "content_hash": asset.content_hash}
    return {
        "run": f"{run.experiment.project.id}/{run.experiment.id}/{run.id}",
        "status": meta.status.value,
        "execution_id": latest[0].execution_id if latest is not None else None,
        "parameters": dict(meta.parameters),
        "config": {
            "profile": meta.profile_name,
            "config_hash": meta.config_hash,
            **{f"config.{k}": v for k, v in flatten_keys(meta.config).items()},
        },
        "code": code,
        "environment": environment,
        "distributions": distributions,
        "results": dict(meta.results),
        "artifacts": artifacts,
    }


def _rows(a: Mapping[str, Any], b: Mapping[str, Any], *, ordered: bool) -> list[dict[str, Any]]:
    keys = list(a) + [k for k in b if k not in a]
    if not ordered:
        keys.sort()
    return [
        {"key": key, "a": a.get(key), "b": b.get(key), "same": a.get(key) == b.get(key)}
        for key in keys
    ]


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The side-by-side comparison of two :func:`describe` results."""
    sections: dict[str, list[dict[str, Any]]] = {
        "parameters": _rows(a["parameters"], b["parameters"], ordered=False),
        "config": _rows(a["config"], b["config"], ordered=True),
        "code": _rows(a["code"], b["code"], ordered=True),
        "environment": _rows(a["environment"], b["environment"], ordered=True),
        "results": _rows(a["results"], b["results"], ordered=False),
        "artifacts": _rows(a["artifacts"], b["artifacts"], ordered=False),
    }
    dists_a, dists_b = a["distributions"], b["distributions"]
    identical = 0
    if dists_a is not None and dists_b is not None:
        for row in _rows(dists_a, dists_b, ordered=False):
            if row["same"]:
                identical += 1
            else:
                sections["environment"].append({**row, "key": f"dist:{row['key']}"})
    differs = {name: sum(not row["same"] for row in rows) for name, rows in sections.items()}
    return {
        "a": {"run": a["run"], "status": a["status"], "execution_id": a["execution_id"]},
        "b": {"run": b["run"], "status": b["status"], "execution_id": b["execution_id"]},
        "same": not any(differs.values()),
        "differences": differs,
        "identical_distributions": identical,
        "distributions_known": dists_a is not None and dists_b is not None,
        "sections": sections,
    }


def _cell(section: str, value: Any) -> str:
    if value is None:
        return MISSING
    if section == "artifacts" and isinstance(value, Mapping):
        return f"{size(value.get('size'))} {_short(value.get('content_hash')) or MISSING}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and section in ("code", "environment"):
        return str(_short(value))
    if isinstance(value, str):
        return value
    return compact(value)


def _print(result: Mapping[str, Any], *, changed_only: bool) -> None:
    a, b = result["a"], result["b"]
    lines: list[tuple[str, str, str, str]] = []
    for section in SECTIONS:
        rows = [r for r in result["sections"][section] if not (changed_only and r["same"])]
        note = ""
        if section == "environment":
            if result["distributions_known"]:
                note = f"  ({result['identical_distributions']} distributions identical)"
            else:
                note = "  (installed distributions not recorded for both runs)"
        lines.append((f"{section}{note}", "", "", ""))
        if not rows:
            lines.append(("  (none)" if not changed_only else "  (no difference)", "", "", ""))
        for row in rows:
            marker = "" if row["same"] else "*"
            key = row["key"].removeprefix("dist:")
            lines.append((f"  {key}", _cell(section, row["a"]), _cell(section, row["b"]), marker))
    headers = ("", f"A  {a['run']}", f"B  {b['run']}", "")
    rows = [line for line in lines if line[1] or line[2] or line[3]]  # not section titles
    width_key = max([len(line[0]) for line in rows] or [0])
    width_a = min(48, max(len(headers[1]), *(len(line[1]) for line in rows)))
    width_b = min(48, max(len(headers[2]), *(len(line[2]) for line in rows)))

    def cut(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    echo(f"{''.ljust(width_key)}  {cut(headers[1], width_a).ljust(width_a)}  {headers[2]}".rstrip())
    for key, left, right, marker in lines:
        if not left and not right and not marker:
            echo(key)
            continue
        text = f"{key.ljust(width_key)}  {cut(left, width_a).ljust(width_a)}  "
        text += f"{cut(right, width_b).ljust(width_b)}  {marker}"
        echo(text.rstrip())
    total = sum(result["differences"].values())
    echo()
    echo("the runs are the same" if result["same"] else f"{total} difference(s), marked *")


@click.command("diff")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@click.option("--changed", is_flag=True, help="Show only what differs.")
@workspace_option
@json_option
def runs_diff(run_a: str, run_b: str, changed: bool, workspace: str | None, as_json: bool) -> None:
    """Compare two runs side by side: parameters, config, code, environment, results and
    artifacts (differences marked *).

    RUN_A and RUN_B are run ids (or unique prefixes), PROJECT/EXPERIMENT/ID, or run directories.
    The code and environment are those of each run's newest attempt.
    """
    from molexp.cli._discover import resolve_run

    first = resolve_run(run_a, workspace)
    second = resolve_run(run_b, workspace)
    result = compare(describe(first), describe(second))
    if as_json:
        print_json(result)
        return
    _print(result, changed_only=changed)
