"""`Check` (a named, documented audit query) and `Family` (the checks of one module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from checker.audit.context import AuditContext
from checker.audit.result import Finding

CheckFn = Callable[[AuditContext], Finding]


@dataclass(frozen=True)
class Check:
    """One named check: `statement` is the one-line property it proves."""

    name: str
    statement: str
    run: CheckFn
    needs_history: bool = False

    @property
    def family(self) -> str:
        """The part of the name before the dot."""
        return self.name.partition(".")[0]


class Family:
    """Collects a module's checks, in definition order, under `<family>.<name>`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.checks: list[Check] = []

    def check(self, name: str, statement: str, *,
              needs_history: bool = False) -> Callable[[CheckFn], CheckFn]:
        """Decorator registering `fn` as the check `<family>.<name>`."""
        def register(fn: CheckFn) -> CheckFn:
            self.checks.append(Check(f"{self.name}.{name}", statement, fn, needs_history))
            return fn
        return register
