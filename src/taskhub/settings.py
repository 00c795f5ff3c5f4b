"""Every setting of the data layer, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

APP_ROLE = "taskhub_app"
"""Tenant-scoped role: row-level security limits it to the rows of `app.user_id`."""
WORKER_ROLE = "taskhub_worker"
"""Role of queue workers: may read and move any tenant's tasks, never create or delete them."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters (argon2-cffi's names and units: memory in KiB)."""

    time_cost: int = 3
    memory_cost: int = 65536
    parallelism: int = 4

    @classmethod
    def from_env(cls) -> Argon2Params:
        """Parameters from TASKHUB_ARGON2_{TIME_COST,MEMORY_COST,PARALLELISM}."""
        default = cls()
        return cls(
            time_cost=_int("TASKHUB_ARGON2_TIME_COST", default.time_cost),
            memory_cost=_int("TASKHUB_ARGON2_MEMORY_COST", default.memory_cost),
            parallelism=_int("TASKHUB_ARGON2_PARALLELISM", default.parallelism),
        )


TEST_ARGON2 = Argon2Params(time_cost=1, memory_cost=1024, parallelism=1)
"""A cheap but genuine Argon2id profile for tests and load seeding. Never for production."""


class Hasher(Protocol):
    """What taskhub asks of an Argon2id hasher (argon2-cffi's `PasswordHasher` is one)."""

    def hash(self, password: str) -> str:
        """A PHC string of `password`."""

    def verify(self, stored: str, password: str) -> bool:
        """True, or argon2-cffi's VerificationError / InvalidHashError."""

    def check_needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters."""


HasherFactory = Callable[[Argon2Params], Hasher]
"""Builds the hasher for a parameter set (`Settings.hasher`)."""


@dataclass(frozen=True)
class Settings:
    """The data layer's configuration. Build with `Settings.from_env()` or directly in tests."""

    database_url: str = ""
    argon2: Argon2Params = field(default_factory=Argon2Params)
    min_password_score: int = 3
    password_history_depth: int = 5
    max_password_bytes: int = 1024
    temp_password_ttl_seconds: int = 24 * 3600
    jwt_secret: str = ""
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "taskhub"
    jwt_audience: str = "taskhub-api"
    access_token_ttl_seconds: int = 15 * 60
    jwt_leeway_seconds: int = 5
    hasher: HasherFactory | None = field(default=None, compare=False, repr=False)
    """How Argon2id runs (None: argon2-cffi in the calling thread, `passwords.hasher`); a load
    generator passes one that hashes off its event loop."""

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from TASKHUB_* environment variables, defaults for the rest."""
        default = cls()
        return cls(
            database_url=os.environ.get("TASKHUB_DATABASE_URL", ""),
            argon2=Argon2Params.from_env(),
            min_password_score=_int("TASKHUB_MIN_PASSWORD_SCORE", default.min_password_score),
            password_history_depth=_int(
                "TASKHUB_PASSWORD_HISTORY_DEPTH", default.password_history_depth
            ),
            max_password_bytes=_int("TASKHUB_MAX_PASSWORD_BYTES", default.max_password_bytes),
            temp_password_ttl_seconds=_int(
                "TASKHUB_TEMP_PASSWORD_TTL_SECONDS", default.temp_password_ttl_seconds
            ),
            jwt_secret=os.environ.get("TASKHUB_JWT_SECRET", ""),
            jwt_issuer=os.environ.get("TASKHUB_JWT_ISSUER", default.jwt_issuer),
            jwt_audience=os.environ.get("TASKHUB_JWT_AUDIENCE", default.jwt_audience),
            access_token_ttl_seconds=_int(
                "TASKHUB_ACCESS_TOKEN_TTL_SECONDS", default.access_token_ttl_seconds
            ),
        )
