"""``molexp execute RUN``: execute one existing run, in this process, from its record alone."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from molexp.cli._errors import EXIT_FAILURE, CliError
from molexp.cli._format import duration, warn
from molexp.cli._options import workspace_option


@click.command("execute")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--script",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The script that binds the run's workflow (default: the one `molexp run` recorded).",
)
@click.option(
    "--fresh", is_flag=True, help="Discard the saved task states, so that every task runs again."
)
@workspace_option
def execute(run_ref: str, script: Path | None, fresh: bool, workspace: str | None) -> None:
    """Execute one existing run (what schedulers and workers call).

    RUN is a run directory or URL, PROJECT/EXPERIMENT/ID, or a run id. The run's chain is
    reopened from its directory, the script recorded by `molexp run` is imported again (from the
    directory it was run in, when that exists) to find the workflow bound to the run's
    experiment, and the run executes with the profile config recorded on it, unchanged. A failed
    or cancelled run resumes: tasks that finished with unchanged code and inputs are reused
    (unless --fresh). Storage options come from $MOLEXP_STORAGE_OPTIONS and, when `molexp run`
    started this process, from its storage: section.

    This is the command schedulers and distributed workers call. The exit code is 0 only if the
    run succeeded.
    """
    from molexp.cli._discover import qualified_id, resolve_run
    from molexp.cli._execution import (
        LABEL_SCRIPT_SHA256,
        attempt_labels,
        bound_workflow,
        enter_recorded_cwd,
        execute_in_process,
        recorded_profile,
        recorded_script,
        registered_experiment,
    )
    from molexp.cli._profiles import apply_inherited_storage
    from molexp.cli._script import import_script
    from molexp.cli.executors import install_termination_handler, worker_labels

    install_termination_handler()  # SIGTERM (scancel, a time limit) cancels the run cleanly
    apply_inherited_storage()  # the storage: section of the `molexp run` that started this one
    run = resolve_run(run_ref, workspace)
    name = qualified_id(run)
    script_path = recorded_script(run, script.expanduser().resolve() if script else None)
    profile = recorded_profile(run)
    enter_recorded_cwd(run)
    loaded = import_script(script_path)
    recorded_hash = run.metadata.labels.get(LABEL_SCRIPT_SHA256)
    if script is None and recorded_hash is not None and recorded_hash != loaded.sha256:
        warn(
            f"{script_path} changed since run {run.id} was created (sha256 {recorded_hash[:12]} "
            f"then, {loaded.sha256[:12]} now); executing the current version"
        )
    experiment = registered_experiment(loaded, run)
    if experiment is None:
        known = ", ".join(ws.url for ws in loaded.workspaces) or "none"
        raise CliError(
            f"the script {script_path} does not declare experiment "
            f"{run.experiment.project.id}/{run.experiment.id} of the workspace at "
            f"{run.experiment.project.workspace.url} (workspaces it registers: {known})"
        )
    workflow = bound_workflow(experiment)
    if workflow is None:
        raise CliError(
            f"the script {script_path} binds no workflow to experiment "
            f"{run.experiment.project.id}/{run.experiment.id}; bind one with spec.bind_to(exp)"
        )
    start = time.perf_counter()
    status = execute_in_process(
        run,
        workflow,
        profile_config=profile.config,
        profile_name=profile.name if profile.config is not None else None,
        labels=attempt_labels(loaded),
        fresh=fresh,
        record_labels=worker_labels(),
    )
    elapsed = duration(time.perf_counter() - start)
    if status == "succeeded":
        click.echo(f"{name}: succeeded in {elapsed}")
        return
    error = run.error
    detail = f": {error.type}: {error.message}" if error is not None else ""
    click.echo(f"{name}: {status} after {elapsed}{detail}")
    if error is not None and error.traceback_path:
        click.echo(f"traceback: {Path(str(run.run_dir)) / error.traceback_path}")
    sys.exit(EXIT_FAILURE)
