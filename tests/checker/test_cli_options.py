"""`checker run` and `checker explore` take one options type, `LoadOptions`: the commands'
parameters are its fields, explore's a subset with the UI fixed on; validation is the type's."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from checker.cli import explore, run
from checker.cli_options import LoadOptions, load_command, writable_file
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


def test_locusts_short_options_mean_what_they_mean_in_locust() -> None:
    """`-u`, `-r`, `-t` (and `--run-time`, `--processes`, `-P`, `--master-bind-host/-port`)
    are Locust's names for the same settings: a Locust user's muscle memory works."""
    seen: list[LoadOptions] = []
    app = typer.Typer()

    @app.command()
    @load_command()
    def probe(options: LoadOptions) -> None:
        seen.append(options)

    short = ["concurrency", "-u", "7", "-r", "3.5", "-t", "2m", "-P", "8100", "--processes",
             "2", "--master-bind-host", "10.0.0.1", "--master-bind-port", "5557"]
    long = ["concurrency", "--users", "7", "--spawn-rate", "3.5", "--duration", "2m",
            "--web-port", "8100", "--workers", "2", "--master-bind", "10.0.0.1",
            "--master-port", "5557"]
    for argv in (short, long, [*long[:5], "--run-time", "2m", *long[7:]]):
        done = CliRunner().invoke(app, argv)
        assert done.exit_code == 0, done.output
    assert seen[0] == seen[1] == seen[2]
    assert (seen[0].users, seen[0].spawn_rate, seen[0].duration) == (7, 3.5, "2m")


def test_output_files_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--csv-full-history needs --csv"):
        LoadOptions("concurrency", csv_full_history=True).config()
    with pytest.raises(UsageError, match="bad --csv 'out/': a file name prefix"):
        LoadOptions("concurrency", csv="out/").config()
    with pytest.raises(UsageError, match="a directory, not a file"):
        writable_file("--junit-xml", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=r"bad --html .*file/report.html"):
        writable_file("--html", blocker / "report.html")
    writable_file("--junit-xml", tmp_path / "new" / "junit.xml")  # the folder is made
    assert (tmp_path / "new").is_dir()
