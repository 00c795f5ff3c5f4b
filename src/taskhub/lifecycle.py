"""The task lifecycle as a pure state machine: no database, no I/O.

    (none) -> pending -> processing -> completed   (requires a result)
                                    -> failed      (requires an error message)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from taskhub.errors import IllegalTransition


class Status(StrEnum):
    """A task's status; the values are what the `tasks.status` column stores."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


LEGAL: frozenset[tuple[Status | None, Status]] = frozenset({
    (None, Status.PENDING),
    (Status.PENDING, Status.PROCESSING),
    (Status.PROCESSING, Status.COMPLETED),
    (Status.PROCESSING, Status.FAILED),
})
"""Every legal (from, to) pair; `None` as `from` is the task's creation."""

SOURCE: dict[Status, Status] = {to: frm for frm, to in LEGAL if frm is not None}
"""The one status each transition target may be reached from."""


def is_legal(from_status: Status | None, to_status: Status) -> bool:
    """Whether the lifecycle allows `from_status -> to_status`."""
    return (from_status, to_status) in LEGAL


def check_transition(from_status: Status | None, to_status: Status, *,
                     result: Any = None, error: str | None = None) -> None:
    """Raise IllegalTransition unless the change is legal and carries what its target needs.

    `completed` needs a result (any JSON value but None) and `failed` a non-blank error.
    """
    if not is_legal(from_status, to_status):
        raise IllegalTransition(from_status, to_status)
    if to_status is Status.COMPLETED and result is None:
        raise IllegalTransition(from_status, to_status, "completed requires a result")
    if to_status is Status.FAILED and (error is None or not error.strip()):
        raise IllegalTransition(from_status, to_status, "failed requires an error message")
