"""`checker explore`: Locust's web UI on 127.0.0.1 drives the scenario; when the session ends
the database is audited and reported like a run."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from checker.provision import Server
from checker.provision.base import free_port
from taskhub.db import libpq_url
from tests.checker.run_support import CHECKER, exploring


def test_explore_serves_the_web_ui_and_audits_what_it_ran(pg_server: Server,
                                                          tmp_path: Path) -> None:
    with exploring(pg_server, tmp_path, "--duration", "8s", "-u", "7", "-r", "3") as session:
        # The form offers the session's users, spawn rate and duration as its defaults.
        defaults = json.loads(re.search(r"templateArgs = (\{.*?\})\s*$", session.page,
                                        re.M)[1])
        assert (defaults["num_users"], defaults["spawn_rate"], defaults["run_time"]) == (
            7, 3.0, 8)
        form = urllib.parse.urlencode({"user_count": 4, "spawn_rate": 2,
                                       "host": "taskhub"}).encode()
        with urllib.request.urlopen(session.base + "swarm", data=form,  # noqa: S310
                                    timeout=10) as swarm:
            assert json.loads(swarm.read())["success"]
        out, err = session.finish()
        proc = session.proc
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    [folder] = tmp_path.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["ok"] and summary["parameters"]["ui"] is True
    # What the form started is what the summary records, not the defaults it offered.
    assert (summary["parameters"]["users"], summary["parameters"]["spawn_rate"]) == (4, 2.0)
    assert summary["totals"]["peak_users"] <= 4
    assert summary["totals"]["requests"] > 0 and summary["consistency"]["consistent"]


def test_a_session_in_which_nobody_pressed_start_does_not_pass(pg_server: Server,
                                                               tmp_path: Path) -> None:
    done = subprocess.run(
        [*CHECKER, "explore", "transitions", "--dsn", libpq_url(pg_server.url), "--duration",
         "2s", "--web-port", str(free_port()), "--argon2", "test", "--report-dir",
         str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    [folder] = tmp_path.iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert not summary["ok"] and summary["audit"]["ok"]
    assert summary["problems"] == ["the load ran no operation: nothing was tested"]
    assert "nothing was tested" in done.stdout
