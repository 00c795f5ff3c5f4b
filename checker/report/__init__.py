"""A run's report folder: `reports/<UTC-timestamp>-<scenario>/` with `summary.json`,
`report.html` (charts, operations, the audit), Locust's own `locust.html` and `history.jsonl`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

from checker.report import html
from checker.report.figures import Figures
from checker.report.summary import FILES, RunSummary


def new_folder(root: Path, scenario: str) -> Path:
    """A fresh `<root>/<UTC-timestamp>-<scenario>/` (a suffix if two runs share a second)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        folder = root / (f"{stamp}-{scenario}" + (f"-{n}" if n else ""))
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"no free report folder under {root}")


def write(folder: Path, summary: RunSummary, figures: Figures, locust_html: str,
          phases: Callable[[], dict[str, float]] | None = None) -> None:
    """Write report.html, locust.html and, last, summary.json (history.jsonl is written
    live); `phases`, asked just before summary.json is written, fills `summary.phases`."""
    (folder / FILES["report"]).write_text(html.render(summary, figures), encoding="utf-8")
    (folder / FILES["locust_report"]).write_text(locust_html, encoding="utf-8")
    if phases is not None:
        summary.phases = phases()
    (folder / FILES["summary"]).write_text(
        json.dumps(summary.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
