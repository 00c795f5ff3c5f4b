"""What a load process must share with its master: the scenario, the code, and the switches
each process reads from its own environment. A worker that differs would run another test
than the one the master reports (a broken path on one side only, another scenario file, a
different checkout) and its failures would be blamed on the system under test."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from locust.env import Environment

import checker
import scenarios
import taskhub
from checker.load.harness import unsafe_switches

CODE = tuple(Path(package.__file__).resolve().parent for package in (checker, scenarios, taskhub)
             if package.__file__)
"""The packages whose Python source makes up the code version (taskhub's holds its
migrations): found where they are imported from, a checkout or an installed wheel."""
SWITCHES = ("CHECKER_LOGINS_NO_ROTATION",)
"""Environment switches the scenarios read besides the unsafe ones."""


def scenario_name(environment: Environment) -> str:
    """The scenario this process's Locust file defines (its module's last name)."""
    module = environment.user_classes[0].__module__ if environment.user_classes else "?"
    return module.rpartition(".")[2]


@lru_cache(maxsize=1)
def code_version() -> str:
    """A digest of every Python source file of the checker, the scenarios and taskhub."""
    digest = hashlib.sha256()
    for tree in CODE:
        for path in sorted(tree.rglob("*.py")):
            name = path.relative_to(tree.parent)
            digest.update(str(name).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def process_profile(scenario: str) -> dict[str, str]:
    """This process's side of the agreement, as plain strings."""
    switches = {name: os.environ.get(name, "") for name in SWITCHES}
    return {"scenario": scenario, "code": code_version(),
            "unsafe": ",".join(unsafe_switches()) or "none",
            **{f"env {name}": value or "unset" for name, value in switches.items()}}


def differences(master: dict[str, str], worker: object) -> list[str]:
    """How a worker's profile differs from the master's (empty: they agree)."""
    if not isinstance(worker, dict):
        return ["no profile"]
    return [f"{key}: master {master[key]!r}, worker {worker.get(key, 'missing')!r}"
            for key in master if worker.get(key) != master[key]]
