"""One load run from end to end: provision, migrate, seed and drive the scenario, audit,
write the report. Returns the report folder and the summary; the CLI decides the exit code.

Import only after gevent's monkey-patching (it imports the Locust runner).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from sqlalchemy import URL

from checker import capacity, report
from checker.audit import AuditOptions, AuditResult, run_audit
from checker.database import migrated_database
from checker.faults.injector import Injector
from checker.faults.spec import prepare_provider
from checker.faults.summary import count_client_error, fault_problems, faults_section
from checker.history import HistoryRecord, iter_history
from checker.interrupts import INTERRUPTS, Interrupts
from checker.load.result import LoadResult
from checker.load.runner import run_load
from checker.load.scenario import load as load_scenario
from checker.profiles import argon2_params, audit_minimum
from checker.provision import select_provider
from checker.report.figures import FigureCollector
from checker.report.summary import FILES, RunSummary, Thresholds, build
from checker.runconfig import RunConfig
from taskhub.db import libpq_url

err = Console(stderr=True, highlight=False, soft_wrap=True)


def execute(config: RunConfig, *, db: str | None, dsn: str | None, keep: bool,
            report_root: Path, thresholds: Thresholds,
            interrupts: Interrupts = INTERRUPTS) -> tuple[Path, RunSummary]:
    """Run the scenario on a fresh migrated database and write its report folder.

    An interrupt (`interrupts`) stops the load or skips what has not started; the audit
    still runs unless a second one arrived, the report is written, and the database and the
    server go (unless kept)."""
    scenario = load_scenario(config.scenario)
    processes = config.expected_workers or 1
    provider = select_provider(db, dsn, keep=keep,
                               options=capacity.server_options(config.users, processes))
    if config.faults:
        prepare_provider(provider, config.faults)
    injector: Injector | None = None
    interrupts.enter("provision")
    with migrated_database(provider, interrupts.enter) as database:
        url = libpq_url(database.url)
        capacity.require_room(url, config.users, processes)
        folder = report.new_folder(report_root, config.scenario)
        history = folder / FILES["history"]
        err.print(f"[bold]{config.scenario}[/]: {provider.name} server, database "
                  f"{database.url.database}; report in {folder}")
        if config.faults:
            injector = Injector(config.faults, url, provider)
            err.print("faults: " + "; ".join(f.describe() for f in config.faults))
        load = run_load(scenario, config, url, database.access, history, folder, injector,
                        interrupts)
        # The history is read once and never held: each record goes to the figures, the
        # clients' error tally and the audit's temporary tables as it is read.
        tally = _Tally()
        stream = tally.observe(iter_history(history))
        audit = _audit(database.url, None if load.lost_worker else stream, config,
                       interrupts)
        for _rest in stream:  # what the audit did not read (skipped, or none)
            pass
        if not tally.complete:  # an interrupt cut the stream: count it all again
            tally = _Tally()
            for _record in tally.observe(iter_history(history)):
                pass
        version = _server_version(url)
        if keep:
            name = database.url.database
            hint = database.server.stop_hint or f"DROP DATABASE {name} WITH (FORCE); " \
                                                f"DROP ROLE {name}_app, {name}_worker"
            err.print(f"kept running: {url}\nstop it with: {hint}")
        interrupts.enter("cleanup")
    interrupts.enter("report")
    figs = tally.figures.figures()
    faults = broken = None
    if injector is not None:
        faults = faults_section(config.faults, injector.records, tally.errors,
                                load.started)
        broken = fault_problems(faults)
    summary = build(config, _parameters(config, load, provider.name,
                                        str(database.url.database), interrupts),
                    load, figs, audit, thresholds, version, faults=faults,
                    fault_problems=broken)
    report.write(folder, summary, figs, load.locust_html, interrupts.seconds)
    return folder, summary


class _Tally:
    """What the report takes from the history, counted as the audit streams it."""

    def __init__(self) -> None:
        self.figures = FigureCollector()
        self.errors: Counter[str] = Counter()
        self.complete = False

    def observe(self, records: Iterator[HistoryRecord]) -> Iterator[HistoryRecord]:
        """`records`, each counted as it goes by; `complete` once the last has."""
        for record in records:
            self.figures.add(record)
            count_client_error(self.errors, record)
            yield record
        self.complete = True


def _audit(url: URL, history: Iterator[HistoryRecord] | None, config: RunConfig,
           interrupts: Interrupts) -> AuditResult | None:
    """The run's audit; None when a second interrupt skipped it (or cut it short).

    A lost worker's operations since its last report are missing from the history
    (`history` is None then): the ledger would blame the system under test for them, so
    only the database's own checks run, and the run fails naming the worker."""
    if interrupts.skip_audit:
        return None
    err.print("auditing")
    interrupts.enter("audit")
    try:
        return run_audit(url, history,
                         options=AuditOptions(min_argon2=audit_minimum(config.argon2)))
    except KeyboardInterrupt:  # the second interrupt, raised by its handler mid-audit
        return None


def _server_version(url: str) -> str:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT version()").fetchone()
    return str(row[0]) if row else "unknown"


def _parameters(config: RunConfig, load: LoadResult, provider: str, database: str,
                interrupts: Interrupts) -> dict[str, Any]:
    params = asdict(config)
    if load.started_with is not None:  # what the web UI's form started, not its defaults
        params["users"], params["spawn_rate"] = load.started_with
    params.update({
        "argon2_params": str(audit_minimum(config.argon2)),
        "argon2_profile_cost": asdict(argon2_params(config.argon2)),
        "tenants": load.tenants, "seeded_tasks": load.seeded_tasks,
        "unsafe": list(load.unsafe), "interrupted": interrupts.requested,
        "provider": provider, "database": database, "refused_peers": load.refused_peers,
        "lost_worker": load.lost_worker, "interrupted_in": interrupts.arrived_in,
        "faults": ";".join(f.describe() for f in config.faults),
    })
    return params
