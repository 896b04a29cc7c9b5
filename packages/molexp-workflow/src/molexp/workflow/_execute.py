"""Executing a workflow: standalone, or under a run whose lifecycle it opens or joins."""

from __future__ import annotations

import asyncio
import traceback
import weakref
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from molexp.workflow._errors import WorkflowError
from molexp.workflow._runtime import Runtime
from molexp.workflow._state import StateRecorder
from molexp.workflow._task import check_limit
from molexp.workspace import Run, RunCancelled, RunContext, RunStateError, config_hash

if TYPE_CHECKING:
    from molexp.workflow._result import WorkflowResult
    from molexp.workflow._workflow import Workflow

_executing: weakref.WeakSet[RunContext] = weakref.WeakSet()
"""Run contexts a workflow is executing under right now (one execution per attempt)."""


def _read_only(value: Mapping[str, Any] | None, what: str) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, got {type(value).__name__}")
    return MappingProxyType(dict(value))


async def execute(
    workflow: Workflow,
    run: Run | None,
    *,
    config: Mapping[str, Any] | None,
    profile_name: str | None,
    params: Mapping[str, Any] | None,
    max_concurrency: int | None,
    resume: bool,
) -> WorkflowResult:
    """What :meth:`Workflow.execute` does; see there."""
    check_limit(max_concurrency, "max_concurrency")
    if run is None:
        if profile_name is not None:
            raise WorkflowError(
                "profile_name= names the profile recorded on a run: pass run= too, or drop it"
            )
        runtime = Runtime(
            workflow,
            config=_read_only(config, "config"),
            params=_read_only(params, "params"),
            max_concurrency=max_concurrency,
        )
        return await runtime.run()
    if not isinstance(run, Run):
        raise TypeError(f"run= takes a molexp Run (exp.Run(...)), got {type(run).__name__}")
    if params is not None:
        raise WorkflowError(
            f"params= is for executing without a run: run {run.id!r} has its parameters fixed "
            "(exp.Run(parameters=...)), and tasks read them as ctx.params"
        )
    joined = run.context
    if joined is not None:
        if config is not None or profile_name is not None:
            raise RunStateError(
                f"run {run.id!r} is already executing in this process, with the profile given to "
                "run.start(...): execute it without config= and profile_name="
            )
        return await _tracked(workflow, joined, max_concurrency, resume)
    outcome: WorkflowResult | None = None
    with run.start(config, profile_name=profile_name) as rc:
        try:
            outcome = await _tracked(workflow, rc, max_concurrency, resume)
        except asyncio.CancelledError:
            # Recorded as a cancelled run (the context swallows RunCancelled); re-raised below.
            raise RunCancelled(f"the execution of run {run.id!r} was cancelled") from None
    if outcome is None:
        raise asyncio.CancelledError
    return outcome


async def _tracked(
    workflow: Workflow, rc: RunContext, max_concurrency: int | None, resume: bool
) -> WorkflowResult:
    """Execute under an entered run context: snapshot, saved task states, resume, failure."""
    if rc in _executing:
        raise RunStateError(f"run {rc.run.id!r} is already executing a workflow in this process")
    _executing.add(rc)
    try:
        config = MappingProxyType(dict(rc.config))
        digest = config_hash(config)
        # The file that declared the workflow: its copy and git state go on the attempt's
        # provenance, persisted by the snapshot write just below.
        rc.record_source(workflow.source_file, persist=False)
        rc.run.set_workflow(workflow.snapshot_ref(config_hash=digest).model_dump(mode="json"))
        recorder = StateRecorder(rc, workflow, config_hash=digest, resume=resume)
        runtime = Runtime(
            workflow,
            config=config,
            params=MappingProxyType(dict(rc.params)),
            run_context=rc,
            recorder=recorder,
            max_concurrency=max_concurrency,
        )
        result = await runtime.run()
    finally:
        _executing.discard(rc)
    failed = result.failed_task
    if result.error is not None and failed is not None:
        attempts = result.tasks[failed].attempts
        header = (
            f"task {failed!r} of workflow {workflow.name!r} failed "
            f"(attempt {attempts} of {workflow.tasks[failed].retries + 1}):\n"
        )
        rc.record_failure(
            result.error, traceback_text=header + "".join(traceback.format_exception(result.error))
        )
    return result
