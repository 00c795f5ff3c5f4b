"""The schema history: one head; stepping through it leaves the schema identical to a direct
upgrade; every revision goes down and up again to the same schema; a downgrade to base leaves
nothing of ours behind; the migrated DDL is the models' (names included) and Alembic's
autogenerate finds nothing to add."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, inspect, text

from checker import migrate
from taskhub.db import make_engine
from taskhub.models import Base

TABLES = {"users", "password_history", "auth_sessions", "tasks", "task_events"}


def _snapshot(url: URL) -> dict[str, object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            tables = sorted(set(insp.get_table_names()) - {"alembic_version"})
            policies = conn.execute(text(
                "SELECT tablename, policyname, cmd, roles::text, qual, with_check "
                "FROM pg_policies ORDER BY 1, 2")).all()
            rls = conn.execute(text(
                "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1")).all()
            return {
                "tables": tables,
                "columns": {t: [(c["name"], str(c["type"]), c["nullable"])
                                for c in insp.get_columns(t)] for t in tables},
                "fks": {t: sorted(str(fk) for fk in insp.get_foreign_keys(t)) for t in tables},
                "checks": {t: sorted(str(c) for c in insp.get_check_constraints(t))
                           for t in tables},
                "indexes": {t: sorted(str(i) for i in insp.get_indexes(t)) for t in tables},
                "policies": [tuple(p) for p in policies],
                "rls": [tuple(r) for r in rls],
            }
    finally:
        engine.dispose()


def test_stepwise_upgrade_equals_direct_and_base_is_empty(empty_db_url: URL) -> None:
    history = [revision for revision, _down, _msg in migrate.history()]
    for revision in history:
        migrate.upgrade(empty_db_url, revision)
        assert migrate.current(empty_db_url) == revision
    stepped = _snapshot(empty_db_url)
    assert set(stepped["tables"]) == TABLES  # type: ignore[arg-type]

    migrate.downgrade(empty_db_url, "base")
    assert migrate.current(empty_db_url) is None
    assert _snapshot(empty_db_url)["tables"] == []

    migrate.upgrade(empty_db_url, "head")
    assert _snapshot(empty_db_url) == stepped


def test_migrated_ddl_equals_the_models_ddl(db_url: URL, empty_db_url: URL) -> None:
    """Names included: check constraints, indexes and foreign keys exactly as the models say."""
    engine = make_engine(empty_db_url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    migrated, modelled = _snapshot(db_url), _snapshot(empty_db_url)
    for key in ("tables", "columns", "fks", "checks", "indexes"):
        assert migrated[key] == modelled[key], key


def test_rls_forced_with_policies_at_head(db_url: URL) -> None:
    snapshot = _snapshot(db_url)
    forced = {name for name, enabled, force in snapshot["rls"] if enabled and force}  # type: ignore[attr-defined]
    assert forced == TABLES
    assert {(p[0], p[1]) for p in snapshot["policies"]} >= {  # type: ignore[attr-defined]
        (table, f"{table}_{kind}") for table in TABLES for kind in ("tenant", "owner")}


def test_offline_sql_is_reviewable_without_a_server() -> None:
    sql = migrate.upgrade_sql("postgresql://nobody@127.0.0.1:1/none")
    assert "CREATE TABLE users" in sql
    assert "FORCE ROW LEVEL SECURITY" in sql
    assert "revision 0008 stopped" in sql  # the guards travel as DO blocks
    assert sql.rstrip().endswith("COMMIT;")
    assert "UPDATE alembic_version SET version_num='0008'" in sql
    assert "revision 0010 computes the skeletons" in sql  # refuses to run on existing users


def test_the_history_has_one_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert [revision for revision, _down, _msg in migrate.history()][-1] == migrate.head()


def test_each_revision_goes_down_and_up_again_to_the_same_schema(empty_db_url: URL) -> None:
    """At every revision: one step down, then up again, leaves the schema as it was (every
    downgrade undoes exactly its upgrade)."""
    for revision in [revision for revision, _down, _msg in migrate.history()]:
        migrate.upgrade(empty_db_url, revision)
        before = _snapshot(empty_db_url)
        migrate.downgrade(empty_db_url, "-1")
        migrate.upgrade(empty_db_url, revision)
        assert _snapshot(empty_db_url) == before, revision


def test_autogenerate_finds_nothing_to_add(db_url: URL) -> None:
    """Alembic's autogenerate, comparing the models with the migrated database, proposes no
    change: a model edited without its migration fails here."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "compare_server_default": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
