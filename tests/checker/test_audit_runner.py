"""run_audit as a whole: a clean busy database passes everything, one snapshot, errors stay
local to their check, selection by family or name, and the cost on tiny databases."""

from __future__ import annotations

import pytest
from sqlalchemy import URL

from checker.audit import CHECKS, FAMILIES, OWASP_MINIMUM, AuditOptions, run_audit
from checker.audit.registry import select
from checker.audit.synthetic import Population
from checker.errors import InfrastructureError, UsageError
from tests.checker.audit_support import assert_fails_only, audit, full_history, owner, seed

BUSY = Population(users=2000, tasks=20000)


def test_every_check_is_named_by_family_and_documented() -> None:
    assert list(FAMILIES) == ["schema", "orphans", "transitions", "isolation", "auth", "ledger"]
    assert len({c.name for c in CHECKS}) == len(CHECKS)
    for check in CHECKS:
        assert check.name.startswith(f"{check.family}.") and check.statement
        assert check.needs_history == (check.family == "ledger" or check.name in (
            "isolation.observed_rows_owned", "isolation.cross_tenant_denied"))


def test_a_busy_clean_database_passes_every_check(db_url: URL) -> None:
    seed(db_url, BUSY)
    with owner(db_url) as conn:
        counts = dict(conn.execute("SELECT status, count(*) FROM tasks GROUP BY status"))
    assert counts == {"pending": 2000, "processing": 4000, "completed": 10000, "failed": 4000}
    result = audit(db_url, full_history(BUSY))
    assert_fails_only(result)
    assert len(result.checks) == len(CHECKS)
    assert result.get("isolation.tenant_sees_own_rows").details["tenants_checked"] == 1000
    every_tenant = audit(db_url, only="isolation.tenant_sees_own_rows", isolation_tenants=0)
    assert every_tenant.ok
    assert every_tenant.checks[0].details["tenants_checked"] == 2000


def test_an_empty_migrated_database_passes(db_url: URL) -> None:
    assert audit(db_url).ok


def test_the_owasp_minimum_is_the_default(db_url: URL) -> None:
    seed(db_url)  # hashed with the cheap test profile
    result = run_audit(db_url)
    assert_fails_only(result, "auth.argon2id_hashes")
    assert result.get("auth.argon2id_hashes").details["minimum"] == str(OWASP_MINIMUM)


@pytest.mark.checker_no_audit
def test_a_check_that_errors_does_not_stop_the_others(db_url: URL) -> None:
    seed(db_url)
    with owner(db_url) as conn:
        conn.execute("DROP TABLE password_history")
    result = audit(db_url)
    errored = {c.name for c in result.checks if c.status == "error"}
    assert errored == {"orphans.password_history_without_user", "auth.argon2id_hashes",
                       "auth.history_without_duplicates", "isolation.tenant_sees_own_rows",
                       "isolation.no_tenant_sees_nothing"}  # (both look at every table)
    for name in errored:
        assert "password_history" in (result.get(name).error or "")
    failed = {c.name for c in result.checks if c.status == "fail"}
    assert failed == {"schema.cascade_foreign_keys", "schema.row_level_security",
                      "schema.grants_match_matrix", "schema.policies_match"}
    # (the table, its policies and its grants)
    for name in failed:
        assert "password_history" in str(result.get(name).samples), name
    assert result.get("transitions.legal_path").status == "pass"
    assert not result.ok


def test_samples_and_details_are_json_ready(db_url: URL) -> None:
    seed(db_url)
    result = audit(db_url, full_history())
    import json
    data = json.loads(json.dumps(result.to_dict()))
    assert data["ok"] is True
    assert {"name", "status", "violations", "samples", "statement", "duration_ms"} <= set(
        data["checks"][0])


def test_selection() -> None:
    assert [c.family for c in select("schema")] == ["schema"] * 8
    assert [c.name for c in select("auth.emails_unique, orphans")] == [
        "orphans.tasks_without_user", "orphans.events_without_task",
        "orphans.sessions_without_user", "orphans.password_history_without_user",
        "auth.emails_unique"]
    assert all(not c.needs_history for c in select("isolation"))
    assert any(c.needs_history for c in select("isolation", with_history=True))
    with pytest.raises(UsageError, match="unknown check family 'bogus'"):
        select("bogus")
    with pytest.raises(UsageError, match="ledger needs a history"):
        select("ledger")
    with pytest.raises(UsageError, match="needs a history"):
        select(["isolation.cross_tenant_denied"])


def test_unreachable_database() -> None:
    with pytest.raises(InfrastructureError, match="cannot connect"):
        run_audit("postgresql://nobody:x@127.0.0.1:1/none")


@pytest.mark.parametrize("skew", [float("nan"), float("inf"), -1.0])
def test_a_skew_that_is_no_number_of_seconds_is_refused(skew: float) -> None:
    """NaN orders unlike any number in SQL and in Python alike: it would decide verdicts."""
    with pytest.raises(UsageError, match="must be a finite number of seconds"):
        AuditOptions(history_skew=skew)
    with pytest.raises(UsageError, match="must be a finite number of seconds"):
        AuditOptions(clock_skew=skew)
