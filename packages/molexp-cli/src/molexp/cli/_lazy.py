"""Command groups whose subcommands are imported only when one of them is invoked.

A :class:`LazyGroup` knows its subcommands from a static table (name -> module, attribute, and
the one-line help shown in listings), so ``molexp --help`` lists every command without importing
the modules that define them; ``tests/test_startup.py`` checks that the table's help matches
each command's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    """Where a subcommand is defined, and its one-line help (the first sentence of its help)."""

    module: str
    attribute: str
    help: str


class LazyGroup(click.Group):
    """A click group that imports a subcommand from its table the first time it is looked up.

    Subcommands added with ``add_command`` (or ``@group.command``) work as in any group; the
    table adds the lazy ones, listed in help from the table alone.
    """

    def __init__(
        self, *args: Any, lazy: Mapping[str, LazyCommand] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, LazyCommand] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand's name, sorted: the added ones and the table's."""
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The subcommand ``cmd_name``, importing its module if it comes from the table."""
        found = self.commands.get(cmd_name)
        if found is not None or cmd_name not in self.lazy:
            return found
        return self.load(cmd_name)

    def load(self, name: str) -> click.Command:
        """Import the table's subcommand ``name`` and add it to the group."""
        entry = self.lazy[name]
        # __import__ rather than importlib.import_module: `python -X importtime` reports it
        module = __import__(entry.module, fromlist=[entry.attribute])
        command = getattr(module, entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        self.add_command(command, name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The "Commands" section; a subcommand not imported yet is shown with its table help."""
        shown: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                # click shortens the help exactly as it would the real command's docstring
                command = click.Command(name, help=self.lazy[name].help)
            if not command.hidden:
                shown.append((name, command))
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in shown])
