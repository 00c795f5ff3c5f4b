"""pytest fixtures: one PostgreSQL server per session, migrated once, a fresh clone per test.

Registered through the `pytest11` entry point, so any project with the checker installed can
use them. The server comes from `--checker-db` / CHECKER_DB / ini `checker_db`
(auto|container|embedded|dsn) and `--checker-dsn` / CHECKER_DSN / ini `checker_dsn` (a flag wins,
then the environment, then the ini). Nothing starts until a test asks for a database; under
pytest-xdist (`-n N`) each worker starts its own then, unless the ini sets
`checker_xdist_shared_server = true`: the controller then starts one server and migrates one
template for all the workers when the first worker comes up (each test still gets its own
clone).

Fixtures:
- `pg_server`: the running `Server` (session).
- `pg_janitor`: the `DatabaseJanitor` for that server (session).
- `pg_template`: name of a database migrated to head, the template of every clone (session).
  The schema is taskhub's unless the ini names the project's own Alembic configuration
  (`checker_alembic_ini`; `checker_alembic_env` sets the variables its env.py reads;
  `checker_extensions` are created first; `checker.project_schema` says how each usual
  env.py is served). A `conftest.py` may implement `pytest_checker_prepare_template(config,
  url)` (`checker.pytest_hooks`) to prepare the template before it is migrated, or override
  `pg_template` altogether.
- `db_url`: URL of a fresh database cloned from the template, dropped after the test.
- `db_engine`: a SQLAlchemy engine on `db_url` as its owner (to arrange and inspect state
  behind the services' back), disposed after the test.
- `db_access`: the runtime login roles and tenant key of `db_url` (`checker.access`).
- `db`: the `taskhub.db.Database` the services take: pools of the runtime roles only.

After the body of every test that uses a database (`db_url`, directly or through `db_engine`
or any fixture built on them) of taskhub's schema, the consistency audit (`checker.audit`)
runs on that database and fails the test with its findings (another project's schema is not
audited: the checks are taskhub's). Tests that corrupt a database on purpose opt out with
`@pytest.mark.checker_no_audit` (every marker of the plugin starts with `checker_`);
`--checker-no-audit` turns it off for a run. Current password hashes are held to the
Argon2id minimum of `--checker-min-argon2` / CHECKER_MIN_ARGON2, by default the cheap
profile the tests hash with (taskhub.settings.TEST_ARGON2). Loading the plugin imports
nothing of taskhub, nor the providers: they load when a test first asks for a database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from checker.errors import CheckerError

if TYPE_CHECKING:  # loading the plugin imports nothing of taskhub (nor the providers)
    from sqlalchemy import URL, Engine

    from checker.access import RuntimeAccess
    from checker.audit import AuditOptions
    from checker.janitor import DatabaseJanitor
    from checker.project_schema import ProjectSchema
    from checker.provision import Provider, Server
    from taskhub.db import Database

NO_AUDIT = "checker_no_audit"
MIN_ARGON2_ENV = "CHECKER_MIN_ARGON2"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register `pytest_checker_prepare_template` (`checker.pytest_hooks`)."""
    from checker import pytest_hooks

    pluginmanager.add_hookspecs(pytest_hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the provider options."""
    group = parser.getgroup("checker", "ephemeral PostgreSQL for tests")
    group.addoption("--checker-db", default=None, metavar="KIND",
                    help="where the test server comes from: a `checker --db` kind, auto, "
                         "container, embedded or dsn (default: CHECKER_DB or auto)")
    group.addoption("--checker-dsn", default=None,
                    help="an existing server to create test databases on (or CHECKER_DSN)")
    group.addoption("--checker-no-audit", action="store_true", default=False,
                    help="do not audit each test's database after the test")
    group.addoption("--checker-alembic-ini", default=None, metavar="PATH",
                    help="the project's alembic.ini: migrate the test databases with its "
                         "migrations instead of taskhub's (or ini checker_alembic_ini)")
    group.addoption("--checker-min-argon2", default=None, metavar="m=KIB,t=N,p=N",
                    help="weakest Argon2id cost the audit accepts (default: "
                         f"{MIN_ARGON2_ENV} or taskhub's test profile, m=1024,t=1,p=1)")
    # The same settings in the project's ini / pyproject.toml ([tool.pytest.ini_options]);
    # a flag wins, then the environment, then these.
    parser.addini("checker_db", "where the test server comes from (as --checker-db)",
                  default="")
    parser.addini("checker_dsn", "an existing server for the test databases (as "
                                 "--checker-dsn)", default="")
    parser.addini("checker_min_argon2", "weakest Argon2id cost the audit accepts (as "
                                        "--checker-min-argon2)", default="")
    parser.addini("checker_audit", "audit each test's database after the test (false: as "
                                   "--checker-no-audit; only taskhub's schema is audited)",
                  type="bool", default=True)
    parser.addini("checker_alembic_ini", "the project's alembic.ini, relative to this file: "
                                         "its migrations make the test databases' schema "
                                         "(default: taskhub's)", default="")
    parser.addini("checker_alembic_env", "NAME=VALUE lines set while the project's "
                                         "migrations run, VALUE naming {url}, {libpq_url}, "
                                         "{host}, {port}, {user}, {password}, {database}",
                  type="linelist", default=[])
    parser.addini("checker_extensions", "extensions created on the template before "
                                        "migrating (the embedded provider picks an "
                                        "installation that has them)", type="args",
                  default=[])
    parser.addini("checker_xdist_shared_server",
                  "under pytest-xdist, start one server (and migrate one template) in the "
                  "controller for every worker when the first worker comes up, instead of "
                  "one per worker when a test first asks for a database", type="bool",
                  default=False)


def setting(config: pytest.Config, name: str, env: str | None = None) -> str | None:
    """A setting by precedence: the flag `--checker-NAME`, the environment variable `env`,
    the ini value `checker_NAME`; None when none is given."""
    flag = config.getoption(f"--checker-{name.replace('_', '-')}")
    ini = str(config.getini(f"checker_{name}") or "").strip()
    return flag or (os.environ.get(env) if env else None) or ini or None


def pytest_configure(config: pytest.Config) -> None:
    """Register the opt-out marker; under pytest-xdist with `checker_xdist_shared_server`,
    the controller shares one server."""
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput") \
            and config.getoption("numprocesses", None) \
            and config.getini("checker_xdist_shared_server"):
        config.pluginmanager.register(SharedServer(config), "checker-shared-server")
    config.addinivalue_line(
        "markers", f"{NO_AUDIT}: do not audit this test's database afterwards (for tests "
                   "that corrupt it on purpose)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a passing test body, audit its database; fail the test with the findings."""
    outcome = yield
    url = _audited_url(item)
    if url is not None:
        from checker.audit import run_audit

        result = run_audit(url, options=_audit_options(item.config))
        if not result.ok:
            pytest.fail(f"the consistency audit of this test's database failed (mark the test "
                        f"@pytest.mark.{NO_AUDIT} if it corrupts data on purpose):\n"
                        f"{result.summary()}", pytrace=False)
    return outcome


def _audited_url(item: pytest.Item) -> URL | None:
    if item.config.getoption("--checker-no-audit") or not item.config.getini("checker_audit") \
            or item.get_closest_marker(NO_AUDIT) or not project_schema(item.config).is_taskhub:
        return None
    url = getattr(item, "funcargs", {}).get("db_url")
    if url is None:
        return None
    from sqlalchemy import URL

    return url if isinstance(url, URL) else None


def _audit_options(config: pytest.Config) -> AuditOptions:
    from checker.audit import Argon2Minimum, AuditOptions
    from taskhub.settings import TEST_ARGON2

    spec = setting(config, "min_argon2", MIN_ARGON2_ENV)
    minimum = Argon2Minimum.parse(spec) if spec else Argon2Minimum.of(TEST_ARGON2)
    return AuditOptions(min_argon2=minimum)


SHARED_URL, SHARED_PROVIDER, SHARED_TEMPLATE = ("checker_url", "checker_provider",
                                                 "checker_template")


class SharedServer:
    """Under pytest-xdist, the controller's: one server and one migrated template for every
    worker of the session (each test still gets its own clone), handed to each worker
    through `workerinput`, removed when the session ends. Workers start nothing."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.stack = ExitStack()
        self.shared: dict[str, str] | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Start the server and migrate the template at the first worker; tell each worker."""
        if self.shared is None:
            self.shared = self._start()
        node.workerinput.update(self.shared)

    def _start(self) -> dict[str, str]:
        from checker.janitor import DatabaseJanitor

        try:
            server = self.stack.enter_context(provider_for(self.config))
            janitor = DatabaseJanitor(server.url)
            self.stack.callback(janitor.close)
            janitor.sweep_stale()
        except CheckerError as exc:
            self.stack.close()
            pytest.exit(f"checker: no PostgreSQL for the tests: {exc}", returncode=3)
        try:
            template = build_template(self.config, janitor, server.provider)
        except CheckerError as exc:
            self.stack.close()
            pytest.exit(f"checker: the template database could not be made: {exc}",
                        returncode=3)
        self.stack.callback(janitor.drop, template)
        return {SHARED_URL: server.url.render_as_string(hide_password=False),
                SHARED_PROVIDER: server.provider, SHARED_TEMPLATE: template}

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Drop the template, stop the server."""
        self.stack.close()


def _server_settings(config: pytest.Config) -> tuple[str | None, str | None]:
    """(kind, dsn) for `select_provider`: flags, then CHECKER_DB / CHECKER_DSN, then the ini.
    An explicit DSN with no kind means that server, as on the command line."""
    kind, dsn = setting(config, "db", "CHECKER_DB"), setting(config, "dsn", "CHECKER_DSN")
    if config.getoption("--checker-dsn") and not config.getoption("--checker-db"):
        kind = None
    return kind, dsn


def provider_for(config: pytest.Config) -> Provider:
    """A provider as the session's settings ask for one (not started)."""
    from checker.provision import select_provider

    return select_provider(*_server_settings(config),
                           extensions=project_schema(config).extensions)


_SCHEMA = pytest.StashKey["ProjectSchema"]()


def project_schema(config: pytest.Config) -> ProjectSchema:
    """The schema the test databases get, from the settings (read once per session)."""
    if _SCHEMA not in config.stash:
        from checker.project_schema import ProjectSchema

        # A path on the command line is the caller's (its directory); in the ini, the ini's.
        flag = config.getoption("--checker-alembic-ini")
        base = config.invocation_params.dir if flag else \
            config.inipath.parent if config.inipath else config.rootpath
        config.stash[_SCHEMA] = ProjectSchema.of(
            setting(config, "alembic_ini"), list(config.getini("checker_alembic_env")),
            list(config.getini("checker_extensions")), base)
    return config.stash[_SCHEMA]


def build_template(config: pytest.Config, janitor: DatabaseJanitor, provider: str) -> str:
    """A new database brought to the project's schema: its extensions, then
    `pytest_checker_prepare_template`, then its migrations. Dropped again if any fails."""
    url = janitor.create(janitor.new_name("template"))
    assert url.database is not None
    try:
        schema = project_schema(config)
        schema.create_extensions(url, provider)
        config.hook.pytest_checker_prepare_template(config=config, url=url)
        schema.migrate(url, provider)
    except BaseException:
        janitor.drop(url.database)
        raise
    return url.database


def _shared(config: pytest.Config) -> dict[str, str] | None:
    """What the controller shared with this xdist worker (None: not a worker, or nothing)."""
    given = getattr(config, "workerinput", None)
    return given if isinstance(given, dict) and SHARED_URL in given else None


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """The session's PostgreSQL server, stopped and removed at the end of the session (under
    pytest-xdist: the controller's, shared by every worker)."""
    from sqlalchemy import make_url

    from checker.provision import Server

    if (shared := _shared(request.config)) is not None:
        yield Server(url=make_url(shared[SHARED_URL]), provider=shared[SHARED_PROVIDER])
        return
    try:
        with provider_for(request.config) as server:
            yield server
    except CheckerError as exc:
        pytest.exit(f"checker: no PostgreSQL for the tests: {exc}", returncode=3)


@pytest.fixture(scope="session")
def pg_janitor(pg_server: Server) -> Iterator[DatabaseJanitor]:
    """Creates and drops the session's databases; sweeps what dead runs left behind."""
    from checker.janitor import DatabaseJanitor

    janitor = DatabaseJanitor(pg_server.url)
    janitor.sweep_stale()
    yield janitor
    janitor.close()


@pytest.fixture(scope="session")
def pg_template(request: pytest.FixtureRequest, pg_server: Server,
                pg_janitor: DatabaseJanitor) -> Iterator[str]:
    """A database migrated to head once per session (`build_template`); every test
    database is a clone of it (under pytest-xdist: the controller's, shared by every
    worker)."""
    if (shared := _shared(request.config)) is not None:
        yield shared[SHARED_TEMPLATE]
        return
    template = build_template(request.config, pg_janitor, pg_server.provider)
    try:
        yield template
    finally:
        pg_janitor.drop(template)


@pytest.fixture
def db_url(pg_janitor: DatabaseJanitor, pg_template: str) -> Iterator[URL]:
    """A fresh migrated database for this test alone (a template clone: ~10 ms)."""
    with pg_janitor.ephemeral(template=pg_template) as url:
        yield url


@pytest.fixture
def db_engine(db_url: URL) -> Iterator[Engine]:
    """A SQLAlchemy engine (psycopg 3) on this test's database."""
    from taskhub.db import make_engine

    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_access(pg_janitor: DatabaseJanitor, db_url: URL) -> RuntimeAccess:
    """The runtime login roles (URLs with their passwords) and tenant key of this test's
    database; dropped with it."""
    assert db_url.database is not None
    return pg_janitor.runtime_access(db_url.database)


@pytest.fixture
def db(db_access: RuntimeAccess) -> Iterator[Database]:
    """What the services take: a pool per runtime role (never the owner), and the key."""
    database = db_access.connect()
    yield database
    database.dispose()
