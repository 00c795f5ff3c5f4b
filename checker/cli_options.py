"""The command line's shared options: where PostgreSQL comes from, and `LoadOptions`, the one
options type of `checker run` and `checker explore`.

Help texts that list choices are generated from the registries (providers, Argon2 profiles,
fault kinds), so a new entry shows up in `--help` without editing this file. No Locust here.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer

from checker.errors import UsageError
from checker.faults.spec import faults_help, parse_faults
from checker.profiles import DEFAULT_PROFILE, argon2_params, profiles_help
from checker.provision import KINDS
from checker.runconfig import RunConfig, new_seed

DbOption = Annotated[str | None, typer.Option(
    "--db", help=f"Where PostgreSQL comes from: {'|'.join(KINDS)} (env CHECKER_DB; "
                 "default auto).",
    show_default=False)]
DsnOption = Annotated[str | None, typer.Option(
    "--dsn", help="An existing server (databases are created and dropped on it) "
                  "(env CHECKER_DSN).", show_default=False)]
KeepOption = Annotated[bool, typer.Option(
    "--keep", help="Leave the server and database running after the command and print how "
                   "to stop them.")]
ReportOption = Annotated[Path, typer.Option("--report-dir", help="Where report folders go.")]


@dataclass(frozen=True)
class LoadOptions:
    """What `checker run` was asked for, as typed; `checker explore` offers a subset and fixes
    some (`load_command`). `config()` and `limits()` validate it before anything starts."""

    scenario: Annotated[str, typer.Argument(help="A scenario (see `checker scenarios`).",
                                            show_default=False)]
    db: DbOption = None
    dsn: DsnOption = None
    users: Annotated[int, typer.Option("--users", "-u", help="Simulated users in all.")] = 20
    spawn_rate: Annotated[float, typer.Option(
        "--spawn-rate", "-r", help="Users started per second.")] = 20.0
    duration: Annotated[str | None, typer.Option(
        "--duration", "--run-time", "-t", help="How long the load runs (30s, 5m, 1h30m).")
    ] = "30s"
    workers: Annotated[int, typer.Option(
        "--workers", "--processes",
        help="Local Locust worker processes (distributed mode; 0: one process).")] = 0
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the generated data and choices (default: random, reported).",
        show_default=False)] = None
    report_dir: ReportOption = Path("reports")
    keep: KeepOption = False
    max_fail_ratio: Annotated[float | None, typer.Option(
        "--max-fail-ratio", help="Fail (exit 1) above this ratio of failed operations "
                                 "(default 0: any failure; with --faults: no limit).",
        show_default=False)] = None
    p95_ms: Annotated[float | None, typer.Option(
        "--p95-ms", help="Fail (exit 1) when the p95 of all operations is above this.",
        show_default=False)] = None
    argon2: Annotated[str, typer.Option("--argon2", help=profiles_help())] = DEFAULT_PROFILE
    tenants: Annotated[int | None, typer.Option(
        "--tenants", help="Seeded tenants (default: the scenario's).", show_default=False)
    ] = None
    tasks_per_tenant: Annotated[int | None, typer.Option(
        "--tasks-per-tenant", help="Seeded tasks per tenant (default: the scenario's).",
        show_default=False)] = None
    stop_timeout: Annotated[str, typer.Option(
        "--stop-timeout", help="Grace for users to finish their current operation at the end.")
    ] = "10s"
    remote_workers: Annotated[int, typer.Option(
        "--remote-workers", help="Workers to wait for from other machines (`locust --worker`).")
    ] = 0
    master_bind: Annotated[str, typer.Option(
        "--master-bind", "--master-bind-host",
        help="Interface the master listens on for workers.")] = "127.0.0.1"
    master_port: Annotated[int, typer.Option(
        "--master-port", "--master-bind-port",
        help="Port the master listens on for workers (0: a free one).")] = 0
    ui: Annotated[bool, typer.Option(
        "--ui", help="Locust's web UI instead of headless (like `checker explore`).")] = False
    web_port: Annotated[int, typer.Option(
        "--web-port", "-P", help="Port of Locust's web UI (bound to 127.0.0.1).")] = 8089
    faults: Annotated[str | None, typer.Option(
        "--faults", help=faults_help(), show_default=False)] = None
    csv: Annotated[str | None, typer.Option(
        "--csv", metavar="PREFIX",
        help="Also write Locust's CSV statistics to PREFIX_stats.csv, _stats_history.csv, "
             "_failures.csv and _exceptions.csv.", show_default=False)] = None
    csv_full_history: Annotated[bool, typer.Option(
        "--csv-full-history", help="With --csv: every operation's row in "
                                   "_stats_history.csv, not only the aggregate.")] = False
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="FILE", help="Also write Locust's own HTML report to FILE.",
        show_default=False)] = None
    junit_xml: Annotated[Path | None, typer.Option(
        "--junit-xml", metavar="FILE",
        help="Also write the verdict as JUnit XML for CI: a test case per audit check, "
             "threshold and run condition.", show_default=False)] = None

    def config(self) -> RunConfig:
        """The run's configuration; UsageError (exit 2) for anything out of range."""
        from checker.durations import parse_duration
        from checker.load.catalogue import require

        require(self.scenario)
        argon2_params(self.argon2)
        for name, value, low in (("--users", self.users, 1), ("--workers", self.workers, 0),
                                 ("--remote-workers", self.remote_workers, 0),
                                 ("--tenants", self.tenants, 2),
                                 ("--tasks-per-tenant", self.tasks_per_tenant, 1),
                                 ("--master-port", self.master_port, 0),
                                 ("--web-port", self.web_port, 1)):
            if value is not None and value < low:
                raise UsageError(f"bad {name} {value}: must be at least {low}")
        if self.spawn_rate <= 0:
            raise UsageError(f"bad --spawn-rate {self.spawn_rate}: must be more than zero")
        if self.ui and self.workers + self.remote_workers:
            raise UsageError("--ui runs one process: it cannot go with --workers")
        if self.csv_full_history and not self.csv:
            raise UsageError("--csv-full-history needs --csv PREFIX")
        if self.csv is not None and (not self.csv.strip() or self.csv.endswith("/")):
            raise UsageError(f"bad --csv {self.csv!r}: a file name prefix, such as "
                             "results/run1")
        return RunConfig(
            scenario=self.scenario, users=self.users, spawn_rate=self.spawn_rate,
            duration=None if self.duration is None else parse_duration(self.duration),
            workers=self.workers, remote_workers=self.remote_workers,
            master_bind=self.master_bind, master_port=self.master_port,
            seed=new_seed() if self.seed is None else self.seed, argon2=self.argon2,
            tenants=self.tenants, tasks_per_tenant=self.tasks_per_tenant,
            stop_timeout=parse_duration(self.stop_timeout, "--stop-timeout"), ui=self.ui,
            web_port=self.web_port,
            faults=() if self.faults is None else parse_faults(self.faults),
            csv_prefix=self.csv, csv_full_history=self.csv_full_history)

    def limits(self, config: RunConfig) -> tuple[float | None, float | None]:
        """The failure budget and the p95 limit: the budget is 0 (any failure fails the run)
        unless given, or unless the run injects faults (none then)."""
        ratio = self.max_fail_ratio
        if ratio is not None and not 0 <= ratio <= 1:
            raise UsageError(f"bad --max-fail-ratio {ratio}: between 0 and 1")
        if ratio is None and not config.faults:
            ratio = 0.0
        if self.p95_ms is not None and self.p95_ms <= 0:
            raise UsageError(f"bad --p95-ms {self.p95_ms}: must be more than zero")
        return ratio, self.p95_ms


def writable_file(flag: str, path: Path) -> None:
    """Refuse (UsageError, before anything runs) an output file that could not be written:
    a directory, or a folder that cannot be made or written to."""
    if path.is_dir():
        raise UsageError(f"bad {flag} {path}: a directory, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"bad {flag} {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"bad {flag} {path}: not writable")


def load_command(*, offer: Sequence[str] | None = None, fixed: Mapping[str, Any] | None = None,
                 overrides: Mapping[str, tuple[Any, Any]] | None = None,
                 ) -> Callable[[Callable[[LoadOptions], None]], Callable[..., None]]:
    """Turn `body(options: LoadOptions)` into a Typer command whose parameters are
    `LoadOptions`' fields (those in `offer`, default all); the others take `fixed` values or
    their defaults. `overrides` maps a field to another (annotation, default) for this
    command. Typer reads the parameters from the command's signature, built here."""
    hints = get_type_hints(LoadOptions, include_extras=True)
    offered = [f for f in fields(LoadOptions) if offer is None or f.name in offer]
    unknown = set(offer or ()) - {f.name for f in offered}
    assert not unknown, f"not LoadOptions fields: {unknown}"

    def decorate(body: Callable[[LoadOptions], None]) -> Callable[..., None]:
        parameters = []
        for field in offered:
            annotation, default = (overrides or {}).get(field.name,
                                                        (hints[field.name], field.default))
            parameters.append(inspect.Parameter(
                field.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotation,
                default=inspect.Parameter.empty if default is MISSING else default))

        def command(**values: Any) -> None:
            body(LoadOptions(**values, **(fixed or {})))

        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__name__, command.__doc__ = body.__name__, body.__doc__
        return command

    return decorate
