"""Plain Locust runs: `locust -f scenarios/<name>.py` and `locust --worker -f ...`.

`checker run` drives Locust itself and never fires these listeners (its Environment has its
own event hooks). Under plain `locust`:

- a worker waits for the master's setup message and ships its history back (any master
  built from these scenarios: `checker run --workers`, or plain `locust --master`);
- a master or a single process seeds the database named by TASKHUB_DATABASE_URL (or
  CHECKER_DSN): a database already migrated to head, e.g. from `checker db up`. Seeding happens
  in Locust's `init` event, before any user starts; the history goes to CHECKER_HISTORY
  (default `history-<scenario>-<epoch>.jsonl` in the working directory). Audit afterwards with
  `checker audit --dsn URL --history FILE`. CHECKER_SEED (default: random), CHECKER_ARGON2
  (default owasp) tune the run.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import locust
import psycopg
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from checker import runkey
from checker.access import RuntimeAccess
from checker.history import HistoryRecord, HistoryWriter
from checker.janitor import DatabaseJanitor
from checker.load.distributed import serve_master, serve_workers
from checker.load.harness import Harness, Setup, attach
from checker.profiles import DEFAULT_PROFILE, argon2_params, legacy_params
from checker.seed import SeedSpec, hash_all, plan, seed_database
from taskhub.db import libpq_url, sqlalchemy_url

log = logging.getLogger("checker.scenarios")
_installed = False


def prepare(dsn: str, access: RuntimeAccess, scenario: str, spec: SeedSpec, seed: int,
            argon2: str, users: int, history: HistoryWriter) -> Setup:
    """Seed the database (`dsn`, its owner), write the seed's records and the `run.start`
    header; the setup, which carries `access` (the runtime roles) and never `dsn`.

    The header claims the history explains every task only when the database had none
    before the seeding (a plain Locust run on a database an earlier run filled does not)."""
    manifest = plan(spec, seed)
    hashes = hash_all(manifest, argon2_params(argon2), legacy_params(argon2))
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        row = conn.execute("SELECT NOT EXISTS (SELECT FROM tasks)").fetchone()
    complete = bool(row and row[0])
    seed_database(dsn, manifest, hashes, history)
    history.append(HistoryRecord.run_start("runner", time.time(), complete=complete,
                                           scenario=scenario))
    return Setup(access=access.to_dict(), scenario=scenario, seed=seed, argon2=argon2,
                 jwt_secret=secrets.token_urlsafe(48), users=users, manifest=manifest)


def scenario_of(environment: Environment) -> tuple[str, SeedSpec]:
    """The scenario's name and seed spec: the `SCENARIO` of its user classes' locustfile."""
    scenario = getattr(sys.modules[environment.user_classes[0].__module__], "SCENARIO", None)
    if scenario is None:
        raise RuntimeError("the locustfile defines no SCENARIO (checker.load.scenario)")
    return scenario.name, scenario.seed


def _on_init(environment: Environment, **_kw: Any) -> None:
    runner = environment.runner
    try:
        key = runkey.key_from_env()
    except runkey.RunKeyError as exc:
        log.error("%s", exc)
        sys.exit(2)
    if isinstance(runner, WorkerRunner):
        serve_master(environment, key)
        return
    dsn = os.environ.get("TASKHUB_DATABASE_URL") or os.environ.get("CHECKER_DSN")
    if not dsn:
        log.error("set TASKHUB_DATABASE_URL (a database migrated to head, e.g. from "
                  "`checker db up`) to run a checker scenario with plain locust")
        sys.exit(2)
    scenario, spec = scenario_of(environment)
    seed = int(os.environ.get("CHECKER_SEED") or secrets.randbelow(2**31))
    argon2 = os.environ.get("CHECKER_ARGON2", DEFAULT_PROFILE)
    options = environment.parsed_options
    users = int(getattr(options, "num_users", 0) or 100)
    path = Path(os.environ.get("CHECKER_HISTORY") or f"history-{scenario}-{int(time.time())}"
                                                      ".jsonl")
    writer = HistoryWriter(path, mode="w").__enter__()
    janitor = DatabaseJanitor(sqlalchemy_url(dsn))
    name = sqlalchemy_url(dsn).database or "postgres"
    setup = prepare(libpq_url(dsn), janitor.runtime_access(name), scenario, spec, seed, argon2,
                    users, writer)
    log.info("seeded %d tenants (seed %d); history in %s", len(setup.manifest.tenants), seed,
             path)
    if isinstance(runner, MasterRunner):
        expected = int(getattr(options, "expect_workers", 1) or 1)
        if key is None:
            key = runkey.new_key()
            key_file = path.with_suffix(".key")
            runkey.write_key_file(key_file, key)
            log.info("workers need the run key: %s=%s", runkey.KEY_FILE_ENV, key_file.resolve())
        serve_workers(environment, setup, writer, expected, key)
    else:
        attach(environment, Harness(setup, writer))

    @environment.events.quitting.add_listener
    def _close(**_kw: Any) -> None:
        writer.close()
        janitor.drop_roles(name)
        janitor.close()
        shown = sqlalchemy_url(dsn).render_as_string(hide_password=True)
        log.info("audit with: checker audit --dsn %s --history %s", shown, path)


def install() -> None:
    """Register the listeners on Locust's global events once per process."""
    global _installed
    if not _installed:
        locust.events.init.add_listener(_on_init)
        _installed = True
