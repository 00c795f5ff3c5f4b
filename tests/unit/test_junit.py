"""The JUnit XML verdict: counts CI systems read, a case per condition and check, failures
and errors with what broke, unset thresholds skipped."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from checker.errors import UsageError
from checker.report import junit
from checker.report.summary import RunSummary

CHECKS = [
    {"name": "schema.row_level_security", "status": "pass", "violations": 0, "samples": [],
     "statement": "RLS on", "duration_ms": 2.0},
    {"name": "ledger.single_winner", "status": "fail", "violations": 2,
     "samples": [{"task_id": "t-1"}, {"task_id": "t-2"}], "statement": "one winner",
     "duration_ms": 5.0},
    {"name": "isolation.rls_denies", "status": "error", "violations": 0, "samples": [],
     "statement": "denied", "duration_ms": 1.0, "error": "statement timeout"},
]


def summary(**changes: object) -> RunSummary:
    values: dict[str, object] = dict(
        scenario="concurrency", problems=["p95 900 ms above --p95-ms 500"], parameters={},
        server_version="PostgreSQL 18", started_at="2026-12-05T00:00:00+00:00",
        ended_at="2026-12-05T00:00:10+00:00", duration_s=10.0, totals={}, operations=[],
        thresholds={"max_fail_ratio": None, "p95_ms": 500.0}, consistency={},
        audit={"ok": False, "skipped": False, "duration_s": 0.008, "checks": CHECKS},
        conditions={"workers_stayed": [], "load_ran": [],
                    "p95_ms": ["p95 900 ms above --p95-ms 500"],
                    "history_matches_locust": [], "audit_ran": [],
                    "audit_clean": ["audit: ledger.single_winner, isolation.rls_denies"]})
    values.update(changes)
    return RunSummary(**values)  # type: ignore[arg-type]


def parse(tree: ElementTree.ElementTree, tmp_path: Path) -> ElementTree.Element:
    junit.write(tmp_path / "out" / "junit.xml", tree)
    return ElementTree.parse(tmp_path / "out" / "junit.xml").getroot()  # noqa: S314 - ours


def test_each_condition_threshold_and_check_is_a_case(tmp_path: Path) -> None:
    root = parse(junit.run_junit(summary()), tmp_path)
    assert [s.get("name") for s in root] == ["checker.concurrency.run",
                                            "checker.concurrency.audit"]
    run, audit = root
    names = [case.get("name") for case in run]
    assert names == ["workers_stayed", "load_ran", "threshold p95_ms", "history_matches_locust",
                     "audit_ran", "threshold max_fail_ratio"]
    p95 = run.find("testcase[@name='threshold p95_ms']/failure")
    assert p95 is not None and p95.get("message") == "p95 900 ms above --p95-ms 500"
    unset = run.find("testcase[@name='threshold max_fail_ratio']/skipped")
    assert unset is not None
    failed = audit.find("testcase[@name='ledger.single_winner']/failure")
    assert failed is not None and failed.get("message") == "2 violation(s): one winner"
    assert failed.text is not None and '"t-2"' in failed.text
    error = audit.find("testcase[@name='isolation.rls_denies']/error")
    assert error is not None and error.get("message") == "statement timeout"
    assert (root.get("tests"), root.get("failures"), root.get("errors"),
            root.get("skipped")) == ("9", "2", "1", "1")
    assert (audit.get("tests"), audit.get("failures"), audit.get("errors")) == ("3", "1", "1")


def test_a_skipped_audit_is_not_a_pass(tmp_path: Path) -> None:
    skipped = summary(audit={"ok": False, "skipped": True, "duration_s": 0.0, "checks": []},
                      conditions={"audit_ran": ["the audit was skipped"]})
    root = parse(junit.run_junit(skipped), tmp_path)
    assert root.find(".//testcase[@name='audit_ran']/failure") is not None
    assert root.find(".//testcase[@name='audit']/skipped") is not None


def test_the_audit_command_gets_its_checks_alone(tmp_path: Path) -> None:
    root = parse(junit.audit_junit(CHECKS, 0.008), tmp_path)
    assert [case.get("name") for case in root.iter("testcase")] == [c["name"] for c in CHECKS]
    assert root.get("failures") == "1" and root.get("errors") == "1"


def test_an_unwritable_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot write --junit-xml"):
        junit.write(tmp_path / "file" / "junit.xml", junit.audit_junit(CHECKS, 0.0))
