"""``molexp export RUN|EXPERIMENT --format ro-crate DIR``: a run, or every run of an experiment,
as a Workflow Run RO-Crate (see :mod:`molexp.cli._crate` for what the crate holds, and what it
is not).

TARGET is a run (its id or a unique prefix, ``PROJECT/EXPERIMENT/ID``, or its directory) or an
experiment (``PROJECT/EXPERIMENT``, its directory, or an experiment id unique in the workspace).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from molexp.cli._errors import CliError
from molexp.cli._format import echo, print_json, size, warn
from molexp.cli._options import json_option, workspace_option

if TYPE_CHECKING:
    from molexp.workspace import Experiment, Run, Workspace

FORMATS = ("ro-crate",)


def _experiment_from_dir(path: Path) -> Experiment | None:
    from molexp.workspace import Workspace

    if not (path / "experiment.json").is_file():
        return None
    parts = path.resolve().parts
    if len(parts) < 5 or parts[-2] != "experiments" or parts[-4] != "projects":
        return None
    root = Path(*parts[:-4])
    return Workspace.load(root).project(parts[-3]).experiment(parts[-1])


def _experiments_named(ws: Workspace, experiment_id: str) -> list[Experiment]:
    found = []
    for project in ws.list_projects():
        if ws.storage.exists(f"{project.key}/experiments/{experiment_id}/experiment.json"):
            found.append(project.experiment(experiment_id))
    return found


def resolve_target(ref: str, workspace: str | None) -> Run | Experiment:
    """The run or experiment ``ref`` names (see the module docstring)."""
    from molexp.cli._discover import find_run, open_workspace, resolve_run

    path = Path(ref).expanduser()
    if path.is_dir() and not path.name.startswith("run-"):
        experiment = _experiment_from_dir(path)
        if experiment is not None:
            return experiment
    parts = ref.strip("/").split("/")
    if path.is_dir() or len(parts) == 3 or "://" in ref:
        return resolve_run(ref, workspace)
    ws = open_workspace(workspace)
    if len(parts) == 2:
        return ws.project(parts[0]).experiment(parts[1])
    if len(parts) != 1 or not parts[0]:
        raise CliError(
            f"{ref!r} names no run or experiment: give a run id, PROJECT/EXPERIMENT/ID, "
            "PROJECT/EXPERIMENT, or a run or experiment directory"
        )
    experiments = _experiments_named(ws, parts[0])
    try:
        run: Run | None = find_run(ws, parts[0].removeprefix("run-"))
    except CliError:
        if not experiments:
            raise
        run = None
    if run is not None and experiments:
        raise CliError(
            f"{ref!r} is both a run and an experiment; give PROJECT/EXPERIMENT/ID for the run or "
            "PROJECT/EXPERIMENT for the experiment"
        )
    if run is not None:
        return run
    if len(experiments) > 1:
        names = ", ".join(f"{e.project.id}/{e.id}" for e in experiments)
        raise CliError(f"experiment id {ref!r} is in several projects ({names}); give one of them")
    return experiments[0]


@click.command("export")
@click.argument("target", metavar="RUN|EXPERIMENT")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="ro-crate",
    show_default=True,
    help="The export format.",
)
@click.option(
    "--with-inputs", is_flag=True, help="Copy the assets the runs read (default: reference them)."
)
@click.option(
    "--metadata-only",
    is_flag=True,
    help="Copy no artifacts, logs or checkpoints either: describe them by name, size and hash.",
)
@click.option("--agent-name", metavar="NAME", help="Who ran it (default: the OS account).")
@click.option("--agent-id", metavar="URI", help="A URI for the agent, e.g. an ORCID.")
@click.option(
    "--license", "license_id", metavar="ID", help="SPDX id or URL of the crate's license."
)
@workspace_option
@json_option
def export(
    target: str,
    directory: Path,
    fmt: str,
    with_inputs: bool,
    metadata_only: bool,
    agent_name: str | None,
    agent_id: str | None,
    license_id: str | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Export a run, or every run of an experiment, as a Workflow Run RO-Crate in DIR.

    The crate (ro-crate-metadata.json and the files it describes) holds the workflow source as
    it ran, its parameters, each run's inputs and outputs with sizes and sha256 hashes, who ran
    it and when, and molexp's own run records. It is read back with the rocrate library before
    this returns. No identifier is minted and nothing is published: it is the internal record,
    made portable.
    """
    from molexp.cli._crate import ExportOptions, export_runs
    from molexp.workspace import Run

    if with_inputs and metadata_only:
        raise CliError("--with-inputs and --metadata-only contradict each other; choose one")
    found = resolve_target(target, workspace)
    if isinstance(found, Run):
        runs = [found]
        label = f"{found.experiment.project.id}/{found.experiment.id}/{found.id}"
        name = f"molexp run {label}"
        description = f"One run of experiment {found.experiment.name!r} recorded by molexp."
    else:
        runs = found.list_runs()
        label = f"{found.project.id}/{found.id}"
        name = f"molexp experiment {label}"
        description = f"The {len(runs)} run(s) of experiment {found.name!r} recorded by molexp."
        if not runs:
            raise CliError(f"experiment {label} has no runs to export")
    options = ExportOptions(
        include_inputs=with_inputs,
        include_outputs=not metadata_only,
        agent_name=agent_name,
        agent_id=agent_id,
        license=license_id,
    )
    summary = export_runs(runs, directory, name=name, description=description, options=options)
    check = summary.check
    for message in summary.warnings:
        warn(message)
    if as_json:
        print_json(
            {
                "format": fmt,
                "directory": str(summary.directory),
                "target": label,
                "runs": summary.runs,
                "workflows": summary.workflows,
                "files": summary.files,
                "bytes": summary.bytes,
                "referenced": summary.referenced,
                "main_entity": check["main_entity"],
                "files_checked": check["files_checked"],
                "warnings": summary.warnings,
            }
        )
        return
    echo(
        f"exported {label} ({summary.runs} run(s), {summary.workflows} workflow version(s)) to "
        f"{summary.directory}"
    )
    echo(
        f"  {summary.files} file(s), {size(summary.bytes)}; {summary.referenced} described by "
        f"reference; read back with rocrate: {check['files_checked']} file hash(es) verified"
    )
