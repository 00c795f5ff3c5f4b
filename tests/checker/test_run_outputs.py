"""The files CI and Locust users expect from a run, beside the report folder: Locust's CSV
statistics (`--csv`), Locust's HTML report (`--html`) and the verdict as JUnit XML
(`--junit-xml`), from a run given Locust's short options."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from xml.etree import ElementTree

from checker.provision import Server
from taskhub.db import libpq_url
from tests.checker.run_support import checker

LOCUST_STATS_HEADER = ["Type", "Name", "Request Count", "Failure Count"]


def test_a_run_writes_locusts_csv_and_html_and_a_junit_verdict(pg_server: Server,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "ci"
    done = checker("run", "concurrency", "--dsn", libpq_url(pg_server.url), "--report-dir",
                   str(tmp_path / "reports"), "-u", "4", "-r", "50", "-t", "3s", "--argon2",
                   "test", "--seed", "3", "--csv", str(out / "run"), "--csv-full-history",
                   "--html", str(out / "locust.html"), "--junit-xml", str(out / "junit.xml"))
    assert done.returncode == 0, done.stderr[-3000:]
    [folder] = (tmp_path / "reports").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["parameters"]["users"] == 4 and summary["parameters"]["duration"] == 3.0

    # Locust's four CSV files, in Locust's format, with the run's final counts.
    assert {p.name for p in out.glob("run_*.csv")} == {
        "run_stats.csv", "run_stats_history.csv", "run_failures.csv", "run_exceptions.csv"}
    with open(out / "run_stats.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == LOCUST_STATS_HEADER
    counts = {row[1]: int(row[2]) for row in rows[1:]}
    assert counts.pop("Aggregated") == summary["totals"]["requests"]
    assert counts == {op["name"]: op["requests"] for op in summary["operations"]}
    with open(out / "run_stats_history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    assert history and {row["Name"] for row in history} > {"Aggregated"}  # full history

    assert (out / "locust.html").read_bytes() == (folder / "locust.html").read_bytes()

    # The verdict for CI: every audit check and every condition of the run is a test case.
    suites = ElementTree.parse(out / "junit.xml").getroot()  # noqa: S314 - ours
    assert suites.tag == "testsuites" and suites.get("failures") == "0"
    cases = suites.findall(".//testcase")
    names = {case.get("name") for case in cases}
    assert {check["name"] for check in summary["audit"]["checks"]} <= names
    assert {"load_ran", "history_matches_locust", "threshold max_fail_ratio",
            "threshold p95_ms"} <= names
    assert int(suites.get("tests", "0")) == len(cases)
    skipped = suites.find(".//testcase[@name='threshold p95_ms']/skipped")
    assert skipped is not None and "no --p95-ms limit set" in skipped.get("message", "")


def test_an_unwritable_output_is_refused_before_the_run(pg_server: Server,
                                                        tmp_path: Path) -> None:
    """One line, exit 2, and nothing started: no report folder."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for flag in ("--junit-xml", "--html", "--csv"):
        done = checker("run", "concurrency", "--dsn", libpq_url(pg_server.url),
                       "--report-dir", str(tmp_path / "reports"), flag,
                       str(blocker / "out.xml"))
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and flag in done.stderr
    assert not (tmp_path / "reports").exists()
