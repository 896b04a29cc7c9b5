"""The `molexp` command group answers --help and --version."""

from __future__ import annotations

from importlib.metadata import version

from click.testing import CliRunner

from molexp.cli import main


def test_help_lists_usage() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: molexp" in result.output


def test_version_is_the_distribution_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"molexp, version {version('molexp-cli')}"


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output
