"""The verdict as JUnit XML (`--junit-xml FILE`), the format CI systems read (Jenkins, GitLab,
GitHub's test reporters): one test case per audit check, per threshold and per condition of
the run, a failure carrying what broke and the samples that show it.

Layout: `<testsuites>` holding the suite `checker.<scenario>.run` (the run's conditions:
workers stayed, the load ran as asked, each threshold, the history matches Locust, the audit
ran, the faults were judged) and `checker.<scenario>.audit` (a case per check, class
`checker.audit.<family>`). A threshold that was not set is a skipped case, so a CI page shows
that no limit guarded it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from checker.errors import UsageError
from checker.report.summary import RunSummary

THRESHOLDS = ("max_fail_ratio", "p95_ms")
_CONDITION_NAMES = {"max_fail_ratio": "threshold max_fail_ratio",
                    "p95_ms": "threshold p95_ms"}


def run_junit(summary: RunSummary) -> ET.ElementTree:
    """A run's verdict: its conditions and its audit, as JUnit XML."""
    prefix = f"checker.{summary.scenario}"
    run = _suite(f"{prefix}.run", summary.duration_s, summary.started_at)
    for name, problems in summary.conditions.items():
        if name == "audit_clean":
            continue  # one case per check, in the audit suite
        case = _case(run, f"{prefix}.run", _CONDITION_NAMES.get(name, name), 0.0)
        if problems:
            _fail(case, problems[0], "\n".join(problems))
    for name in THRESHOLDS:
        if name not in summary.conditions:
            case = _case(run, f"{prefix}.run", _CONDITION_NAMES[name], 0.0)
            ET.SubElement(case, "skipped", message=f"no --{name.replace('_', '-')} limit set")
    audit = _suite(f"{prefix}.audit", float(summary.audit.get("duration_s", 0.0)),
                   summary.started_at)
    _checks(audit, summary.audit.get("checks", []))
    if summary.audit.get("skipped"):
        ET.SubElement(_case(audit, "checker.audit", "audit", 0.0), "skipped",
                      message="the audit was skipped (a second interrupt)")
    return _document([run, audit], name=prefix)


def audit_junit(checks: Sequence[Mapping[str, Any]], duration_s: float) -> ET.ElementTree:
    """`checker audit`'s verdict (its checks as `CheckResult.to_dict()` gives them)."""
    audit = _suite("checker.audit", duration_s, None)
    _checks(audit, checks)
    return _document([audit], name="checker.audit")


def write(path: Path, tree: ET.ElementTree) -> None:
    """Write the XML to `path` (its folder made); UsageError when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.indent(tree)
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise UsageError(f"cannot write --junit-xml {path}: {exc.strerror or exc}") from None


def _checks(suite: ET.Element, checks: Iterable[Mapping[str, Any]]) -> None:
    for check in checks:
        name = str(check["name"])
        case = _case(suite, f"checker.audit.{name.partition('.')[0]}", name,
                     float(check.get("duration_ms", 0.0)) / 1000)
        if check["status"] == "error":
            error = ET.SubElement(case, "error", message=str(check.get("error") or "error"),
                                  type="error")
            error.text = str(check.get("statement", ""))
        elif check["status"] != "pass":
            samples = "\n".join(json.dumps(sample, sort_keys=True)
                                for sample in check.get("samples", []))
            _fail(case, f"{check['violations']} violation(s): {check.get('statement', '')}",
                  samples or "(no samples)")


def _suite(name: str, seconds: float, timestamp: str | None) -> ET.Element:
    suite = ET.Element("testsuite", name=name, time=f"{seconds:.3f}")
    if timestamp:
        suite.set("timestamp", timestamp)
    return suite


def _case(suite: ET.Element, classname: str, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name,
                         time=f"{seconds:.3f}")


def _fail(case: ET.Element, message: str, body: str) -> None:
    failure = ET.SubElement(case, "failure", message=message, type="failure")
    failure.text = body


def _document(suites: list[ET.Element], *, name: str) -> ET.ElementTree:
    """The suites under `<testsuites>`, every count attribute filled in."""
    root = ET.Element("testsuites", name=name)
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites:
        counts = {"tests": len(suite.findall("testcase")),
                  "failures": len(suite.findall("testcase/failure")),
                  "errors": len(suite.findall("testcase/error")),
                  "skipped": len(suite.findall("testcase/skipped"))}
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in suites):.3f}")
    return ET.ElementTree(root)
