"""The `checker` command line. Exit codes are decided here and nowhere else:
0 all good, 1 a check failed, 2 bad usage or configuration, 3 infrastructure unavailable."""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import URL
from typer.core import TyperCommand, TyperGroup, TyperOption

from checker import config_file, migrate
from checker.adopt import adopt
from checker.audit import Argon2Minimum, AuditOptions, run_audit
from checker.audit.options import MIN_ARGON2_ENV, OWASP_MINIMUM
from checker.audit.registry import FAMILIES
from checker.audit.render import print_result, to_json
from checker.cli_options import (
    DbOption,
    DsnOption,
    KeepOption,
    LoadOptions,
    ReportOption,
    load_command,
    writable_file,
)
from checker.cooperative import require_cooperative
from checker.database import migrated_database
from checker.errors import CheckerError, InfrastructureError, UsageError, first_line
from checker.interrupts import INTERRUPTS
from checker.provision import select_provider
from checker.provision.dsn import describe, parse_dsn
from checker.smoke import run_smoke
from taskhub.db import libpq_url

DISTRIBUTION = "taskhub-checker"
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings=HELP_OPTIONS)
db_app = typer.Typer(help="Ephemeral servers and schema migrations.", no_args_is_help=True,
                     context_settings=HELP_OPTIONS)
app.add_typer(db_app, name="db")
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version  # 30 ms: only when asked

        typer.echo(f"checker {version(DISTRIBUTION)}")
        raise typer.Exit


@app.callback()
def _options(version_: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the checker's version and exit.")] = False) -> None:
    pass


RequiredDsn = Annotated[str, typer.Option("--dsn", help="The database to act on.",
                                          envvar="CHECKER_DSN")]
@app.command("audit")
def audit(
    dsn: RequiredDsn,
    history: Annotated[Path | None, typer.Option(
        "--history", help="A JSONL history of the run: enables the ledger checks.",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    only: Annotated[str | None, typer.Option(
        "--only", help="Only these families or checks (comma-separated): "
                       f"{', '.join(FAMILIES)}.", show_default=False)] = None,
    min_argon2: Annotated[str, typer.Option(
        "--min-argon2", envvar=MIN_ARGON2_ENV,
        help="Weakest accepted Argon2id cost of current password hashes.")]
    = str(OWASP_MINIMUM),
    samples: Annotated[int, typer.Option(help="Sample rows kept per failing check.", min=1)]
    = 5,
    isolation_tenants: Annotated[int, typer.Option(
        help="Tenants the isolation probe impersonates (0: all).", min=0)] = 1000,
    history_skew: Annotated[float, typer.Option(
        help="Seconds the clocks of the history's processes may disagree (remote workers).",
        min=0)] = 0.0,
    junit_xml: Annotated[Path | None, typer.Option(
        "--junit-xml", metavar="FILE", help="Also write the verdict as JUnit XML for CI: a "
                                            "test case per check.", show_default=False)] = None,
) -> None:
    """Prove or refute a database's consistency: exit 0 clean, 1 on any violation."""
    options = AuditOptions(samples=samples, min_argon2=Argon2Minimum.parse(min_argon2),
                           isolation_tenants=isolation_tenants, history_skew=history_skew)
    if junit_xml is not None:
        writable_file("--junit-xml", junit_xml)
    result = run_audit(parse_dsn(dsn), history, only, options=options)
    if junit_xml is not None:
        from checker.report import junit

        junit.write(junit_xml, junit.audit_junit([c.to_dict() for c in result.checks],
                                                 result.duration))
    if as_json:
        print(to_json(result))
    else:
        print_result(result)
    if not result.ok:
        raise typer.Exit(1)


@app.command("scenarios")
def list_scenarios() -> None:
    """List the load scenarios, one line each."""
    from checker.load.catalogue import catalogue

    for name, line in catalogue().items():
        print(f"{name:<12} {line}")


@app.command("run")
@load_command()
def run(options: LoadOptions) -> None:
    """Drive a scenario against a fresh migrated database, audit it, write a report."""
    _load(options)


@app.command("explore")
@load_command(
    offer=("scenario", "db", "dsn", "users", "spawn_rate", "duration", "seed", "report_dir",
           "keep", "argon2", "tenants", "tasks_per_tenant", "web_port"),
    fixed={"ui": True},
    overrides={"duration": (Annotated[str | None, typer.Option(
        "--duration", help="End the session after this long (default: at Ctrl-C).",
        show_default=False)], None)})
def explore(options: LoadOptions) -> None:
    """Locust's web UI (127.0.0.1) on a fresh migrated database; Ctrl-C ends, audits, reports."""
    _load(options)


def _load(options: LoadOptions) -> None:
    """Validate, refuse unless psycopg cooperates with gevent, run, print the summary; exit 1
    on FAIL, 130 when interrupted (but for a web-UI session, which Ctrl-C ends)."""
    config = options.config()
    max_fail_ratio, p95_ms = options.limits(config)
    csv_file = None if options.csv is None else Path(f"{options.csv}_stats.csv")
    for flag, path in (("--junit-xml", options.junit_xml), ("--html", options.html),
                       ("--csv", csv_file)):
        if path is not None:
            writable_file(flag, path)
    require_cooperative()
    INTERRUPTS.install()
    from checker.pipeline import execute
    from checker.report.summary import FILES, Thresholds
    from checker.report.terminal import print_summary

    folder, summary = execute(config, db=options.db, dsn=options.dsn, keep=options.keep,
                              report_root=options.report_dir,
                              thresholds=Thresholds(max_fail_ratio, p95_ms))
    print_summary(summary, folder)
    if options.junit_xml is not None:
        from checker.report import junit

        junit.write(options.junit_xml, junit.run_junit(summary))
    if options.html is not None:
        _copy(folder / FILES["locust_report"], options.html, "--html")
    ended_session = config.ui and INTERRUPTS.arrived_in == "load" and INTERRUPTS.count == 1
    if INTERRUPTS.requested and not ended_session:
        err.print(_interrupted_line(summary.totals["requests"], summary.audit, folder,
                                    options.keep))
        raise typer.Exit(130)
    if not summary.ok:
        raise typer.Exit(1)


def _copy(source: Path, target: Path, flag: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot write {flag} {target}: {exc.strerror or exc}") from None


def _interrupted_line(operations: int, audit: dict[str, object], folder: Path,
                      keep: bool) -> str:
    """What an interrupted run did, in one line."""
    load = f"load stopped after {operations} operations" if operations else "no load ran"
    verdict = ("audit skipped" if audit.get("skipped")
               else "audit clean" if audit.get("ok") else "audit found violations")
    left = "kept the database and server" if keep else "removed the database and server"
    return (f"interrupted ({INTERRUPTS.signal_name} during {INTERRUPTS.arrived_in}): {load}, "
            f"{verdict}, report in {folder}, {left}")


@app.command("isolation-matrix")
def isolation_matrix(db: DbOption = None, dsn: DsnOption = None,
                     report_dir: ReportOption = Path("reports")) -> None:
    """Observe Hermitage's anomalies at every isolation level; exit 1 on any undocumented cell.

    Runs the scripts step by step with real sessions and writes the observed matrix and the
    taskhub operations table (Markdown and JSON) under the report directory.
    """
    from checker.isolation.matrix import REPORT_NAME, generate, write_report

    matrix = generate(db, dsn)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    markdown, _data = write_report(matrix, report_dir / f"{stamp}-{REPORT_NAME}")
    print(markdown.read_text(), end="")
    err.print(f"report: {markdown.parent}")
    if matrix.mismatches():
        raise typer.Exit(1)


@db_app.command("up")
def db_up(db: DbOption = None, dsn: DsnOption = None, keep: KeepOption = False) -> None:
    """Start an ephemeral migrated server and print its URL; Ctrl-C stops and removes it."""
    provider = select_provider(db, dsn, keep=keep)
    INTERRUPTS.install()
    with migrated_database(provider) as database:
        url = database.url
        if INTERRUPTS.requested:  # during the set-up: remove it again, say so, exit 130
            err.print(f"interrupted ({INTERRUPTS.signal_name} during set-up): removing it"
                      if not keep else "interrupted during set-up: kept it")
            raise typer.Exit(130)
        err.print(f"[green]ready[/]: {provider.name} server, database {url.database} at head "
                  f"({migrate.current(url)})")
        if keep:
            hint = database.server.stop_hint or f"DROP DATABASE {url.database} WITH (FORCE)"
            err.print(f"kept running; stop it with: {hint}")
        else:
            err.print("press Ctrl-C to stop and remove it")
        # The URL comes last: whoever reads it may use the database (and interrupt us) at once.
        print(libpq_url(url), flush=True)
        if not keep:
            INTERRUPTS.wait()
            err.print("stopping")


@db_app.command("list")
def db_list(dsn: DsnOption = None) -> None:
    """List what `--keep` left: servers on this host, and kept databases on them or on --dsn."""
    from checker.kept import kept_items

    items = kept_items(parse_dsn(dsn) if dsn else None)
    if not items:
        err.print("nothing kept" + ("" if dsn else " on this host (give --dsn for a server's)"))
        return
    rows = [(item.kind, item.name, item.where, item.url, _age(item.age_s),
             _size(item.size_bytes)) for item in items]
    console = Console()
    if not console.is_terminal:  # a pipe: one tab-separated line each, whole names
        print("\n".join("\t".join(row) for row in rows))
        return
    table = Table("kind", "name", "where", "url (no password)", "age", "size")
    for row in rows:
        table.add_row(*row)
    console.print(table)


@db_app.command("rm")
def db_rm(
    names: Annotated[list[str] | None, typer.Argument(
        help="Kept servers or databases (see `checker db list`).", show_default=False)]
    = None,
    dsn: DsnOption = None,
    everything: Annotated[bool, typer.Option("--all", help="Remove everything listed.")]
    = False,
) -> None:
    """Remove kept servers (with their databases) or kept databases."""
    from checker.kept import kept_items, remove

    for item in remove(kept_items(parse_dsn(dsn) if dsn else None), names or [], everything):
        err.print(f"removed {item.kind} {item.name} ({item.where})")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.0f} GB"


@db_app.command("check")
def db_check(db: DbOption = None, dsn: DsnOption = None) -> None:
    """Start an ephemeral migrated server, run a tenant-isolation smoke test, remove it."""
    provider = select_provider(db, dsn)
    with migrated_database(provider) as database:
        result = run_smoke(database.url)
    table = Table("check", "expected", "seen", title=f"{provider.name} smoke test")
    table.add_row("server version", "", result.server_version)
    table.add_row("schema revision", migrate.head(), str(result.revision))
    table.add_row("own tasks visible as app role", "1", str(result.own_tasks_seen))
    table.add_row("other tenant's tasks visible", "0", str(result.foreign_tasks_seen))
    table.add_row("tasks visible with no tenant set", "0", str(result.unset_tenant_seen))
    Console().print(table)
    if not result.ok or result.revision != migrate.head():
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(
    dsn: RequiredDsn,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it.")]
    = False,
) -> None:
    """Migrate a database up to REVISION (default head)."""
    url = parse_dsn(dsn)
    if sql:
        print(migrate.upgrade_sql(url, revision), end="")
        return
    _reachable(url)
    migrate.upgrade(url, revision)
    err.print(f"{describe(url)} is at {migrate.current(url)}")


@db_app.command("downgrade")
def db_downgrade(
    dsn: RequiredDsn,
    revision: Annotated[str, typer.Option(help="Target revision (-1, base, or an id).")] = "-1",
) -> None:
    """Migrate a database down to REVISION (default: one step)."""
    url = parse_dsn(dsn)
    _reachable(url)
    migrate.downgrade(url, revision)
    err.print(f"{describe(url)} is at {migrate.current(url) or 'base'}")


@db_app.command("current")
def db_current(dsn: RequiredDsn) -> None:
    """Print the revision a database is at ('none' when it is not versioned)."""
    url = parse_dsn(dsn)
    _reachable(url)
    print(migrate.current(url) or "none")


@db_app.command("history")
def db_history() -> None:
    """List the schema's revisions, oldest first."""
    head = migrate.head()
    for revision, _down, message in migrate.history():
        marker = " (head)" if revision == head else ""
        print(f"{revision}{marker}  {message}")


@db_app.command("adopt")
def db_adopt(dsn: RequiredDsn) -> None:
    """Recognise a database that predates Alembic, stamp its revision and upgrade it to head."""
    url = parse_dsn(dsn)
    _reachable(url)
    adoption = adopt(url)
    err.print(f"{describe(url)}: recognised revision {adoption.recognised}, "
              f"upgraded to {adoption.upgraded_to}")


@app.command("config")
def show_config(ctx: typer.Context, command: Annotated[str, typer.Argument(
        help="The command whose options to show, e.g. run, explore, audit, 'db up'.")] = "run",
                ) -> None:
    """Print the options a command would run with, and where each comes from: a flag is not
    shown (it wins over all of these), then the environment, the configuration file, the
    default."""
    root = ctx.find_root()
    settings = root.obj if isinstance(root.obj, config_file.ConfigFile) else \
        config_file.ConfigFile()
    target: object = root.command
    defaults: object = root.default_map or {}
    for part in command.split():
        target = target.commands.get(part) if isinstance(target, TyperGroup) else None
        defaults = defaults.get(part, {}) if isinstance(defaults, dict) else {}
        if target is None:
            raise UsageError(f"no command `checker {command}`")
    assert isinstance(target, TyperCommand)
    table = Table()
    for column in ("option", "value", "from"):
        table.add_column(column)
    for param in target.params:
        if not isinstance(param, TyperOption) or param.hidden or not param.name:
            continue
        value, source = _setting(ctx, param, defaults if isinstance(defaults, dict) else {})
        flag = param.opts[0]
        shown = _masked(value) if param.name == "dsn" else value
        table.add_row(flag, "" if shown is None else str(shown), source)
    out = Console(highlight=False, soft_wrap=True)
    out.print(escape(f"checker {command}: {settings.describe()}"))
    out.print(table)


def _setting(ctx: typer.Context, param: TyperOption,
             defaults: dict[str, object]) -> tuple[object, str]:
    """An option's value without a flag, and where it comes from."""
    envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    if param.name in config_file.SERVER_ENV:
        envvars = [config_file.SERVER_ENV[param.name]]
    for name in envvars:
        if os.environ.get(name):
            return os.environ[name], f"env {name}"
    if param.name in defaults:
        return param.process_value(ctx, defaults[param.name]), "file"
    return param.default, "default"


def _masked(dsn: object) -> object:
    """A DSN without its password."""
    if not isinstance(dsn, str):
        return dsn
    try:
        return parse_dsn(dsn).render_as_string(hide_password=True)
    except CheckerError:
        return "(not a valid DSN)"


def _reachable(url: URL) -> None:
    try:
        psycopg.connect(libpq_url(url), connect_timeout=10).close()
    except psycopg.Error as exc:
        raise InfrastructureError(f"cannot connect to {describe(url)}: {first_line(exc)}") \
            from None


def _terminate(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main() -> NoReturn:
    """Entry point: every outcome becomes one exit code, every error one line on stderr.

    Typer runs with `standalone_mode=False` so that its usage errors (unknown option, missing
    value, bad number) come back to us as exceptions and are printed as one line instead of
    a framed panel; the exit code stays 2.
    """
    signal.signal(signal.SIGTERM, _terminate)  # `kill` cleans up like Ctrl-C does
    try:
        command = typer.main.get_command(app)
        assert isinstance(command, TyperGroup)
        settings = config_file.load(config_file.find())
        result = command.main(prog_name="checker", standalone_mode=False, obj=settings,
                              default_map=config_file.default_map(settings, command))
    except CheckerError as exc:
        err.print(f"[red]error[/]: {escape(str(exc))}")
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # click's UsageError and friends
        show = getattr(exc, "format_message", None)
        message = show() if callable(show) else str(exc)
        if message.strip():  # empty for `checker` alone: Typer has printed the help already
            err.print(f"[red]error[/]: {escape(message)}")
        sys.exit(int(getattr(exc, "exit_code", 2)))
    sys.exit(result if isinstance(result, int) else 0)
