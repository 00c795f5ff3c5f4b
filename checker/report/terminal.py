"""The terminal summary of a run: operations, the audit's verdict per check, the report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from checker.report.summary import RunSummary

_STYLE = {"pass": "green", "fail": "bold red", "error": "bold yellow"}


def print_summary(summary: RunSummary, folder: Path, console: Console | None = None) -> None:
    """Operations table, audit table, problems and where the report is."""
    console = console or Console()
    totals = summary.totals
    ops = Table("operation", "requests", "failures", "ops/s", "p50 ms", "p95 ms", "p99 ms",
                title=f"{summary.scenario}: {totals['requests']:,} ops in "
                      f"{summary.duration_s:.1f} s ({totals['ops_per_s']:,.0f} ops/s)")
    for op in summary.operations:
        ops.add_row(op["name"], f"{op['requests']:,}", str(op["failures"]),
                    f"{op['ops_per_s']:,.1f}", f"{op['p50_ms']:.1f}", f"{op['p95_ms']:.1f}",
                    f"{op['p99_ms']:.1f}")
    console.print(ops)
    audit = Table("check", "status", "violations", "first sample",
                  title=f"audit: {len(summary.audit['checks'])} checks")
    for check in summary.audit["checks"]:
        sample = check.get("error") or (str(check["samples"][0]) if check["samples"] else "")
        audit.add_row(check["name"], Text(check["status"], style=_STYLE[check["status"]]),
                      str(check["violations"]), sample[:120])
    console.print(audit if not summary.audit.get("skipped") else "audit: skipped")
    if summary.faults is not None:
        faults = summary.faults
        kinds = ", ".join(f"{n} {k}" for k, n in faults["by_kind"].items()) or "none"
        errors = ", ".join(f"{n} {k}" for k, n in list(faults["client_errors"].items())[:6])
        console.print(f"faults ({faults['spec']}): {faults['injected']} injected ({kinds}); "
                      f"recovery max {faults['recovery_s']['max']} s, mean "
                      f"{faults['recovery_s']['mean']} s; client errors: {errors or 'none'}")
    for problem in summary.problems:
        console.print(f"[bold red]problem[/]: {problem}")
    verdict = "[green]PASS[/]" if summary.ok else "[bold red]FAIL[/]"
    seed = summary.parameters["seed"]
    console.print(f"{verdict}: report in {folder}/report.html (seed {seed})")
