"""The ``molexp`` command group and how it reports errors.

The commands are listed in :data:`COMMANDS` and a command's module is imported only when that
command runs, so ``molexp --help`` imports none of them. Each command module in turn imports only
click and the CLI's own light modules; the workspace layer, the workflow runtime, YAML and rich
are imported inside the commands that use them, so the listings start quickly too.

A user error (:class:`CliError`, an error the workspace or workflow layer raises on purpose, a
click usage error) is printed as one line, ``error: <message>``, with exit code 2 for a wrong
command line and 1 otherwise; no traceback. Warnings are printed as ``warning: <message>``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import click

from molexp.cli._errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    ScriptImportError,
)
from molexp.cli._lazy import LazyCommand, LazyGroup

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

COMMANDS: dict[str, LazyCommand] = {
    "assets": LazyCommand("molexp.cli._inspect", "assets", "Query the workspace's asset catalog."),
    "execute": LazyCommand(
        "molexp.cli._execute_cmd",
        "execute",
        "Execute one existing run (what schedulers and workers call).",
    ),
    "export": LazyCommand(
        "molexp.cli._export",
        "export",
        "Export a run, or every run of an experiment, as a Workflow Run RO-Crate in DIR.",
    ),
    "gc": LazyCommand(
        "molexp.cli._gc_cmd",
        "gc",
        "Remove temporary files and orphaned payloads left by crashed writers.",
    ),
    "init": LazyCommand(
        "molexp.cli._inspect",
        "init",
        "Create a workspace at PATH (default: the current directory).",
    ),
    "logs": LazyCommand(
        "molexp.cli._inspect",
        "logs",
        "Print a run's log NAME (every log, when NAME is omitted).",
    ),
    "ls": LazyCommand(
        "molexp.cli._inspect",
        "ls",
        "Show the workspace tree (projects, experiments) with run counts by status.",
    ),
    "plugins": LazyCommand("molexp.cli._inspect", "plugins", "Installed plugins."),
    "reindex": LazyCommand(
        "molexp.cli._reindex_cmd",
        "reindex",
        "Rebuild the asset catalog's index from the asset records.",
    ),
    "run": LazyCommand(
        "molexp.cli._run_cmd", "run", "Execute the experiments that SCRIPT binds to workflows."
    ),
    "runs": LazyCommand("molexp.cli._inspect", "runs", "List, show, compare and cancel runs."),
    "serve": LazyCommand(
        "molexp.cli._serve_cmd",
        "serve",
        "Browse WORKSPACE in a web browser: projects, experiments, runs, logs and assets.",
    ),
}
"""The ``molexp`` commands: name -> where the command is defined, and its one-line help."""


def _is_molexp_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error the workspace/workflow layers raise on purpose.

    Checked without importing the workspace layer: if it was never imported, it raised nothing.
    """
    errors = sys.modules.get("molexp.workspace._errors")
    return errors is not None and isinstance(exc, errors.MolexpError)


def _error(message: str, code: int) -> NoReturn:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(f"warning: {message}\n")


class MolexpGroup(LazyGroup):
    """A lazy group whose ``main`` turns user errors into one line on stderr."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exits with the command's code (0 on success)."""
        warnings.showwarning = _show_warning
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx is not None else str(exc))
            raise SystemExit(0) from None
        except click.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            _error(f"{exc.format_message()}{hint}", EXIT_USAGE)
        except click.ClickException as exc:
            _error(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__context__, KeyboardInterrupt):
                _error("interrupted", EXIT_INTERRUPTED)
            _error("aborted", EXIT_FAILURE)
        except ScriptImportError as exc:
            sys.stderr.write(f"error: {exc.message}\n")
            if exc.details:
                sys.stderr.write(exc.details if exc.details.endswith("\n") else exc.details + "\n")
            raise SystemExit(exc.exit_code) from None
        except CliError as exc:
            _error(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            _error("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (`molexp runs list | head`)
            raise SystemExit(EXIT_FAILURE) from None
        except Exception as exc:
            if _is_molexp_error(exc):
                _error(str(exc), EXIT_FAILURE)
            raise
        if standalone_mode:
            raise SystemExit(code if isinstance(code, int) else 0)
        return code


@click.group(name="molexp", cls=MolexpGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="molexp-cli", prog_name="molexp")
def main() -> None:
    """molexp: run and inspect research experiments recorded in a workspace.

    \b
    Run a script's experiments:    molexp run train.py --profile smoke
    Execute one existing run:      molexp execute RUN
    Look at what happened:         molexp ls, molexp runs list, molexp runs show RUN

    The inspection commands find the workspace from --workspace, the MOLEXP_WORKSPACE
    environment variable, or the current directory (or a parent of it).
    """
