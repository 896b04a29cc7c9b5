"""``--executor local``: runs execute on this machine, in this process or in ``--jobs N`` child
``molexp execute`` processes (what ``molexp run`` has always done)."""

from __future__ import annotations

from molexp.cli.executors._base import Batch, ExecutionReport, Executor


class LocalExecutor(Executor):
    """One run at a time in this process, or ``jobs`` at a time in child processes."""

    name = "local"

    def describe(self) -> str:
        """``local`` or ``local, N processes``."""
        jobs = self.settings.jobs or 1
        return "local" if jobs == 1 else f"local, {jobs} processes"

    def execute(self, batch: Batch) -> ExecutionReport:
        """Execute every run of ``batch`` on this machine."""
        from molexp.cli import _run_cmd

        report = ExecutionReport()
        jobs = self.settings.jobs or 1
        if jobs == 1:
            _run_cmd._execute_here(
                batch.runs, batch.loaded, batch.profile, batch.display, report.outcomes
            )
        else:
            _run_cmd._execute_in_children(
                batch.runs, batch.loaded, batch.profile, batch.display, report.outcomes, jobs=jobs
            )
        return report
