"""The isolation anomaly matrix: every anomaly script at every level, observed on a real server.

`observe(conninfo)` plays each script of `anomalies.ANOMALIES` at read committed, repeatable read
and serializable and classifies what happened; `render_markdown` and `to_json` present it next to
PostgreSQL's documented behaviour. `generate` provisions a server (as `--db`/`--dsn` say) and
runs the matrix in a throwaway database; `write_report` writes `isolation-matrix.md` and
`isolation-matrix.json`. The command is `checker isolation-matrix`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.errors import UsageError
from checker.isolation import operations
from checker.isolation.anomalies import ANOMALIES, Anomaly
from checker.isolation.lab import Lab, Level, Trace
from checker.isolation.outcome import Cell, classify
from checker.janitor import DatabaseJanitor
from checker.provision import select_provider
from taskhub.db import libpq_url

LEVELS: tuple[Level, ...] = tuple(Level)
REPORT_NAME = "isolation-matrix"


@dataclass(frozen=True)
class Observation:
    """One anomaly at one level: the cell seen, the cell documented, and the run itself."""

    anomaly: Anomaly
    level: Level
    cell: Cell
    trace: Trace

    @property
    def documented(self) -> Cell:
        """What PostgreSQL documents for this cell."""
        return self.anomaly.documented[self.level]

    @property
    def matches(self) -> bool:
        """Whether the observation is the documented behaviour."""
        return self.cell == self.documented


@dataclass(frozen=True)
class Matrix:
    """Every observation, in the order of `ANOMALIES` then `LEVELS`."""

    server_version: str
    observations: tuple[Observation, ...]

    def cell(self, key: str, level: Level) -> Cell:
        """The observed cell for anomaly `key` at `level`."""
        return self._find(key, level).cell

    def mismatches(self) -> list[Observation]:
        """Observations that differ from the documented behaviour."""
        return [o for o in self.observations if not o.matches]

    def _find(self, key: str, level: Level) -> Observation:
        for obs in self.observations:
            if obs.anomaly.key == key and obs.level == level:
                return obs
        raise KeyError((key, level))


def observe(conninfo: str, anomalies: Sequence[Anomaly] = ANOMALIES,
            levels: Sequence[Level] = LEVELS) -> Matrix:
    """Play every anomaly at every level on the database at `conninfo` (libpq URL)."""
    observations = []
    with Lab(conninfo) as lab:
        version = lab.server_version
        for anomaly in anomalies:
            for level in levels:
                trace = lab.run(anomaly.steps, level)
                cell = classify(trace, anomaly.occurred(trace))
                observations.append(Observation(anomaly, level, cell, trace))
    return Matrix(version, tuple(observations))


def render_markdown(matrix: Matrix) -> str:
    """A Markdown table: one row per anomaly, one column per level, mismatches flagged."""
    levels = sorted({o.level for o in matrix.observations}, key=LEVELS.index)
    lines = [f"# Isolation anomalies on PostgreSQL {matrix.server_version}", "",
             "| anomaly | " + " | ".join(level.value for level in levels) + " |",
             "|---|" + "---|" * len(levels)]
    keys = list(dict.fromkeys(o.anomaly.key for o in matrix.observations))
    for key in keys:
        row = [o for o in matrix.observations if o.anomaly.key == key]
        cells = []
        for obs in sorted(row, key=lambda o: LEVELS.index(o.level)):
            text = obs.cell.label()
            cells.append(text if obs.matches else f"**{text}** (documented: "
                                                  f"{obs.documented.label()})")
        lines.append(f"| {key}: {row[0].anomaly.name} | " + " | ".join(cells) + " |")
    mismatches = matrix.mismatches()
    lines += ["", "Every cell matches PostgreSQL's documented behaviour." if not mismatches else
              f"{len(mismatches)} cell(s) differ from PostgreSQL's documented behaviour (bold).",
              "", "Scripts: Hermitage (github.com/ept/hermitage, postgres.md); `after blocking`: a "
              "statement first waited for another transaction's row lock."]
    return "\n".join(lines) + "\n"


def to_json(matrix: Matrix) -> dict[str, Any]:
    """The matrix with every step each run played, for tools and for debugging a cell."""
    return {
        "server_version": matrix.server_version,
        "matches_documented": not matrix.mismatches(),
        "cells": [{
            "anomaly": o.anomaly.key, "name": o.anomaly.name, "level": o.level.value,
            "outcome": o.cell.outcome.value, "blocked": o.cell.blocked,
            "documented": {"outcome": o.documented.outcome.value,
                           "blocked": o.documented.blocked},
            "matches": o.matches, "committed": sorted(o.trace.committed),
            "steps": [{"session": r.step.session, "sql": r.step.sql, "blocked": r.blocked,
                       "skipped": r.skipped, "rows": [list(row) for row in r.rows],
                       "sqlstate": r.sqlstate, "error": r.error}
                      for r in o.trace.results],
        } for o in matrix.observations],
    }


def write_report(matrix: Matrix, out: Path) -> tuple[Path, Path]:
    """Write `isolation-matrix.md` (the matrix, then how each taskhub operation stays safe)
    and `isolation-matrix.json` into directory `out`; return both paths."""
    markdown, data = out / f"{REPORT_NAME}.md", out / f"{REPORT_NAME}.json"
    try:
        out.mkdir(parents=True, exist_ok=True)
        markdown.write_text(render_markdown(matrix) + "\n## taskhub operations at read "
                            "committed\n\n" + operations.render_markdown())
        data.write_text(json.dumps(to_json(matrix), indent=2, default=str) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return markdown, data


def generate(kind: str | None = None, dsn: str | None = None) -> Matrix:
    """Provision a server as `--db`/`--dsn` say, observe the matrix in a throwaway database."""
    with select_provider(kind, dsn) as server:
        janitor = DatabaseJanitor(server.url)
        try:
            with janitor.ephemeral() as url:
                return observe(libpq_url(url))
        finally:
            janitor.close()
