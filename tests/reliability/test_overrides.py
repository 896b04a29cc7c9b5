"""``--override`` strings from hypothesis (issue 8 "hypothesis-generated ... override strings").

Every string is either accepted, giving a config that a run can store and read back exactly,
or refused with a one-line :class:`ProfileUsageError` that quotes it, never another exception
(which the CLI would show as a traceback). A handful of the nastiest go through the real
``molexp run`` as well: exit code 2, one line on stderr, no traceback, nothing created.

Hypothesis names, ids and artifact/log/checkpoint/asset names are covered by
packages/molexp-workspace/tests/test_names.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from molexp.cli._profiles import ProfileUsageError, apply_override, load_profile, parse_override
from molexp.workspace import RunMetadata
from molexp.workspace._records import check_params, parse_record

pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

#: YAML that has broken parsers: tags whose constructor raises, aliases, merges, directives,
#: documents, block scalars, huge and deeply nested values.
YAML_PIECES = [
    "1",
    "1e-3",
    "-.inf",
    ".nan",
    "~",
    "yes",
    "0x1F",
    "0o17",
    "2024-01-02",
    "2001-12-14t21:59:43.10-05:00",
    "!!float abc",
    "!!float [1]",
    "!!int x",
    "!!int 0b102",
    "!!bool maybe",
    "!!null x",
    "!!binary aGk=",
    "!!binary !!!",
    "!!timestamp 2001-01-01",
    "!!set {a}",
    "!!omap [a: 1]",
    "!!pairs [a: 1]",
    "!!str 1",
    "!!python/object:os.system x",
    "!local x",
    "&a [*a]",
    "&a {k: *a}",
    "[&a [1, 2], *a, *a]",
    "*undefined",
    "[1, 2",
    "{a: 1",
    "{a: 1}",
    "{1: a}",
    "{[1]: a}",
    "{a: 1, a: 2}",
    "{<<: {a: 1}}",
    "{<<: [1]}",
    "<<",
    "? x",
    "%YAML 1.1\n---\nx",
    "%TAG ! tag:x,2000:\n--- !a 1",
    "---",
    "...",
    "1\n---\n2",
    "|\n  block\n  text",
    ">\n folded",
    "'single ''quoted'''",
    '"double \\u00e9 \\x00"',
    '"\\ud800"',
    "\t",
    "- a\n- b",
    "a: b: c",
    "9" * 5000,
    "1" + "0" * 400 + ".5",
    "[" * 120 + "]" * 120,
    "[" * 2000 + "]" * 2000,
    "{a: " * 150 + "1" + "}" * 150,
]

KEYS = st.lists(
    st.one_of(st.text(max_size=8), st.sampled_from(["a", "train", " lr ", "é", "\udce9", ""])),
    min_size=1,
    max_size=4,
).map(".".join)
VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(YAML_PIECES),
    st.lists(st.sampled_from(YAML_PIECES[:60]), min_size=1, max_size=4).map(
        lambda parts: "[" + ", ".join(parts) + "]"
    ),
)
OVERRIDES = st.one_of(
    st.text(max_size=60),
    st.builds(lambda k, sep, v: f"{k}{sep}{v}", KEYS, st.sampled_from(["=", "==", ""]), VALUES),
)


def check_override(text: str) -> None:
    try:
        path, value = parse_override(text)
    except ProfileUsageError as exc:
        message = str(exc)
        assert "--override" in message and repr(text)[:40] in message, message
        assert "\n" not in message, message
        return
    # Accepted: a non-empty dotted key, and a value a run stores and reads back exactly.
    assert path and all(part and part == part.strip() for part in path)
    config: dict = {}
    apply_override(config, path, value, text)
    stored = check_params(config, what="profile config")
    record = RunMetadata(id="r", experiment_id="e", project_id="p", config=stored)
    data = record.model_dump_json(indent=2).encode()
    again = parse_record(data, RunMetadata, "run.json")
    assert json.dumps(again.config, sort_keys=True) == json.dumps(stored, sort_keys=True)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(OVERRIDES)
@example("a=!!float abc")
@example("a=!!bool x")
@example("a=&x [*x]")
@example("caf\udce9=1")
@example("a=" + "9" * 5000)
@example("a=" + "[" * 2000 + "]" * 2000)
@example("a=" + "[" * 150 + "]" * 150)
def test_every_override_is_accepted_and_storable_or_refused_clearly(text: str) -> None:
    check_override(text)


@settings(max_examples=100)
@given(st.lists(OVERRIDES, min_size=1, max_size=4))
def test_overrides_applied_together_are_storable_or_refused_clearly(texts: list[str]) -> None:
    """Applying several (``a=1`` then ``a.b=2``) is an error naming the clash, or a config."""
    check_overrides_together(texts)


def check_overrides_together(texts: list[str]) -> None:
    try:
        profile = load_profile(overrides=texts)
    except ProfileUsageError as exc:
        message = str(exc)
    else:
        check_params(profile.config, what="profile config")
        return
    assert "--override" in message and "\n" not in message


# -- through the real command ----------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    from pathlib import Path

    import molexp as me
    from molexp.workflow import TaskContext, workflow

    HERE = Path(__file__).resolve().parent
    wf = workflow(name="train")


    @wf.task
    def fit(ctx: TaskContext) -> int:
        ctx.set_result("epochs", ctx.config.get("epochs", 1))
        return 1


    spec = wf.build()
    ws = me.Workspace(HERE / "lab", name="Lab")
    spec.bind_to(ws.Project("demo").Experiment("baseline", params={"lr": 0.5}))
    me.entry(ws)
    """
)


def _molexp(args: list[str | bytes], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    exe = Path(sys.executable).parent / "molexp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    return subprocess.run(
        [str(exe) if exe.is_file() else "molexp", *args],
        cwd=cwd,
        env={**env, "COLUMNS": "200", "LC_ALL": "C.UTF-8"},
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        (b"a=!!float abc", b"could not convert string to float"),
        (b"a=!!bool maybe", b"is not valid for its tag"),
        (b"a=&x [*x]", b"refers back to a value that contains it"),
        (b"caf\xe9.lr=1", b"is not valid UTF-8 text"),
        (b'a="\\ud800"', b"a lone surrogate"),
        (b"a=" + b"[" * 3000 + b"]" * 3000, b"nested too deeply"),
        (b"a=" + b"[" * 150 + b"]" * 150, b"nested more than 99 levels"),
        (b"a.b.c=" + b"[" * 98 + b"]" * 98, b"nested more than 99 levels"),
        (b"a=" + b"9" * 5000, b"Exceeds the limit"),
        (b"a={b: [", b"not valid YAML"),
        (b"=1", b"KEY=VALUE"),
    ],
)
def test_the_cli_refuses_bad_overrides_in_one_line(
    tmp_path: Path, override: bytes, needle: bytes
) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    done = _molexp(["run", "train.py", "-o", override], tmp_path)
    assert done.returncode == 2, done
    assert b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(b"error: "), done.stderr
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "lab").exists(), "a refused override created something"


def test_the_cli_stores_an_accepted_nasty_override(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    done = _molexp(["run", "train.py", "-o", "epochs=!!int 3", "-o", "x.y=[&a [1], *a]"], tmp_path)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    (record,) = tmp_path.glob("lab/projects/demo/experiments/baseline/runs/*/run.json")
    stored = json.loads(record.read_text())
    assert stored["config"] == {"epochs": 3, "x": {"y": [[1], [1]]}}
    assert stored["results"] == {"epochs": 3}
