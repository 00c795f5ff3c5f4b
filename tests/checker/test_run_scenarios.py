"""`checker run` of every scenario for a few seconds: exit 0, a well-formed report, a history
that holds exactly the operations Locust counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.history import RUN_START
from checker.provision import Server
from tests.checker.run_support import SUMMARY_KEYS, checker, run

SCENARIOS = ("concurrency", "logins", "transitions", "isolation", "lifecycle", "churn")
VOCABULARY = {"login", "token.verify", "logout", "password.change", "password.temporary",
              "user.register", "user.delete", "task.create", "task.read", "task.update",
              "task.list", "task.delete", "task.transition", "task.claim"}


def test_checker_scenarios_lists_each_with_one_line() -> None:
    done = checker("scenarios")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(SCENARIOS)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_runs_clean_and_reports(pg_server: Server, tmp_path: Path,
                                         scenario: str) -> None:
    result = run(pg_server, scenario, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = result.folder
    assert folder is not None and folder.name.endswith(f"-{scenario}")
    assert {p.name for p in folder.iterdir()} >= {"summary.json", "report.html", "locust.html",
                                                  "history.jsonl"}
    summary = result.summary
    assert set(summary) >= SUMMARY_KEYS
    assert summary["ok"] and summary["audit"]["ok"] and not summary["problems"]
    assert summary["parameters"]["seed"] == 7 and summary["parameters"]["workers"] == 0
    # The default failure budget is none at all: every operation Locust counted succeeded.
    assert summary["thresholds"]["max_fail_ratio"] == 0 and summary["totals"]["failures"] == 0
    assert summary["totals"]["peak_users"] == 6
    assert "PostgreSQL" in summary["server_version"]
    phases = summary["phases"]  # where the run's time went, in the order of the phases
    assert list(phases) == ["provision", "migrate", "seed", "load", "stop", "audit",
                            "cleanup", "report"]
    assert all(isinstance(seconds, float) for seconds in phases.values())

    # The history holds exactly the operations Locust counted, op by op.
    counts = result.load_counts()
    assert sum(counts.values()) > 20
    locust = {op["name"]: op["requests"] for op in summary["operations"]}
    assert dict(counts) == locust
    assert summary["totals"]["requests"] == sum(counts.values())
    assert summary["consistency"]["consistent"]
    assert set(counts) - VOCABULARY <= {op for op in counts if op.startswith("probe.")}
    history = result.history
    header = [r for r in history if r.op == RUN_START]
    assert len(header) == 1 and header[0].args == {"complete": True, "scenario": scenario}
    first_load = min(i for i, r in enumerate(history) if r.process != "seed")
    assert history[first_load].op == RUN_START  # seed records, then the header, then the load

    html = (folder / "report.html").read_text()
    assert html.count("<svg") >= 2 and 'id="throughput"' in html and 'id="latency"' in html
    assert "ledger.single_winner" in html and "isolation.cross_tenant_denied" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no CDN
    assert "locust" in (folder / "locust.html").read_text().lower()


def test_isolation_probes_every_way_in_and_all_are_denied(pg_server: Server,
                                                          tmp_path: Path) -> None:
    result = run(pg_server, "isolation", tmp_path, "--duration", "4s")
    assert result.returncode == 0, result.stderr[-3000:]
    probes = [r for r in result.history if r.op.startswith("probe.")]
    assert {r.op for r in probes} >= {"probe.read", "probe.update", "probe.delete",
                                      "probe.transition", "probe.sql_select_all"}
    assert all(r.outcome == "fail" and not r.observed for r in probes)
    check = next(c for c in result.summary["audit"]["checks"]
                 if c["name"] == "isolation.cross_tenant_denied")
    assert check["status"] == "pass" and check["details"]["probes"] == len(probes)
