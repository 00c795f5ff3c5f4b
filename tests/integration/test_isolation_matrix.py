"""The isolation anomaly matrix observed on the test server equals PostgreSQL's documented
behaviour, cell by cell (Hermitage's scripts at read committed, repeatable read, serializable).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from checker.isolation import matrix as isolation_matrix
from checker.isolation.anomalies import ANOMALIES, Anomaly
from checker.isolation.lab import Lab, Level, Step
from checker.isolation.matrix import LEVELS, Matrix, observe, render_markdown, to_json
from checker.isolation.outcome import Outcome
from checker.janitor import DatabaseJanitor
from checker.provision import Server
from taskhub.db import libpq_url

CELLS = [pytest.param(anomaly, level, id=f"{anomaly.key}-{level.name}")
         for anomaly in ANOMALIES for level in LEVELS]


@pytest.fixture(scope="module")
def lab_url(pg_janitor: DatabaseJanitor) -> Iterator[str]:
    """An empty database of its own (the scripts use their own table, not taskhub's)."""
    with pg_janitor.ephemeral() as url:
        yield libpq_url(url)


@pytest.fixture(scope="module")
def observed(lab_url: str) -> Matrix:
    return observe(lab_url)


@pytest.mark.parametrize(("anomaly", "level"), CELLS)
def test_cell_is_as_documented(observed: Matrix, anomaly: Anomaly, level: Level) -> None:
    assert observed.cell(anomaly.key, level) == anomaly.documented[level]


def test_documented_matrix_is_hermitages(observed: Matrix) -> None:
    """Hermitage's summary for PostgreSQL, as prevented (True) or not, per level."""
    prevented = {
        Level.READ_COMMITTED: {"G0", "G1a", "G1b", "G1c", "OTV"},
        Level.REPEATABLE_READ: {"G0", "G1a", "G1b", "G1c", "OTV", "PMP", "PMP-write", "P4",
                                "G-single", "G-single-predicate", "G-single-write"},
        Level.SERIALIZABLE: {a.key for a in ANOMALIES},
    }
    for obs in observed.observations:
        expected = obs.anomaly.key in prevented[obs.level]
        assert (obs.cell.outcome is not Outcome.OCCURS) == expected, (obs.anomaly.key, obs.level)


def test_markdown_and_json(observed: Matrix) -> None:
    markdown = render_markdown(observed)
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert rows[0] == "| anomaly | read committed | repeatable read | serializable |"
    assert len(rows) == 1 + len(ANOMALIES)
    assert "| P4: Lost update | occurs, after blocking | prevented (serialization failure " \
           "40001), after blocking |" in markdown
    assert "Every cell matches PostgreSQL's documented behaviour." in markdown
    data = json.loads(json.dumps(to_json(observed), default=str))
    assert data["matches_documented"] is True
    assert len(data["cells"]) == len(ANOMALIES) * len(LEVELS)


def test_a_blocked_statement_is_collected_when_released(lab_url: str) -> None:
    """The lab's own mechanics: T2 waits on T1's row lock, T1's commit releases it."""
    script = (Step(1, "UPDATE test SET value = 11 WHERE id = 1"),
              Step(2, "UPDATE test SET value = value + 1 WHERE id = 1 RETURNING value", "t2"),
              Step(1, "COMMIT"), Step(2, "COMMIT"))
    with Lab(lab_url) as lab:
        trace = lab.run(script, Level.READ_COMMITTED)
    assert [r.blocked for r in trace.results] == [False, True, False, False]
    assert trace.result("t2").rows == ((12,),)
    assert trace.committed == {1, 2}
    assert trace.final == ((1, 12), (2, 20))


def test_the_generated_report_on_a_dsn_server(pg_server: Server, tmp_path: Path) -> None:
    dsn = pg_server.url.render_as_string(hide_password=False)
    matrix = isolation_matrix.generate(dsn=dsn)
    assert not matrix.mismatches()
    isolation_matrix.write_report(matrix, tmp_path)
    report = (tmp_path / "isolation-matrix.md").read_text()
    assert report.startswith("# Isolation anomalies")
    assert "| tasks.claim | two workers claim from the queue at once | P4 (double claim) |" \
        in report
    assert json.loads((tmp_path / "isolation-matrix.json").read_text())["matches_documented"]
