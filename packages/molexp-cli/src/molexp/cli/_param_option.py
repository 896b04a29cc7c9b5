"""``--param NAME=VALUE``: select runs by parameter value (``molexp runs list``), the value typed
as YAML like an ``--override`` value."""

from __future__ import annotations

from typing import Any

import click


def parse_param(text: str) -> tuple[str, Any]:
    """``"lr=1e-3"`` as ``("lr", 0.001)``: the name taken literally (a dot is part of it), the
    value typed as YAML (``m3`` is a string, ``1`` an int, ``true`` a bool, ``null`` None)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise click.BadParameter(
            f"{text!r} is not NAME=VALUE; write e.g. --param model=m3 or --param lr=1e-3"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # bytes the terminal's encoding could not decode
        raise click.BadParameter(f"the name in {text!r} is not valid UTF-8 text") from None
    # Imported here, not at start-up: only a command line with --param pays for YAML.
    from molexp.cli._profiles import ProfileUsageError, parse_value

    try:
        value = parse_value(raw, name, f"--param {text!r}", headline=f"bad --param {text!r}")
    except ProfileUsageError as exc:
        raise click.BadParameter(exc.message) from None
    return name, value


def _params(ctx: click.Context, option: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for text in values:
        name, value = parse_param(text)
        if name in found:
            raise click.BadParameter(
                f"{name!r} is given twice ({found[name]!r} and {value!r}); a run has one value "
                "per parameter"
            )
        found[name] = value
    return found


param_option = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_params,
    help=(
        "Only runs whose parameter NAME equals VALUE, typed like an --override value (repeatable: "
        "all must match). Answered from the run-parameter index."
    ),
)
