"""What the auditor returns: a `CheckResult` per named check, gathered in an `AuditResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True)
class Finding:
    """What one check found: the number of violations, a few of them, and context."""

    violations: int
    samples: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one named check. `samples` are JSON-ready dicts (at most N of them)."""

    name: str
    status: Status
    violations: int
    samples: list[dict[str, Any]]
    statement: str
    duration: float
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def family(self) -> str:
        """The part of the name before the dot."""
        return self.name.partition(".")[0]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `checker audit --json` (plus statement, duration_ms, details)."""
        out: dict[str, Any] = {
            "name": self.name, "status": self.status, "violations": self.violations,
            "samples": self.samples, "statement": self.statement,
            "duration_ms": round(self.duration * 1000, 3),
        }
        if self.details:
            out["details"] = self.details
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class AuditResult:
    """Every check's result, in registry order; `ok` when all of them passed."""

    checks: tuple[CheckResult, ...]
    duration: float

    @property
    def ok(self) -> bool:
        """True when no check failed or errored."""
        return all(check.status == "pass" for check in self.checks)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that did not pass."""
        return tuple(check for check in self.checks if check.status != "pass")

    def get(self, name: str) -> CheckResult:
        """The result of the check called `name` (KeyError if it did not run)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """`{"ok": bool, "checks": [...]}`."""
        return {"ok": self.ok, "checks": [check.to_dict() for check in self.checks]}

    def summary(self) -> str:
        """A readable multi-line account of the checks that did not pass."""
        lines = []
        for check in self.failed:
            what = check.error if check.status == "error" else f"{check.violations} violation(s)"
            lines.append(f"{check.name}: {check.status}: {what} ({check.statement})")
            lines.extend(f"    {sample}" for sample in check.samples)
        return "\n".join(lines) or "all checks passed"
