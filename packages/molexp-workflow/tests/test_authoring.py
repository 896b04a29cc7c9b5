"""Authoring and compilation: the spellings of the seeds, validation errors, workflow_id."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from molexp.workflow import (
    Task,
    TaskContext,
    Workflow,
    WorkflowBuilder,
    WorkflowValidationError,
    workflow,
)


def demo_builder(name: str = "demo") -> WorkflowBuilder:
    wf = workflow(name=name)

    @wf.task
    async def fetch(ctx: TaskContext) -> list[float]:
        return [1.0, 4.0, 9.0]

    @wf.task(depends_on=["fetch"])
    async def summarize(ctx: TaskContext) -> float:
        return sum(ctx.inputs)

    return wf


async def test_seed_example_builds_and_executes():
    spec = demo_builder().build()
    assert isinstance(spec, Workflow)
    assert list(spec.tasks) == ["fetch", "summarize"]
    assert spec.tasks["summarize"].depends_on == ("fetch",)
    result = await spec.execute()
    assert result.status == "succeeded"
    assert result.outputs == {"fetch": [1.0, 4.0, 9.0], "summarize": 14.0}


def test_workflow_builder_is_the_same_as_workflow():
    def only(ctx: TaskContext) -> int:
        return 1

    by_class = WorkflowBuilder(name="demo")
    by_class.task(only)
    by_function = workflow(name="demo")
    by_function.task(only)
    assert by_class.build().workflow_id == by_function.build().workflow_id
    assert by_class.build().execute_sync().outputs == {"only": 1}


def test_decorators_return_the_function_unchanged():
    wf = workflow(name="demo")

    async def fetch(ctx: TaskContext) -> int:
        return 1

    async def use(ctx: TaskContext) -> int:
        return ctx.inputs + 1

    assert wf.task(fetch) is fetch
    assert wf.task(name="again", depends_on=[fetch])(use) is use
    spec = wf.build()
    assert spec.tasks["again"].depends_on == ("fetch",)
    assert spec.execute_sync().outputs == {"fetch": 1, "again": 2}


def test_a_function_declared_twice_is_ambiguous_as_a_dependency():
    wf = workflow(name="demo")

    def fetch(ctx: TaskContext) -> int:
        return 1

    wf.task(fetch)
    wf.task(name="fetch2")(fetch)
    wf.task(name="use", depends_on=fetch)(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError, match=r"several tasks \(fetch, fetch2\)"):
        wf.build()


def test_declaring_runs_nothing(tmp_path: Path):
    marker = tmp_path / "ran"
    module = tmp_path / "declared.py"
    module.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from molexp.workflow import workflow

            wf = workflow(name="quiet")

            @wf.task
            def touch(ctx):
                Path({str(marker)!r}).write_text("ran")

            spec = wf.build()
            """
        )
    )
    subprocess.run([sys.executable, str(module)], check=True)
    assert not marker.exists()


def test_reusable_task_classes_with_add():
    class Scale(Task):
        def __init__(self, factor: float, name: str) -> None:
            super().__init__(name, retries=1)
            self.factor = factor

        async def run(self, ctx: TaskContext) -> float:
            return ctx.inputs * self.factor

    class Base(Task):
        def run(self, ctx: TaskContext) -> float:
            return 2.0

    wf = workflow(name="classes")
    base = wf.add(Base())
    wf.add(Scale(3.0, "triple"), depends_on=[base])
    wf.add(Scale(10.0, "tenfold"), depends_on="Base")
    spec = wf.build()
    assert spec.tasks["triple"].retries == 1
    assert spec.tasks["triple"].code_hash != spec.tasks["tenfold"].code_hash
    assert spec.execute_sync().outputs == {"Base": 2.0, "triple": 6.0, "tenfold": 20.0}


def test_add_rejects_a_plain_function():
    wf = workflow(name="demo")
    with pytest.raises(TypeError, match="Task instance"):
        wf.add(lambda ctx: 1)  # type: ignore[arg-type]


# -- validation ---------------------------------------------------------------------------------


def test_unknown_dependency_suggests_the_close_name():
    wf = workflow(name="demo")

    @wf.task
    async def fetch(ctx: TaskContext) -> int:
        return 1

    @wf.task(depends_on=["fetc"])
    async def summarize(ctx: TaskContext) -> int:
        return 2

    with pytest.raises(WorkflowValidationError, match="did you mean 'fetch'"):
        wf.build()


def test_unknown_dependency_without_a_close_name_lists_the_tasks():
    wf = workflow(name="demo")
    wf.task(name="alpha")(lambda ctx: 1)
    wf.task(name="beta", depends_on=["zzzzzz"])(lambda ctx: 2)
    with pytest.raises(WorkflowValidationError, match="its tasks are: alpha, beta"):
        wf.build()


def test_dependency_on_an_undeclared_function_is_named():
    wf = workflow(name="demo")

    def stranger(ctx: TaskContext) -> int:
        return 1

    wf.task(name="a", depends_on=[stranger])(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError, match="stranger, which is not a task"):
        wf.build()


def test_cycle_is_named_edge_by_edge():
    wf = workflow(name="loop")
    wf.task(name="a", depends_on=["c"])(lambda ctx: 1)
    wf.task(name="b", depends_on=["a"])(lambda ctx: 1)
    wf.task(name="c", depends_on=["b"])(lambda ctx: 1)
    wf.task(name="free")(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError) as info:
        wf.build()
    message = str(info.value)
    assert "workflow 'loop' has a cycle" in message
    # The same loop, whichever task it starts from.
    cycle = message.split("cycle: ")[1].split(";")[0]
    names = [part.strip().strip("'") for part in cycle.split("→")]
    assert names[0] == names[-1]
    assert sorted(names[:-1]) == ["a", "b", "c"]
    assert "'free'" not in message


def test_self_dependency_is_a_cycle():
    wf = workflow(name="selfish")
    wf.task(name="me", depends_on=["me"])(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError, match="'me' → 'me'"):
        wf.build()


def test_duplicate_names_are_rejected_with_both_places():
    wf = workflow(name="demo")

    @wf.task
    def fetch(ctx: TaskContext) -> int:
        return 1

    @wf.task(name="fetch")
    def other(ctx: TaskContext) -> int:
        return 2

    with pytest.raises(WorkflowValidationError, match="declares task 'fetch' 2 times") as info:
        wf.build()
    assert str(info.value).count("test_authoring.py:") == 2


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (lambda: 1, "()"),
        (lambda ctx, extra: 1, "(ctx, extra)"),
        (lambda *, ctx: 1, "(*, ctx)"),
    ],
)
def test_signatures_that_cannot_take_a_context_are_rejected(body, shown):
    wf = workflow(name="demo")
    wf.task(name="bad")(body)
    with pytest.raises(WorkflowValidationError, match="cannot take a TaskContext") as info:
        wf.build()
    assert shown in str(info.value)


def test_signatures_that_can_take_a_context_are_accepted():
    wf = workflow(name="demo")
    wf.task(name="defaults")(lambda ctx, extra=1: extra)
    wf.task(name="varargs")(lambda *args: len(args))
    assert wf.build().execute_sync().outputs == {"defaults": 1, "varargs": 1}


def test_bad_policies_and_names_fail_at_declaration():
    wf = workflow(name="demo")
    with pytest.raises(WorkflowValidationError, match="retries must be a whole number"):
        wf.task(name="a", retries=-1)(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError, match="timeout must be a number"):
        wf.task(name="a", timeout=0)(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError, match="a task name must be a non-empty"):
        wf.task(name="")(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError, match="max_concurrency must be"):
        workflow(name="demo", max_concurrency=0)


def test_an_empty_workflow_does_not_compile():
    with pytest.raises(WorkflowValidationError, match="has no tasks"):
        workflow(name="empty").build()


def test_a_streaming_task_must_be_an_actor():
    wf = workflow(name="demo")

    async def stream(ctx: TaskContext):
        yield 1

    wf.task(stream)
    with pytest.raises(WorkflowValidationError, match=r"@wf\.actor"):
        wf.build()


def test_a_ten_thousand_task_chain_builds_and_runs():
    wf = workflow(name="long")

    async def step(ctx: TaskContext) -> int:
        return (ctx.inputs or 0) + 1

    for i in range(10_000):
        wf.task(name=f"t{i}", depends_on=[f"t{i - 1}"] if i else None)(step)
    spec = wf.build()
    result = spec.execute_sync()
    assert result.outputs["t9999"] == 10_000


def test_a_ten_thousand_task_cycle_is_reported_without_recursion():
    wf = workflow(name="ring")
    n = 10_000
    for i in range(n):
        wf.task(name=f"t{i}", depends_on=[f"t{(i - 1) % n}"])(lambda ctx: 1)
    with pytest.raises(WorkflowValidationError, match="has a cycle"):
        wf.build()


# -- workflow_id --------------------------------------------------------------------------------


def test_workflow_id_depends_on_tasks_and_edges_only():
    first = demo_builder().build()
    assert first.workflow_id == demo_builder().build().workflow_id

    other_name = demo_builder("another").build()
    assert other_name.workflow_id != first.workflow_id

    extra = demo_builder()
    extra.task(name="extra")(lambda ctx: 1)
    assert extra.build().workflow_id != first.workflow_id

    rewired = workflow(name="demo")
    rewired.task(name="fetch")(lambda ctx: 1)
    rewired.task(name="summarize")(lambda ctx: 1)  # same tasks, no edge
    assert rewired.build().workflow_id != first.workflow_id


def test_workflow_id_is_the_same_in_another_process(tmp_path: Path):
    script = tmp_path / "ids.py"
    script.write_text(
        textwrap.dedent(
            """
            from molexp.workflow import workflow

            wf = workflow(name="demo")

            @wf.task
            async def fetch(ctx):
                return [1.0, 4.0, 9.0]

            @wf.task(depends_on=["fetch"])
            async def summarize(ctx):
                return sum(ctx.inputs)

            spec = wf.build()
            print(spec.workflow_id, spec.code_hash())
            """
        )
    )
    outputs = {
        subprocess.run(
            [sys.executable, str(script)], check=True, capture_output=True, text=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(outputs) == 1
    workflow_id, _ = outputs.pop().split()
    assert workflow_id == demo_builder().build().workflow_id


def test_code_hash_follows_the_code():
    def make(offset: int) -> Workflow:
        wf = workflow(name="demo")

        def add(ctx: TaskContext) -> int:
            return offset

        wf.task(add)
        return wf.build()

    assert make(1).code_hash() == make(1).code_hash()
    assert make(1).code_hash() != make(2).code_hash()
    assert make(1).workflow_id == make(2).workflow_id
