"""`report.html`: one self-contained page (inline CSS and SVG, no script, no CDN)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from checker.report.charts import latency_chart, throughput_chart
from checker.report.figures import Figures
from checker.report.summary import RunSummary

_CSS = """
body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}
h1{margin-bottom:.2em} .verdict{font-size:1.3em;font-weight:bold;padding:.4em .8em;
display:inline-block;border-radius:4px} .pass{background:#dfd;color:#060}
.fail{background:#fdd;color:#900} .error{background:#ffd;color:#960}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{background:#f4f4f4}
pre{margin:0;white-space:pre-wrap;font-size:11px;max-width:520px}
.note{font-size:12px;color:#555;max-width:880px} svg.chart{max-width:100%;height:auto}
.scroll{overflow-x:auto;max-width:100%} td{overflow-wrap:anywhere}
"""


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
        for i, cell in enumerate(row)) + "</tr>" for row in rows)
    # In a box of its own that scrolls sideways on a narrow window, not the whole page.
    return (f'<div class="scroll" data-scrolls><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


SECONDS = frozenset({"duration", "stop_timeout", "duration_s"})
"""Settings given in seconds: shown with their unit."""


def _kv(data: dict[str, Any]) -> str:
    return _table(["parameter", "value"],
                  [[escape(str(k).replace("_", " ")),
                    escape(human(v) + (" s" if k in SECONDS and v is not None else ""))]
                   for k, v in data.items()])


def human(value: Any) -> str:
    """A setting or figure as people read it: no Python reprs (`None`, `[]`, `{...}`)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return str(value)  # a seed or a port is copied, not read as an amount
    if isinstance(value, list | tuple):
        return ", ".join(human(item) for item in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{str(k).replace('_', ' ')} {human(v)}" for k, v in value.items()) \
            if value else "none"
    return str(value) if str(value) else "—"


def family(op: str) -> str:
    """The group an operation is charted in: its name before the first dot (`task`,
    `probe`, `login`, ...)."""
    return op.partition(".")[0]


def render(summary: RunSummary, figures: Figures) -> str:
    """The page for a summary (see `checker.report.summary.build`) and its figures."""
    ok = summary.ok
    verdict = "PASS" if ok else "FAIL"
    problems = "".join(f"<li>{escape(p)}</li>" for p in summary.problems)
    totals = summary.totals
    ops = _table(
        ["operation", "requests", "failures", "expected refusals", "unknown", "ops/s",
         "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [[escape(o["name"]), f"{o['requests']:,}", _failures(o["failures"]),
          f"{o.get('expected_refusals', 0):,}", f"{o['outcomes'].get('unknown', 0):,}",
          f"{o['ops_per_s']:.1f}", f"{o['p50_ms']:.2f}", f"{o['p95_ms']:.2f}",
          f"{o['p99_ms']:.2f}", f"{o['max_ms']:.2f}"]
         for o in summary.operations], numeric=set(range(1, 10)))
    audit = summary.audit
    checks = _table(
        ["check", "status", "violations", "what it proves", "samples / details"],
        [[escape(c["name"]), f'<span class="{c["status"]}">{c["status"]}</span>',
          str(c["violations"]), escape(c["statement"]),
          "<pre>" + escape(_samples(c)) + "</pre>"] for c in audit["checks"]],
        numeric={2})
    lat_rows = [(o.op, o.p50_ms, o.p95_ms, o.p99_ms) for o in figures.ops]
    files = summary.files
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>checker run {escape(summary.scenario)}: {verdict}</title><style>{_CSS}</style></head>
<body>
<h1>checker run {escape(summary.scenario)}</h1>
<p class="verdict {'pass' if ok else 'fail'}">{verdict}</p>
{f'<ul>{problems}</ul>' if problems else ''}
<p>{escape(summary.started_at)} to {escape(summary.ended_at)}
({summary.duration_s:.1f} s); server: {escape(summary.server_version)}.<br>
{totals['requests']:,} operations, {totals['failures']:,} failures,
{totals['ops_per_s']:,.1f} ops/s, p95 {totals['p95_ms']:.0f} ms, peak {totals['peak_users']}
users. Locust's own report: <a href="{files['locust_report']}">{files['locust_report']}</a>;
history: <a href="{files['history']}">{files['history']}</a>.</p>
<h2 id="throughput">Throughput over time</h2>
{throughput_chart(figures.rates(family), figures.counts(family))}
<p class="note">Operations grouped by the name before the first dot; each one's own figures
are in the table below. The last second is scaled to the part of it the run lasted.</p>
<h2 id="latency">Latency percentiles per operation</h2>
{latency_chart(lat_rows)}
<h2 id="operations">Operations</h2>
{ops}
<p class="note"><b>Failures</b> are what Locust counted as failed: an unexpected error, an
outcome the client cannot know (<b>unknown</b>: the write may have landed), a probe that saw
another tenant's data. <b>Expected refusals</b> are refusals the scenario provokes on purpose
and the system must give: a cross-tenant probe denied, a transition race lost, a task deleted
meanwhile, a stale password. They are not failures.</p>
{_faults(summary.faults)}
<h2 id="audit">Audit: {_verdict(audit)}
({len(audit['checks'])} checks, {audit['duration_s']:.2f} s)</h2>
{checks}
<h2 id="consistency">History against Locust</h2>
{_kv(summary.consistency)}
<h2 id="thresholds">Thresholds</h2>
{_kv(summary.thresholds)}
<h2 id="parameters">Run parameters</h2>
{_kv(summary.parameters)}
</body></html>
"""


def _failures(count: int) -> str:
    return f'<span class="fail">{count:,}</span>' if count else "0"


def _samples(check: dict[str, Any]) -> str:
    if check.get("error"):
        return str(check["error"])
    parts = [json.dumps(s, default=str) for s in check.get("samples", [])[:5]]
    if check.get("details"):
        parts.append("details: " + json.dumps(check["details"], default=str))
    return "\n".join(parts)


def _faults(faults: dict[str, Any] | None) -> str:
    """The faults injected (`checker run --faults`), each with its recovery time."""
    if not faults:
        return ""
    events = _table(
        ["at s", "fault", "lasted s", "recovery s", "detail", "error"],
        [[f"{e['at_s']:.1f}", escape(e["kind"]), f"{e['end'] - e['start']:.2f}",
          "" if e["recovery_s"] is None else f"{e['recovery_s']:.3f}", escape(e["detail"]),
          escape(e["error"] or "")] for e in faults["events"]], numeric={0, 2, 3})
    errors = _table(["client outcome and error class", "records"],
                    [[escape(k), str(n)] for k, n in faults["client_errors"].items()],
                    numeric={1})
    return (f'<h2 id="faults">Faults: {faults["injected"]} injected '
            f'({escape(faults["spec"])})</h2>\n{events}\n{errors}')


def _verdict(audit: dict[str, Any]) -> str:
    if audit.get("skipped"):
        return "skipped (a second interrupt)"
    return "clean" if audit["ok"] else "violations found"
