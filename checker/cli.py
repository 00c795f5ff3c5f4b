"""The `checker` command line. Exit codes are decided here and nowhere else:
0 all good, 1 a check failed, 2 bad usage or configuration, 3 infrastructure unavailable."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import URL

from checker import migrate
from checker.adopt import adopt
from checker.audit import Argon2Minimum, AuditOptions, run_audit
from checker.audit.options import MIN_ARGON2_ENV, OWASP_MINIMUM
from checker.audit.render import print_result, to_json
from checker.database import migrated_database
from checker.errors import CheckerError, InfrastructureError
from checker.provision import KINDS, select_provider
from checker.provision.dsn import describe, parse_dsn
from checker.smoke import run_smoke
from taskhub.db import libpq_url

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Ephemeral servers and schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[str | None, typer.Option(
    "--db", help=f"Where PostgreSQL comes from: {'|'.join(KINDS)} [env CHECKER_DB; auto]",
    show_default=False)]
DsnOption = Annotated[str | None, typer.Option(
    "--dsn", help="An existing server (databases are created and dropped on it) "
                  "[env CHECKER_DSN]", show_default=False)]
RequiredDsn = Annotated[str, typer.Option("--dsn", help="The database to act on.",
                                          envvar="CHECKER_DSN")]
KeepOption = Annotated[bool, typer.Option(
    "--keep", help="Leave the server and database running after the command and print how "
                   "to stop them.")]


@app.command("audit")
def audit(
    dsn: RequiredDsn,
    history: Annotated[Path | None, typer.Option(
        "--history", help="A JSONL history of the run: enables the ledger checks.",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    only: Annotated[str | None, typer.Option(
        "--only", help="Only these families or checks (comma-separated): schema, orphans, "
                       "transitions, isolation, auth, ledger.", show_default=False)] = None,
    min_argon2: Annotated[str, typer.Option(
        "--min-argon2", envvar=MIN_ARGON2_ENV,
        help="Weakest accepted Argon2id cost of current password hashes.")]
    = str(OWASP_MINIMUM),
    samples: Annotated[int, typer.Option(help="Sample rows kept per failing check.", min=1)]
    = 5,
    isolation_tenants: Annotated[int, typer.Option(
        help="Tenants the isolation probe impersonates (0: all).", min=0)] = 1000,
) -> None:
    """Prove or refute a database's consistency: exit 0 clean, 1 on any violation."""
    options = AuditOptions(samples=samples, min_argon2=Argon2Minimum.parse(min_argon2),
                           isolation_tenants=isolation_tenants)
    result = run_audit(parse_dsn(dsn), history, only, options=options)
    if as_json:
        print(to_json(result))
    else:
        print_result(result)
    if not result.ok:
        raise typer.Exit(1)


@db_app.command("up")
def db_up(db: DbOption = None, dsn: DsnOption = None, keep: KeepOption = False) -> None:
    """Start an ephemeral migrated server and print its URL; Ctrl-C stops and removes it."""
    provider = select_provider(db, dsn, keep=keep)
    with migrated_database(provider) as database:
        url = database.url
        err.print(f"[green]ready[/]: {provider.name} server, database {url.database} at head "
                  f"({migrate.current(url)})")
        if keep:
            hint = database.server.stop_hint or f"DROP DATABASE {url.database} WITH (FORCE)"
            err.print(f"kept running; stop it with: {hint}")
        else:
            err.print("press Ctrl-C to stop and remove it")
        # The URL comes last: whoever reads it may use the database (and interrupt us) at once.
        try:
            print(libpq_url(url), flush=True)
            if not keep:
                threading.Event().wait()
        except KeyboardInterrupt:
            err.print("stopping")


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


def _reachable(url: URL) -> None:
    try:
        psycopg.connect(libpq_url(url), connect_timeout=10).close()
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InfrastructureError(f"cannot connect to {describe(url)}: {reason}") from None


def _terminate(_signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main() -> NoReturn:
    """Entry point: usage errors exit 2 (Typer's own handling), checker errors by their kind."""
    signal.signal(signal.SIGTERM, _terminate)  # `kill` cleans up like Ctrl-C does
    try:
        app(prog_name="checker")
    except CheckerError as exc:
        err.print(f"[red]error[/]: {exc}")
        sys.exit(exc.exit_code)
    sys.exit(0)
