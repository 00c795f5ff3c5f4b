"""The configuration file: the options a team sets once, for every command that takes them.

Where it is read from, first found wins: the file `CHECKER_CONFIG` names; `checker.toml` in the
current directory (its top level); `pyproject.toml` in the current directory (its
`[tool.checker]` table). Keys are the commands' long option names, with dashes or underscores
(`users = 50`, `spawn-rate = 10`, `duration = "5m"`, `db = "embedded"`); a key applies to every
command that has that option, and a table named after a command (`[tool.checker.explore]`)
sets options for that command alone, over the shared ones (`[tool.checker.db.up]` for
`checker db up`).

Precedence, highest first: a flag on the command line, the environment (`CHECKER_DB`,
`CHECKER_DSN`, `CHECKER_MIN_ARGON2`), the file, the built-in default. Click (Typer's) gives flags
and its own environment variables precedence over `default_map`; the server's environment
variables are read by the provider when no value is given, so the file's `db` and `dsn` are
set aside when either of them is in the environment. A key no command takes, a table that
is not a command, or a file that is not TOML is refused with one line (exit 2).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer import Context
from typer.core import TyperCommand, TyperGroup, TyperOption

from checker.errors import UsageError

CONFIG_ENV = "CHECKER_CONFIG"
"""Names the configuration file explicitly."""
SERVER_ENV = {"db": "CHECKER_DB", "dsn": "CHECKER_DSN"}
"""The server's options and the environment variables the provider reads for them: when
either is set, the environment picks the server and the file's `db` and `dsn` are set
aside."""


@dataclass(frozen=True)
class ConfigFile:
    """The settings read, flat (`shared`) and per command (`commands`), and where from."""

    path: Path | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        """Where the settings come from, for people."""
        if self.path is None:
            return "no configuration file (checker.toml, or [tool.checker] in pyproject.toml)"
        table = "[tool.checker] of " if self.path.name == "pyproject.toml" else ""
        return f"{table}{self.path}"


def find(cwd: Path | None = None) -> Path | None:
    """The configuration file to read, or None."""
    if named := os.environ.get(CONFIG_ENV):
        return Path(named)
    cwd = cwd or Path.cwd()
    return next((cwd / name for name in ("checker.toml", "pyproject.toml")
                 if (cwd / name).is_file()), None)


def load(path: Path | None) -> ConfigFile:
    """The settings of `path` (None: none); UsageError naming the file for a bad one. A
    `pyproject.toml` without a `[tool.checker` table is no configuration (and is not
    parsed: another tool's file is not ours to judge)."""
    if path is None:
        return ConfigFile()
    try:
        text = path.read_text(encoding="utf-8")
        if path.name == "pyproject.toml" and "[tool.checker" not in text:
            return ConfigFile()
        data = tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"cannot read configuration {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"configuration {path} is not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("checker", {})
        if not isinstance(data, dict):
            raise UsageError(f"configuration {path}: [tool.checker] must be a table")
    tables: dict[str, dict[str, Any]] = {}
    _tables(data, "", tables)
    shared = tables.pop("", {})
    return ConfigFile(path, shared, tables)


def _tables(table: Mapping[str, Any], path: str, out: dict[str, dict[str, Any]]) -> None:
    """Flatten nested tables: `[tool.checker.db.up]` is the command path `db up`."""
    out[path] = {_key(k): v for k, v in table.items() if not isinstance(v, dict)}
    for name, value in table.items():
        if isinstance(value, dict):
            _tables(value, f"{path} {name.strip()}".strip(), out)


def _key(name: str) -> str:
    return name.strip().replace("-", "_")


def default_map(config: ConfigFile, root: TyperGroup) -> dict[str, Any]:
    """Click's `default_map` for the command tree under `root`: each command's options from
    the file (the shared table, then its group's, then its own), the server keys set aside
    when the environment picks the server.

    UsageError for a table that names no command or group, or a key no command under its
    table takes.
    """
    commands_by_path = dict(_commands(root))
    options = {path: _options(command) for path, command in commands_by_path.items()}
    tables = {"": config.shared, **config.commands}
    for table, settings in tables.items():
        under = [names for path, names in options.items() if _within(path, table)]
        if not under:
            raise UsageError(f"configuration {config.path}: [{table}] is not a checker "
                             f"command (one of {', '.join(sorted(options))})")
        for key in sorted(set(settings) - set().union(*under)):
            where = f"`checker {table}` has no" if table else "no checker command has an"
            raise UsageError(f"configuration {config.path}: {where} option {_flag(key)}")
    server_from_env = any(os.environ.get(name) for name in SERVER_ENV.values())
    out: dict[str, Any] = {}
    for path, names in options.items():
        values: dict[str, Any] = {}
        for table in sorted((t for t in tables if _within(path, t)), key=len):
            values |= {k: v for k, v in tables[table].items() if k in names}
        if server_from_env:
            values = {k: v for k, v in values.items() if k not in SERVER_ENV}
        for key, value in values.items():
            _check_value(config, commands_by_path[path], names[key], value)
        if values:
            _nest(out, path.split(), values)
    return out


def _within(path: str, table: str) -> bool:
    """Whether the command `path` is `table` or below it ("" holds every command)."""
    return not table or path == table or path.startswith(f"{table} ")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _commands(group: TyperGroup, prefix: str = "") -> list[tuple[str, TyperCommand]]:
    """(space-separated path, command) for every command below `group`."""
    found = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, TyperGroup):
            found += _commands(command, f"{path} ")
        elif isinstance(command, TyperCommand):
            found.append((path, command))
    return found


def _options(command: TyperCommand) -> dict[str, TyperOption]:
    return {param.name: param for param in command.params
            if isinstance(param, TyperOption) and param.name and not param.hidden}


def _check_value(config: ConfigFile, command: TyperCommand, option: TyperOption,
                 value: object) -> None:
    """Refuse, naming the file, a value the option cannot take (Typer would, but without
    saying that the value came from the file). The value is not repeated: it may be a DSN
    with its password."""
    try:
        option.process_value(Context(command), value)
    except Exception as exc:  # the option's own refusal (Click's BadParameter and kin)
        message = getattr(exc, "message", None) or str(exc)
        raise UsageError(f"configuration {config.path}: bad {_flag(str(option.name))}: "
                         f"{message}") from None


def _nest(out: dict[str, Any], path: list[str], values: Mapping[str, Any]) -> None:
    for part in path[:-1]:
        out = out.setdefault(part, {})
    out[path[-1]] = dict(values)
