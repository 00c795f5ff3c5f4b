"""Who a unit of work acts for: a signed-in user (a tenant) or a queue worker."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """A user proven by a verified access token (see `tokens.verify`).

    `must_change_password` marks a session opened with a temporary password: it may change the
    password (and log out) but nothing else.
    """

    user_id: uuid.UUID
    session_id: uuid.UUID
    must_change_password: bool = False

    @property
    def actor(self) -> str:
        """The label written to `task_events.actor`."""
        return f"user:{self.user_id}"


@dataclass(frozen=True)
class Worker:
    """A queue worker that moves any tenant's tasks through the lifecycle."""

    name: str

    @property
    def actor(self) -> str:
        """The label written to `task_events.actor`."""
        return f"worker:{self.name}"
