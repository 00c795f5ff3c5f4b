"""`checker run` and `checker explore` take one options type, `LoadOptions`: the commands'
parameters are its fields, explore's a subset with the UI fixed on; validation is the type's."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields

import pytest
import typer
from typer.testing import CliRunner

from checker.cli import explore, run
from checker.cli_options import LoadOptions, load_command
from checker.errors import UsageError


def test_run_offers_every_field_and_explore_a_subset() -> None:
    names = [f.name for f in fields(LoadOptions)]
    assert list(inspect.signature(run).parameters) == names
    offered = inspect.signature(explore).parameters
    assert set(offered) < set(names)
    assert {"workers", "faults", "ui", "max_fail_ratio"}.isdisjoint(offered)
    assert offered["duration"].default is None  # explore: until Ctrl-C


def test_a_command_builds_the_options_with_its_fixed_values() -> None:
    seen: list[LoadOptions] = []
    app = typer.Typer()

    @app.command()
    @load_command(offer=("scenario", "users"), fixed={"ui": True})
    def probe(options: LoadOptions) -> None:
        seen.append(options)

    done = CliRunner().invoke(app, ["concurrency", "--users", "3"])
    assert done.exit_code == 0, done.output
    assert seen == [LoadOptions("concurrency", users=3, ui=True)]
    refused = CliRunner().invoke(app, ["concurrency", "--workers", "2"])
    assert refused.exit_code == 2 and "No such option" in refused.output


def test_validation_is_the_options_own() -> None:
    config = LoadOptions("concurrency", duration="2s", seed=7).config()
    assert (config.duration, config.seed, config.faults) == (2.0, 7, ())
    assert LoadOptions("concurrency").limits(config) == (0.0, None)
    faulty = LoadOptions("concurrency", faults="kill-backends:every=1s").config()
    assert LoadOptions("concurrency").limits(faulty) == (None, None)
    with pytest.raises(UsageError, match="--ui runs one process"):
        LoadOptions("concurrency", ui=True, workers=2).config()
    with pytest.raises(UsageError, match="bad --max-fail-ratio 2"):
        LoadOptions("concurrency", max_fail_ratio=2).limits(config)
    with pytest.raises(UsageError, match="unknown scenario 'nope'"):
        LoadOptions("nope").config()


def test_the_conventions_of_a_command_line() -> None:
    """`-h` is `--help` at every level, `--version` names the installed distribution, and
    shell completion is offered."""
    from importlib.metadata import version

    from checker.cli import app

    runner = CliRunner()
    for command in ([], ["db"], ["run"], ["db", "up"], ["audit"]):
        short, long = (runner.invoke(app, [*command, flag]) for flag in ("-h", "--help"))
        assert short.exit_code == long.exit_code == 0, short.output
        assert short.output == long.output and "Usage: " in short.output
    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output == f"checker {version('taskhub-checker')}\n"
    assert "--install-completion" in runner.invoke(app, ["--help"]).output


def test_the_help_names_the_environment_and_the_default() -> None:
    """Rich reads `[...]` in a help text as markup and drops it: the help must still say
    where --db and --dsn come from when they are not given."""
    from checker.cli import app

    output = CliRunner().invoke(app, ["db", "up", "--help"]).output
    shown = re.sub(r"[│\s]+", " ", output)  # the help's box and line wrapping undone
    assert "(env CHECKER_DB; default auto)" in shown
    assert "(env CHECKER_DSN)" in shown
