"""The configuration file (`checker.toml`, `[tool.checker]` in pyproject.toml, or the file
CHECKER_CONFIG names): precedence flags > environment > file > default, shown by `checker
config`; anything wrong in it is one line naming the file, exit 2."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from checker.cli import main
from checker.provision import Server
from taskhub.db import libpq_url
from tests.checker.run_support import checker

Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           tmp_path: Path) -> Invoke:
    """`checker ARGS...` in this process, in `tmp_path`, with no CHECKER_* environment."""
    monkeypatch.setattr(signal, "signal", lambda *_args: None)
    for name in [name for name in os.environ if name.startswith("CHECKER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["checker", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err
    return run


def rows(output: str) -> dict[str, tuple[str, str]]:
    """`checker config`'s table: option -> (value, from)."""
    found = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) == 3 and cells[0].startswith("--"):
            found[cells[0]] = (cells[1], cells[2])
    return found


def test_flags_beat_the_environment_which_beats_the_file(
        invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.checker]\nusers = 50\nspawn-rate = 5\n'
        'db = "embedded"\ndsn = "postgresql://u:s3cret@db.example/app"\n'
        '\n[tool.checker.explore]\nduration = "10m"\n')
    code, out, _ = invoke("config")
    assert code == 0
    assert "[tool.checker] of" in out and str(tmp_path / "pyproject.toml") in out
    shown = rows(out)
    assert shown["--users"] == ("50", "file") and shown["--spawn-rate"] == ("5.0", "file")
    assert shown["--duration"] == ("30s", "default")  # explore's table is explore's alone
    assert shown["--db"] == ("embedded", "file")
    assert "s3cret" not in out and shown["--dsn"][1] == "file"
    assert rows(invoke("config", "explore")[1])["--duration"] == ("10m", "file")

    monkeypatch.setenv("CHECKER_DB", "container")
    shown = rows(invoke("config")[1])
    assert shown["--db"] == ("container", "env CHECKER_DB")
    assert shown["--dsn"] == ("", "default")  # the environment picks the server, all of it


def test_a_run_takes_its_settings_from_the_file_and_its_flags(
        pg_server: Server, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (tmp_path / "checker.toml").write_text(
        f'dsn = "{libpq_url(pg_server.url)}"\nusers = 2\nspawn-rate = 50\n'
        f'argon2 = "test"\nreport-dir = "{reports}"\n\n[run]\nduration = "2s"\n')
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CHECKER_")}
    done = checker("run", "concurrency", "-u", "3", env={
        **env, "CHECKER_CONFIG": str(tmp_path / "checker.toml")}, replace_env=True)
    assert done.returncode == 0, done.stderr[-3000:]
    [folder] = reports.iterdir()
    parameters = json.loads((folder / "summary.json").read_text())["parameters"]
    assert (parameters["users"], parameters["duration"], parameters["argon2"],
            parameters["provider"]) == (3, 2.0, "test", "dsn")


@pytest.mark.parametrize(("text", "message"), [
    ("userz = 1\n", "no checker command has an option --userz"),
    ("[runn]\nusers = 1\n", "[runn] is not a checker command"),
    ("[run]\nweb-port = 1\n[audit]\nusers = 1\n", "`checker audit` has no option --users"),
    ('users = "many"\n', "bad --users: Input should be a valid integer"),
    ("users = [\n", "is not valid TOML"),
])
def test_a_bad_file_is_one_line_naming_it(invoke: Invoke, tmp_path: Path, text: str,
                                          message: str) -> None:
    (tmp_path / "checker.toml").write_text(text)
    code, out, err = invoke("scenarios")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err and str(tmp_path / "checker.toml") in err


def test_a_named_file_must_exist(invoke: Invoke, monkeypatch: pytest.MonkeyPatch,
                                 tmp_path: Path) -> None:
    monkeypatch.setenv("CHECKER_CONFIG", str(tmp_path / "missing.toml"))
    code, _, err = invoke("scenarios")
    assert code == 2 and "cannot read configuration" in err and "missing.toml" in err


def test_a_pyproject_without_the_table_is_not_a_configuration(invoke: Invoke,
                                                              tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    code, out, _ = invoke("config", "db up")
    assert code == 0 and "no configuration file" in out
    assert rows(out)["--keep"] == ("False", "default")
