"""The run's report.html and `checker explore`'s web UI, as people see them: rendered by
headless Chromium at a wide and a narrow window, inspected in the page itself (the verdict,
every chart with every operation, nothing cut off or sticking out)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from checker.provision import Server
from checker.report.html import family
from taskhub.db import libpq_url
from tests.browser import OVERFLOW, browser
from tests.checker.run_support import CHECKER, exploring

REPORT = """(() => {
    const charts = [...document.querySelectorAll('svg.chart')].map(svg => {
        const box = svg.getBoundingClientRect(), view = svg.viewBox.baseVal;
        const cut = [...svg.querySelectorAll('text')].filter(t => {
            const b = t.getBBox();
            return b.x < -0.5 || b.y < -0.5 || b.x + b.width > view.width + 0.5
                || b.y + b.height > view.height + 0.5;
        }).map(t => t.textContent);
        return {label: svg.getAttribute('aria-label'), width: box.width, right: box.right,
                lines: [...svg.querySelectorAll('polyline > title')].map(t => t.textContent),
                bars: svg.querySelectorAll('rect > title').length, cut};
    });
    return {verdict: document.querySelector('p.verdict').textContent.trim(),
            title: document.title, charts,
            client_width: document.documentElement.clientWidth,
            sections: [...document.querySelectorAll('h2')].map(h => h.id)};
})()"""


def test_the_report_reads_at_a_glance_in_a_browser(pg_server: Server, tmp_path: Path) -> None:
    done = subprocess.run(
        [*CHECKER, "run", "concurrency", "--dsn", libpq_url(pg_server.url), "--duration",
         "5s", "--argon2", "test", "--seed", "5", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [folder] = tmp_path.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    ops = [o["name"] for o in summary["operations"]]
    families = {family(op) for op in ops}
    with browser() as chromium:
        for width in (1280, 760):
            with chromium.page((folder / "report.html").as_uri(), width=width) as page:
                seen: dict[str, Any] = page.evaluate(REPORT)
                assert seen["verdict"] == "PASS" and seen["title"].endswith(": PASS")
                assert seen["sections"][:4] == ["throughput", "latency", "operations",
                                                "audit"]
                throughput, latency = seen["charts"]
                assert throughput["label"] == "operations per second over time"
                assert set(throughput["lines"]) == {"total", *families}  # each in the legend
                assert latency["label"] == "latency percentiles per operation"
                assert latency["bars"] == 3 * len(ops)  # p50, p95, p99 of every operation
                for chart in seen["charts"]:
                    assert chart["cut"] == [], (width, chart["label"])
                    assert chart["width"] > 0 and chart["right"] <= seen["client_width"] + 1
                assert page.evaluate(OVERFLOW) == {"page_scrolls": False, "wide": []}, width


def test_the_explore_form_offers_the_sessions_settings_and_starts_it(pg_server: Server,
                                                                     tmp_path: Path) -> None:
    with exploring(pg_server, tmp_path, "--duration", "6s", "-u", "7", "-r", "3") as session:
        with browser() as chromium, chromium.page(session.base, width=1280) as page:
            form = page.wait_for("""(() => {
                const field = name => document.querySelector(`input[name="${name}"]`);
                return field('userCount') && {users: field('userCount').value,
                                              rate: field('spawnRate').value};
            })()""")
            assert form == {"users": "7", "rate": "3"}
            assert page.evaluate(OVERFLOW)["page_scrolls"] is False
            page.evaluate("document.querySelector('form button[type=submit]').click()")
            page.wait_for("document.body.innerText.includes('RUNNING')")
        out, err = session.finish()
    assert session.proc.returncode == 0, out[-3000:] + err[-3000:]
    [folder] = tmp_path.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["parameters"]["users"], summary["parameters"]["spawn_rate"]) == (7, 3.0)
    assert summary["ok"] and summary["totals"]["requests"] > 0
