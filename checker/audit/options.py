"""Knobs of an audit: sample size, the Argon2id minimum, the isolation sample, clock skew."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from checker.errors import UsageError
from taskhub.settings import Argon2Params

MIN_ARGON2_ENV = "CHECKER_MIN_ARGON2"
_ARGON2_SPEC = re.compile(r"m=(\d+),t=(\d+),p=(\d+)")


@dataclass(frozen=True)
class Argon2Minimum:
    """The weakest Argon2id cost accepted: memory in KiB, iterations, lanes."""

    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1

    @classmethod
    def of(cls, params: Argon2Params) -> Argon2Minimum:
        """Exactly the cost of `params` as a minimum."""
        return cls(params.memory_cost, params.time_cost, params.parallelism)

    @classmethod
    def parse(cls, spec: str) -> Argon2Minimum:
        """From `m=19456,t=2,p=1` (spaces ignored); UsageError when malformed."""
        match = _ARGON2_SPEC.fullmatch(spec.replace(" ", ""))
        if not match:
            raise UsageError(f"bad Argon2id minimum {spec!r}: expected m=KIB,t=N,p=N")
        return cls(*(int(group) for group in match.groups()))

    @classmethod
    def from_env(cls) -> Argon2Minimum:
        """From CHECKER_MIN_ARGON2 when set, else the OWASP minimum."""
        spec = os.environ.get(MIN_ARGON2_ENV, "").strip()
        return cls.parse(spec) if spec else cls()

    def __str__(self) -> str:
        return f"m={self.memory_kib},t={self.time_cost},p={self.parallelism}"


OWASP_MINIMUM = Argon2Minimum()
"""OWASP Password Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1."""


@dataclass(frozen=True)
class AuditOptions:
    """How an audit runs.

    - `samples`: rows kept per failing check.
    - `min_argon2`: the weakest accepted cost of a current password hash.
    - `isolation_tenants`: how many tenants the isolation probe impersonates (0: every one).
    - `clock_skew`: seconds of disagreement tolerated between client and server clocks when the
      history's run start scopes which database rows it must explain.
    - `history_skew`: seconds the clocks of the history's own processes may disagree when the
      ledger orders two clients' operations in real time (one host's processes share a clock:
      0; remote workers: their hosts' synchronisation error). Larger only ever accepts more.
    - `work_mem`: PostgreSQL `work_mem` for the audit's transaction (its one big aggregation
      stays in memory up to about 100 MB per million tasks).
    - `lock_timeout`: seconds a check may wait for a lock (behind DDL) before it errors.
    """

    samples: int = 5
    min_argon2: Argon2Minimum = field(default_factory=Argon2Minimum.from_env)
    isolation_tenants: int = 1000
    clock_skew: float = 1.0
    history_skew: float = 0.0
    work_mem: str = "256MB"
    lock_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("clock_skew", "history_skew"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):  # NaN orders unlike any number
                raise UsageError(f"{name.replace('_', ' ')} must be a finite number of "
                                 f"seconds >= 0, got {value}")
