"""The batch scripts ``--executor slurm`` submits.

One job per run::

    #!/bin/bash
    #SBATCH --job-name=molexp-3f9c2a-k2j4
    #SBATCH --output=/home/me/.molexp/slurm/20260509-101203-k2j4/3f9c2a.out
    #SBATCH --partition=gpu
    #SBATCH --qos=normal                   <- extra lines from molcfg.yaml
    module load python/3.11               <- setup lines from molcfg.yaml
    exec /usr/bin/python3 -P -m molexp.cli execute /lab/projects/p/experiments/e/runs/run-3f9c2a

or one job array for the whole sweep, whose task *i* executes line *i* of ``runs.tsv`` beside it
(``--array=0-49%10``: at most 10 at once). Either way the unit of work is ``molexp execute RUN``
(``exec``-ed, so that ``scancel`` signals it directly), which reads everything else from the run's
own record.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from molexp.cli.executors._base import EXECUTE_ARGS, execute_argv
from molexp.cli.executors._settings import ExecutorSettings


@dataclass(frozen=True)
class RunLine:
    """One run for a job: its directory (or URL) and whether saved task states are dropped."""

    run_dir: str
    fresh: bool = False


def _python(settings: ExecutorSettings) -> str:
    return settings.slurm.python or sys.executable


def sbatch_lines(settings: ExecutorSettings, *, job_name: str, output: str) -> list[str]:
    """The ``#SBATCH`` lines for one job (or one array) of these settings."""
    slurm = settings.slurm
    options = [f"--job-name={job_name}", f"--output={output}"]
    if slurm.partition:
        options.append(f"--partition={slurm.partition}")
    if slurm.time:
        options.append(f"--time={slurm.time}")
    if slurm.account:
        options.append(f"--account={slurm.account}")
    if settings.cpus is not None:
        options.append(f"--cpus-per-task={settings.cpus}")
    if settings.mem is not None:
        options.append(f"--mem={settings.mem}")
    if settings.gpus is not None:
        options.append(f"--gpus={settings.gpus}")
    lines = [f"#SBATCH {option}" for option in options]
    for extra in slurm.sbatch:
        text = extra.strip()
        lines.append(text if text.startswith("#SBATCH") else f"#SBATCH {text}")
    return lines


def _execute(settings: ExecutorSettings, run_dir: str, *, fresh: bool) -> str:
    argv = execute_argv(_python(settings), run_dir, fresh=fresh)
    return "exec " + " ".join(shlex.quote(a) for a in argv)


def single_script(settings: ExecutorSettings, run: RunLine, *, job_name: str, output: str) -> str:
    """The script of a job that executes one run."""
    lines = ["#!/bin/bash", *sbatch_lines(settings, job_name=job_name, output=output)]
    lines += list(settings.slurm.setup)
    lines.append(_execute(settings, run.run_dir, fresh=run.fresh))
    return "\n".join(lines) + "\n"


def array_spec(count: int, limit: int | None) -> str:
    """``0-N`` (``0-N%LIMIT`` with a concurrency limit smaller than ``count``)."""
    spec = f"0-{count - 1}"
    return f"{spec}%{limit}" if limit is not None and limit < count else spec


def runs_table(runs: Sequence[RunLine]) -> str:
    """``runs.tsv``: one ``fresh|resume<TAB>run_dir`` line per array task, in task order."""
    return "".join(f"{'fresh' if r.fresh else 'resume'}\t{r.run_dir}\n" for r in runs)


def array_script(
    settings: ExecutorSettings,
    *,
    count: int,
    table_path: str,
    job_name: str,
    output: str,
    limit: int | None,
) -> str:
    """The script of a job array whose task *i* executes line *i* of ``table_path``."""
    lines = ["#!/bin/bash", *sbatch_lines(settings, job_name=job_name, output=output)]
    lines.append(f"#SBATCH --array={array_spec(count, limit)}")
    lines += list(settings.slurm.setup)
    execute = " ".join(shlex.quote(a) for a in (_python(settings), *EXECUTE_ARGS))
    lines += [
        f'line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(table_path)})',
        "mode=${line%%$'\\t'*}",
        "run=${line#*$'\\t'}",
        'if [ -z "$line" ]; then',
        '  echo "molexp: no run for array task $SLURM_ARRAY_TASK_ID" >&2',
        "  exit 2",
        "fi",
        'if [ "$mode" = fresh ]; then',
        f'  exec {execute} "$run" --fresh',
        "fi",
        f'exec {execute} "$run"',
    ]
    return "\n".join(lines) + "\n"
