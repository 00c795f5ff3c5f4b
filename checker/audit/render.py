"""How an `AuditResult` looks to people (a rich table) and to scripts (JSON)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from checker.audit.result import AuditResult, CheckResult

_STYLE = {"pass": "green", "fail": "bold red", "error": "bold yellow"}


def to_json(result: AuditResult) -> str:
    """`{"ok": bool, "checks": [{"name", "status", "violations", "samples", ...}]}`."""
    return json.dumps(result.to_dict(), indent=2, default=str)


def table(result: AuditResult, *, samples: int = 2) -> Table:
    """One row per check: status, violations, what it proves, and its first samples."""
    view = Table("check", "status", "violations", "statement", "first samples",
                 title=f"audit: {len(result.checks)} checks in {result.duration * 1000:.0f} ms",
                 show_lines=False, expand=True)
    for check in result.checks:
        view.add_row(check.name, Text(check.status, style=_STYLE[check.status]),
                     str(check.violations), check.statement, _samples(check, samples))
    return view


def print_result(result: AuditResult, console: Console | None = None) -> None:
    """The table and a one-line verdict."""
    console = console or Console()
    console.print(table(result))
    counts = {status: sum(1 for c in result.checks if c.status == status)
              for status in ("pass", "fail", "error")}
    verdict = "[green]clean[/]" if result.ok else "[bold red]violations found[/]"
    console.print(f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, "
                  f"{counts['error']} errored")


def _samples(check: CheckResult, limit: int) -> str:
    if check.status == "error":
        return check.error or ""
    return "\n".join(_compact(row) for row in check.samples[:limit])


def _compact(row: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in row.items())
