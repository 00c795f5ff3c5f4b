"""`Scenario`: what one module of `scenarios/` exports as `SCENARIO`, and `load` to get it.

A scenario names itself (its module), says what it is (its docstring's first line), what the
seed must hold (`SeedSpec`) and which Locust users it runs. Import this module (and `load`
any scenario) only after gevent's monkey-patching: scenarios import Locust.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from checker.load.catalogue import path_of, require
from checker.seed import SeedSpec

if TYPE_CHECKING:
    from locust import User


@dataclass(frozen=True)
class Scenario:
    """One load scenario."""

    name: str
    description: str
    seed: SeedSpec
    users: tuple[type[User], ...]

    @classmethod
    def define(cls, module: str, doc: str | None, seed: SeedSpec,
               *users: type[User]) -> Scenario:
        """The scenario of module `module` (its `__name__`) with docstring `doc`, and plain
        Locust support for it (`locust -f scenarios/<name>.py`: `checker.load.plain`)."""
        from checker.load import plain

        plain.install()
        if not users:
            raise ValueError(f"scenario {module} has no users")
        first = (doc or "").strip().splitlines()
        return cls(module.rpartition(".")[2], first[0] if first else "", seed, users)

    @property
    def path(self) -> Path:
        """Its locustfile (what workers run)."""
        return path_of(self.name)


def load(name: str) -> Scenario:
    """The scenario called `name`; UsageError, naming the choices, for an unknown one."""
    scenario = getattr(importlib.import_module(f"scenarios.{require(name)}"), "SCENARIO", None)
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenarios/{name}.py does not export SCENARIO = Scenario.define(...)")
    return scenario
