"""Watching the services from outside, without replacing anything they depend on: the
statements the services send (on both pools of a Database), and the Argon2id work done
(`passwords.hasher` wrapped, the real hasher still doing every hash and verification)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError
from sqlalchemy import Engine, event

from taskhub import passwords
from taskhub.db import Database
from taskhub.settings import Argon2Params
from tests.integration.helpers import engines_of


@contextmanager
def statements(target: Database | Engine) -> Iterator[list[str]]:
    """Every statement sent on `target` (both pools of a Database) inside the block."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engines = engines_of(target)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


@dataclass
class Argon2Log:
    """What Argon2id did: ("hash", params) and ("verify", params of the stored hash, None
    when it is not an Argon2 hash)."""

    calls: list[tuple[str, Argon2Params | None]] = field(default_factory=list)

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.calls.clear()


class _Recording(PasswordHasher):
    def __init__(self, params: Argon2Params, log: Argon2Log) -> None:
        super().__init__(time_cost=params.time_cost, memory_cost=params.memory_cost,
                         parallelism=params.parallelism, type=Type.ID)
        self._params, self._log = params, log

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self._log.calls.append(("hash", self._params))
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        try:
            stored = extract_parameters(hash if isinstance(hash, str) else hash.decode())
        except InvalidHashError:
            self._log.calls.append(("verify", None))
        else:
            self._log.calls.append(("verify", Argon2Params(
                stored.time_cost, stored.memory_cost, stored.parallelism)))
        return super().verify(hash, password)


def spy_on_argon2(monkeypatch: pytest.MonkeyPatch) -> Argon2Log:
    """Record every Argon2id hash and verification taskhub does from now on."""
    log = Argon2Log()
    monkeypatch.setattr(passwords, "hasher", lambda params: _Recording(params, log))
    return log
