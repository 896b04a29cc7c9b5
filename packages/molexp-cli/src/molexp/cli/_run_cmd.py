"""``molexp run SCRIPT``: execute every bound experiment of a script, one run per replica."""

from __future__ import annotations

import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from molexp.cli._errors import EXIT_FAILURE, CliError, UsageError
from molexp.cli._format import print_json, warn
from molexp.cli.executors import executor_options

if TYPE_CHECKING:
    from molexp.cli._plan import Plan, PlannedRun
    from molexp.cli._profiles import Profile
    from molexp.cli._progress import Display, Outcome
    from molexp.cli._script import LoadedScript
    from molexp.cli.executors import ExecutionReport, Executor, ExecutorFlags
    from molexp.workspace import Run

MAX_SKIP_LINES = 20
"""Above this many, runs skipped because they succeeded are summed up in one line."""

_NO_WORKSPACE = (
    "the script {script} registered no workspace: end it with me.entry(ws) so that "
    "`molexp run` can find its experiments"
)


@click.command("run")
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-p", "--profile", "profile_name", metavar="NAME", help="Profile from molcfg.yaml.")
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file to use instead of the molcfg.yaml next to the script (or in the current "
    "directory).",
)
@click.option(
    "-o",
    "--override",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a config value (dotted key, YAML value), e.g. -o train.lr=1e-3. Repeatable.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Also execute failed and cancelled runs again, reusing the tasks they finished.",
)
@click.option(
    "--rerun",
    is_flag=True,
    help="Execute every run again, succeeded ones included, as a new attempt from scratch.",
)
@click.option("-n", "--dry-run", is_flag=True, help="Show what would run and why; change nothing.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs at once. Above 1, each run executes in its own process (`molexp execute`). "
    "dask: the LocalCluster's workers; slurm: the job array's concurrency limit.",
)
@executor_options
@click.option("--project", "projects", multiple=True, metavar="ID", help="Only this project.")
@click.option(
    "--experiment", "experiments", multiple=True, metavar="ID", help="Only this experiment."
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def run(
    script: Path,
    profile_name: str | None,
    config_file: Path | None,
    overrides: tuple[str, ...],
    resume: bool,
    rerun: bool,
    dry_run: bool,
    jobs: int,
    projects: tuple[str, ...],
    experiments: tuple[str, ...],
    as_json: bool,
    executor_flags: ExecutorFlags,
) -> None:
    """Execute the experiments that SCRIPT binds to workflows.

    SCRIPT is imported (its `if __name__ == "__main__":` block does not run); every workspace it
    registers with me.entry(ws) is searched for experiments with a bound workflow, and each gets
    one run per replica, with parameters = the experiment's params + seed + replica. Run ids are
    derived from the parameters, the replica and the profile, so running the same command again
    skips the runs that succeeded. A different profile or override makes new runs.

    \b
    Without flags, failed and cancelled runs are reported and left alone:
      --resume  executes them again; tasks that finished are reused
      --rerun   executes every run again (succeeded ones too), all tasks from scratch

    \b
    Where runs execute (--executor, or executor: in molcfg.yaml):
      local   this process, or --jobs N child processes (the default)
      dask    one task per run on a Dask cluster (--address, else a LocalCluster)
      slurm   one sbatch job per run, or a job array (--array); --wait follows them

    The exit code is 0 when every run succeeded (or already had), 1 otherwise. Runs submitted to
    Slurm without --wait count as done once submitted.
    """
    from molexp.cli._plan import Mode, plan_runs
    from molexp.cli._profiles import apply_storage, load_profile
    from molexp.cli._script import import_script
    from molexp.cli.executors import make_executor, resolve_settings

    if resume and rerun:
        raise UsageError(
            "--resume and --rerun exclude each other: --resume continues failed runs, --rerun "
            "starts every run over"
        )
    mode = Mode.RESUME if resume else Mode.RERUN if rerun else Mode.DEFAULT
    script_path = script.expanduser().resolve()
    profile = load_profile(
        profile_name,
        config=config_file,
        overrides=overrides,
        search=(script_path.parent, Path.cwd()),
    )
    apply_storage(profile)  # before the script opens its workspaces
    source = click.get_current_context().get_parameter_source("jobs")
    given = source is not None and source.name != "DEFAULT"
    executor = make_executor(
        resolve_settings(profile, executor_flags, jobs=jobs if given else None)
    )
    loaded = import_script(script_path)
    if not loaded.workspaces:
        raise CliError(_NO_WORKSPACE.format(script=script))
    plan = plan_runs(
        loaded.workspaces,
        profile,
        mode=mode,
        dry_run=dry_run,
        projects=projects,
        experiments=experiments,
    )
    if plan.unbound:
        shown = ", ".join(plan.unbound[:10])
        more = f" and {len(plan.unbound) - 10} more" if len(plan.unbound) > 10 else ""
        noun = "experiment has" if len(plan.unbound) == 1 else "experiments have"
        verb = "is" if len(plan.unbound) == 1 else "are"
        warn(f"{len(plan.unbound)} {noun} no bound workflow and {verb} skipped: {shown}{more}")
    if not plan.runs:
        matching = " matching the filters" if projects or experiments else ""
        raise CliError(
            f"nothing to run: no experiment{matching} in the workspaces {script} registers has a "
            "bound workflow (bind one with spec.bind_to(exp))"
        )
    if not as_json:
        _header(script, loaded, profile, plan, dry_run=dry_run)
        if executor.name != "local":
            click.echo(f"executor: {executor.describe()}")
    if dry_run:
        _report_dry_run(plan, profile, as_json=as_json)
        return
    report = _execute(plan, loaded, profile, executor=executor, quiet=as_json)
    code = _summarize(plan, report.outcomes, profile, as_json=as_json, report=report)
    if code:
        sys.exit(code)


# -- reporting -------------------------------------------------------------------------------------


def _describe(planned: PlannedRun) -> str:
    return f"replica {planned.replica}, seed {planned.seed}"


def _header(
    script: Path, loaded: LoadedScript, profile: Profile, plan: Plan, *, dry_run: bool
) -> None:
    source = f" from {_relative(profile.source)}" if profile.source is not None else ""
    overrides = f", {len(profile.overrides)} override(s)" if profile.overrides else ""
    executing = len(plan.to_execute)
    click.echo(
        f"{_relative(loaded.path)}: profile {profile.label}{source}{overrides} "
        f"(config {profile.config_hash}); {len(plan.runs)} run(s), {executing} to execute"
        + (" [dry run]" if dry_run else "")
    )


def _relative(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _plan_row(
    planned: PlannedRun, status: str | None = None, error: str | None = None
) -> dict[str, Any]:
    run = planned.run
    return {
        "run": planned.qualified,
        "id": planned.run_id,
        "project": planned.experiment.project.id,
        "experiment": planned.experiment.id,
        "replica": planned.replica,
        "seed": planned.seed,
        "parameters": planned.parameters,
        "action": planned.action.value,
        "reason": planned.reason,
        "status": status if status is not None else (run.status.value if run else None),
        "error": error,
        "run_dir": str(run.run_dir) if run is not None else None,
    }


def _report_dry_run(plan: Plan, profile: Profile, *, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "dry_run": True,
                "profile": profile.name,
                "config_hash": profile.config_hash,
                "runs": [_plan_row(p) for p in plan.runs],
                "unbound": plan.unbound,
            }
        )
        return
    for planned in plan.runs:
        click.echo(
            f"{planned.action.verb:<13} {planned.qualified}  ({_describe(planned)})  "
            f"{planned.reason}"
        )
    counts: dict[str, int] = {}
    for planned in plan.runs:
        counts[planned.action.value] = counts.get(planned.action.value, 0) + 1
    click.echo("dry run: " + ", ".join(f"{n} {action}" for action, n in counts.items()))


def _summarize(
    plan: Plan,
    outcomes: dict[str, Outcome],
    profile: Profile,
    *,
    as_json: bool,
    report: ExecutionReport | None = None,
) -> int:
    """Print the summary; return the exit code."""
    executed = [p for p in plan.runs if p.run_id in outcomes]
    failed_runs = [p for p in executed if not outcomes[p.run_id].ok]
    problems = [p for p in plan.skipped if not p.ok]
    submitted = report.submitted if report is not None else {}
    held = report.skipped if report is not None else {}
    if as_json:
        rows = []
        for planned in plan.runs:
            outcome = outcomes.get(planned.run_id)
            rows.append(
                _plan_row(
                    planned,
                    status=outcome.status if outcome else None,
                    error=outcome.error if outcome else None,
                )
            )
            if planned.run_id in submitted:
                rows[-1].update(status="submitted", job=submitted[planned.run_id].job_id)
            if planned.run_id in held:
                rows[-1].update(action="skip", reason=held[planned.run_id])
        print_json(
            {
                "profile": profile.name,
                "config_hash": profile.config_hash,
                "runs": rows,
                "unbound": plan.unbound,
                "ok": not failed_runs and not problems,
            }
        )
        return EXIT_FAILURE if failed_runs or problems else 0
    succeeded = len(executed) - len(failed_runs)
    parts = []
    if executed:
        parts.append(f"{len(executed)} executed ({succeeded} succeeded, {len(failed_runs)} not)")
    if len(plan.skipped) > len(problems):
        parts.append(f"{len(plan.skipped) - len(problems)} skipped (already succeeded)")
    if problems:
        parts.append(f"{len(problems)} skipped (not succeeded)")
    if submitted:
        parts.append(f"{len(submitted)} submitted to Slurm")
    if held:
        parts.append(f"{len(held)} skipped (a Slurm job for them is queued)")
    click.echo(f"summary: {len(plan.runs)} run(s): " + ", ".join(parts))
    if submitted:
        from molexp.cli.executors._jobs import describe_jobs

        click.echo(
            f"submitted as Slurm job(s) {describe_jobs(s.job_id for s in submitted.values())}; "
            "follow them with `molexp runs list` (or submit with --wait), stop one with "
            "`molexp runs cancel RUN`"
        )
    if not failed_runs and not problems:
        return 0
    click.echo(f"{len(failed_runs) + len(problems)} run(s) did not succeed:")
    for planned in failed_runs:
        outcome = outcomes[planned.run_id]
        click.echo(f"  {planned.qualified}  {outcome.status}  {outcome.error or ''}".rstrip())
        if outcome.output.strip():
            from molexp.cli._execution import tail

            for line in tail(outcome.output).splitlines():
                click.echo(f"    | {line}")
    for planned in problems:
        click.echo(f"  {planned.qualified}  {planned.reason}")
    click.echo("see `molexp runs show ID` for details")
    return EXIT_FAILURE


# -- executing -------------------------------------------------------------------------------------


def _outcome(run: Run, seconds: float, output: str = "") -> Outcome:
    from molexp.cli._progress import Outcome

    error = run.error
    status = run.status.value
    text = f"{error.type}: {error.message}" if error is not None and status != "succeeded" else None
    return Outcome(status, seconds, error=text, output=output if status != "succeeded" else "")


def _status_now(planned: PlannedRun) -> str:
    """The status recorded on a planned run now (``failed`` if it cannot be read)."""
    if planned.run is None:
        return "failed"
    try:
        return planned.run.reload().status.value
    except Exception:
        return "failed"


def _ensure_run(planned: PlannedRun, loaded: LoadedScript, profile: Profile) -> Run:
    """The planned run, created (with the labels that let any process execute it) if new."""
    from molexp.cli._execution import creation_labels
    from molexp.cli._plan import Action

    if planned.run is None or planned.action is Action.NEW:
        planned.run = planned.experiment.Run(
            parameters=planned.parameters,
            id=planned.run_id,
            labels=creation_labels(loaded, profile, planned.replica),
        )
    return planned.run


def _execute(
    plan: Plan, loaded: LoadedScript, profile: Profile, *, executor: Executor, quiet: bool
) -> ExecutionReport:
    from molexp.cli._progress import make_display
    from molexp.cli.executors import Batch

    todo = plan.to_execute
    display = _NullDisplay() if quiet else make_display(len(todo))
    with display:
        done = [p for p in plan.skipped if p.ok]
        if len(done) > MAX_SKIP_LINES:
            display.note(f"skipped    {len(done)} runs that already succeeded")
        for planned in plan.skipped:
            if not planned.ok or len(done) <= MAX_SKIP_LINES:
                display.note(f"skipped    {planned.qualified}  ({planned.reason})")
        return executor.execute(
            Batch(todo, loaded, profile, display, lambda p: _ensure_run(p, loaded, profile))
        )


def _execute_here(
    todo: list[PlannedRun],
    loaded: LoadedScript,
    profile: Profile,
    display: Display,
    outcomes: dict[str, Outcome],
) -> None:
    from molexp.cli._execution import attempt_labels, execute_in_process
    from molexp.cli._progress import Outcome

    labels = attempt_labels(loaded)
    for planned in todo:
        display.started(planned.qualified, f"{planned.reason}, {_describe(planned)}")
        start = time.perf_counter()
        try:
            run = _ensure_run(planned, loaded, profile)
            execute_in_process(
                run,
                planned.workflow,
                profile_config=profile.config,
                profile_name=profile.name,
                labels=labels,
                fresh=planned.fresh,
            )
            outcome = _outcome(run, time.perf_counter() - start)
        except Exception as exc:  # recorded on the run when it got that far; keep going
            seconds = time.perf_counter() - start
            outcome = Outcome(_status_now(planned), seconds, error=f"{type(exc).__name__}: {exc}")
        outcomes[planned.run_id] = outcome
        display.finished(planned.qualified, outcome)


def _execute_in_children(
    todo: list[PlannedRun],
    loaded: LoadedScript,
    profile: Profile,
    display: Display,
    outcomes: dict[str, Outcome],
    *,
    jobs: int,
) -> None:
    import threading

    from molexp.cli._execution import Children
    from molexp.cli._progress import Outcome

    children = Children()
    events: queue.Queue[tuple[str, PlannedRun, Outcome | None]] = queue.Queue()
    create_lock = threading.Lock()

    def work(planned: PlannedRun) -> None:
        """Create the run if needed and execute it in a child process (in a pool thread)."""
        events.put(("started", planned, None))
        start = time.perf_counter()
        try:
            with create_lock:
                run = _ensure_run(planned, loaded, profile)
            result = children.run(str(run.run_dir), fresh=planned.fresh)
            run.reload()
            if run.status.value == "running":
                run.mark_failed_if_dead()
            outcome = _outcome(run, result.seconds, result.output)
            if not outcome.ok and outcome.error is None:
                said = [line for line in result.output.splitlines() if line.strip()]
                outcome.error = said[-1] if said else f"exit code {result.returncode}"
            if result.returncode < 0:
                died = f"its process was killed by signal {-result.returncode}"
                outcome.error = f"{outcome.error} ({died})" if outcome.error else died
        except Exception as exc:
            seconds = time.perf_counter() - start
            outcome = Outcome(_status_now(planned), seconds, error=f"{type(exc).__name__}: {exc}")
        events.put(("finished", planned, outcome))

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="molexp-run")
    try:
        for planned in todo:
            pool.submit(work, planned)
        remaining = len(todo)
        while remaining:
            try:
                kind, planned, outcome = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if kind == "started":
                display.started(planned.qualified, f"{planned.reason}, {_describe(planned)}")
            elif outcome is not None:
                remaining -= 1
                outcomes[planned.run_id] = outcome
                display.finished(planned.qualified, outcome)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        children.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _NullDisplay:
    """No progress output (``--json``)."""

    def __enter__(self) -> _NullDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def note(self, line: str) -> None:
        """Nothing."""

    def started(self, name: str, detail: str) -> None:
        """Nothing."""

    def finished(self, name: str, outcome: Outcome) -> None:
        """Nothing."""
