"""The history of a run: one JSON line per client operation, what the ledger checks read.

Every record says who (`process`, `tenant`), what (`op`, `args`), when (`start`, `end`: client
epoch seconds), how it ended (`outcome`: `ok` acknowledged, `fail` definitely not applied,
`unknown` the client cannot tell, e.g. the connection dropped around the commit), what the
client saw (`observed`) and the error text. A client must record `unknown`, never `fail`, when
a write may have been committed.

Operations and their fields (ids are UUID strings; statuses are taskhub's four):

- `run.start`: args `complete` (bool: every task in the database was created by a record of
  this history), optional `scenario`. Written once, after any seeding, before the first op.
- `user.register`: args `email`, optional `password_id`; observed `user_id`.
- `user.delete`: args optional `user_id` (default: the tenant).
- `login`: args `email`, optional `password_id`; observed `user_id`, optional `session_id`.
- `logout`: args optional `session_id` (the session it ended).
- `password.change`: args `user_id`, optional `old_password_id`, `new_password_id`.
- `password.temporary`: args `user_id`; observed optional `password_id`.
- `task.create`: args optional `title`, `wrote`; observed `task_id` (required when ok),
  `owner_ids`.
- `task.seed`: the tasks seeded for `tenant` before the run, as one record: args `seed` and
  `tenant_number` (integers), `count` (0 to MAX_SEEDED); outcome `ok`. It says the tenant owns
  `count` tasks created with ids `seeded_task_id(seed, tenant_number, n)` for n in
  0..count-1 (the MD5 of `"{seed}:{tenant_number}:{n}"` as a UUID; SQL: `SEEDED_TASK_ID_SQL`),
  so a million seeded tasks take a hundred records, not a million.
- `task.read`: args `task_id`; observed `task_ids`, `owner_ids`.
- `task.update`: args `task_id`, optional `wrote`; observed `task_ids`, `owner_ids`.
- `task.list`: args optional `status`; observed `task_ids`, `owner_ids`.
- `task.delete`: args `task_id`.
- `task.transition`: args `task_id`, `from_status`, `to_status`; observed `task_ids`,
  `owner_ids`.
- `task.claim` (a worker): args `n`; observed `task_ids`, each claimed pending -> processing.
- `probe.*` (a deliberate cross-tenant attempt): args `target_task_id` and/or `target_tenant`,
  optional `action`; observed whatever leaked, which must be nothing.

`wrote` maps each task field the operation set (`title`, `payload`) to `digest(value)`, never
the value itself. A `password_id` is an opaque label the client gives each password it knows
(`seed` for a seeded account's, `wrong` for one it knows to be wrong, else a fresh random
label per password), never the password or anything derived from it: the ledger uses it to
tell a login with a replaced password from one with the current password. Every id is a UUID
in canonical text (lower case, with dashes).

`observed.task_ids` / `owner_ids` list every row the client saw and the owner (`user_id`) each
row carried. A tenant-scoped record has `tenant` set; worker records have `tenant` null.
Tasks created before `run.start` are not the history's to explain unless it says
`complete: true`. Other ops are accepted as they are (their args are not checked).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TextIO, cast

from checker.errors import UsageError
from taskhub.lifecycle import Status

Outcome = Literal["ok", "fail", "unknown"]
OUTCOMES: frozenset[str] = frozenset({"ok", "fail", "unknown"})
STATUSES: frozenset[str] = frozenset(status.value for status in Status)
RUN_START = "run.start"
TASK_SEED = "task.seed"
PROBE_PREFIX = "probe."
MAX_SEEDED = 100_000_000
"""The most tasks `task.seed` records may claim, one or all of a history's together (a history
is input: the audit's work must stay bounded)."""
_SEED_RANGE = 1 << 63

_FIELDS = ("process", "tenant", "op", "args", "start", "end", "outcome", "observed", "error")
_REQUIRED = frozenset({"process", "op", "start", "end", "outcome"})
# op -> (args that must be UUIDs, args that must be statuses)
_ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "task.read": (("task_id",), ()),
    "task.update": (("task_id",), ()),
    "task.delete": (("task_id",), ()),
    "task.transition": (("task_id",), ("from_status", "to_status")),
}
_ID_LISTS = ("task_ids", "owner_ids")
_OPTIONAL_IDS = {"logout": ("session_id", "user_id"), "password.change": ("user_id",),
                 "password.temporary": ("user_id",), "user.delete": ("user_id",)}
WRITABLE_FIELDS = frozenset({"title", "payload"})
"""The task fields whose writes a history records (`args.wrote`)."""
WRONG_PASSWORD = "wrong"  # noqa: S105 - a label, not a password
"""The `password_id` of a password the client knows to be wrong."""
SEED_PASSWORD = "seed"  # noqa: S105 - a label, not a password
"""The `password_id` of a seeded account's password (set before the run)."""


def seeded_task_id(seed: int, tenant_number: int, n: int) -> str:
    """The id of the `n`-th task a `task.seed` record (`seed`, `tenant_number`) claims."""
    hexed = hashlib.md5(f"{seed}:{tenant_number}:{n}".encode(),
                        usedforsecurity=False).hexdigest()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


SEEDED_TASK_ID_SQL = "md5({seed}::text || ':' || {number} || ':' || {n})::uuid"
"""`seeded_task_id` in SQL; format it with the SQL of the bigint seed, the tenant's number
and n."""


def digest(value: Any) -> str:
    """What a history records of a value written: SHA-256 of its canonical JSON (sorted keys,
    no spaces), as PostgreSQL's jsonb would give it back, hex."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class HistoryError(UsageError):
    """A history file that cannot be read or has a malformed record (names file and line)."""


@dataclass(frozen=True, slots=True, weakref_slot=True)
class HistoryRecord:
    """One client operation. Treat `args` and `observed` as read-only."""

    process: str
    tenant: str | None
    op: str
    args: dict[str, Any]
    start: float
    end: float
    outcome: Outcome
    observed: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise ValueError(problem)

    @classmethod
    def run_start(cls, process: str, at: float, *, complete: bool,
                  scenario: str | None = None) -> HistoryRecord:
        """The header record: the run starts at `at`; `complete` as described above."""
        args: dict[str, Any] = {"complete": complete}
        if scenario is not None:
            args["scenario"] = scenario
        return cls(process, None, RUN_START, args, at, at, "ok")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryRecord:
        """Build from a decoded JSON object; ValueError naming the first problem."""
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        missing = sorted(_REQUIRED - set(data))
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        for name in ("start", "end"):
            if isinstance(data[name], bool) or not isinstance(data[name], int | float):
                raise ValueError(f"{name} must be a number of epoch seconds")
        for name in ("process", "op", "outcome"):
            if not isinstance(data[name], str):
                raise ValueError(f"{name} must be a string")
        for name in ("args", "observed"):
            if not isinstance(data.get(name, {}), dict):
                raise ValueError(f"{name} must be an object")
        for name in ("tenant", "error"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"{name} must be a string or null")
        return cls(
            process=data["process"], tenant=data.get("tenant"), op=data["op"],
            args=data.get("args", {}), start=float(data["start"]), end=float(data["end"]),
            outcome=cast(Outcome, data["outcome"]), observed=data.get("observed", {}),
            error=data.get("error"),
        )

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        # Not dataclasses.asdict: it deep-copies args and observed, a cost paid per operation
        # by load generators.
        return json.dumps({name: getattr(self, name) for name in _FIELDS},
                          separators=(",", ":"), sort_keys=False)

    def observed_ids(self, key: str) -> list[str]:
        """`observed[key]` as a list of id strings (empty when absent)."""
        value = self.observed.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_uuid(value: object) -> bool:
    """A UUID in its canonical text (lower case, dashed): the checks compare ids as text with
    what PostgreSQL returns, so `{...}`, upper case or `urn:uuid:` forms are refused rather
    than silently never matching. (Exactly the strings `str(uuid.UUID(value)) == value`
    accepts, at a tenth of the cost: it runs for every id of every record read.)"""
    return isinstance(value, str) and _CANONICAL_UUID.fullmatch(value) is not None


def _problem(record: HistoryRecord) -> str | None:
    """The first thing wrong with a record, or None."""
    if record.outcome not in OUTCOMES:
        return f"outcome must be one of {', '.join(sorted(OUTCOMES))}, got {record.outcome!r}"
    if not (math.isfinite(record.start) and math.isfinite(record.end)):
        return "start and end must be finite"
    if record.end < record.start:
        return f"end ({record.end}) is before start ({record.start})"
    if not record.op:
        return "op is empty"
    if record.tenant is not None and not _is_uuid(record.tenant):
        return f"tenant must be a user id (UUID) or null, got {record.tenant!r}"
    id_args, status_args = _ARGS.get(record.op, ((), ()))
    for name in id_args:
        if not _is_uuid(record.args.get(name)):
            return f"{record.op} needs args.{name} (a UUID)"
    for name in status_args:
        if record.args.get(name) not in STATUSES:
            return f"{record.op} needs args.{name} (one of {', '.join(sorted(STATUSES))})"
    if record.op == RUN_START and not isinstance(record.args.get("complete"), bool):
        return "run.start needs args.complete (true or false)"
    if record.op == TASK_SEED and (problem := _seed_problem(record)):
        return problem
    if record.op == "task.create" and record.outcome == "ok" and not _is_uuid(
            record.observed.get("task_id")):
        return "an ok task.create needs observed.task_id (a UUID)"
    for optional_id in _OPTIONAL_IDS.get(record.op, ()):
        if record.args.get(optional_id) is not None and not _is_uuid(record.args[optional_id]):
            return f"{record.op}: args.{optional_id} must be a UUID"
    wrote = record.args.get("wrote")
    if wrote is not None and not (isinstance(wrote, dict) and set(wrote) <= WRITABLE_FIELDS
                                  and all(isinstance(v, str) for v in wrote.values())):
        return (f"args.wrote must map {' and/or '.join(sorted(WRITABLE_FIELDS))} "
                "to digest strings")
    for name in ("password_id", "old_password_id", "new_password_id"):
        label = record.args.get(name, record.observed.get(name))
        if label is not None and not (isinstance(label, str) and 0 < len(label) <= 64):
            return f"{name} must be a label of 1 to 64 characters"
    for name in ("task_id", "user_id", "session_id"):
        value = record.observed.get(name)
        if value is not None and not _is_uuid(value):
            return f"observed.{name} must be a UUID"
    for name in _ID_LISTS:
        value = record.observed.get(name)
        if value is not None and not (isinstance(value, list) and all(map(_is_uuid, value))):
            return f"observed.{name} must be a list of UUIDs"
    return None


def _seed_problem(record: HistoryRecord) -> str | None:
    limits = {"seed": (-_SEED_RANGE, _SEED_RANGE), "tenant_number": (0, 1 << 31),
              "count": (0, MAX_SEEDED + 1)}
    for name, (low, high) in limits.items():
        value = record.args.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
            return f"{TASK_SEED} needs args.{name} (an integer from {low} to {high - 1})"
    if record.tenant is None:
        return f"{TASK_SEED} needs its tenant"
    if record.outcome != "ok":
        return f"{TASK_SEED} must be ok"
    return None


MAX_LINE_BYTES = 1 << 20
"""The longest history line read (1 MiB; a client's record is a few hundred bytes)."""


def parse_history(lines: Iterable[str], source: str = "<history>") -> list[HistoryRecord]:
    """Records from JSON lines (blank lines skipped); HistoryError naming `source:line`."""
    return list(iter_records(lines, source))


def _not_json(name: str) -> Any:
    """Python's json reads NaN and Infinity; JSON (and PostgreSQL's jsonb) has neither."""
    raise ValueError(f"{name} is not a JSON value")


def iter_records(lines: Iterable[str], source: str = "<history>") -> Iterator[HistoryRecord]:
    """`parse_history` one record at a time: memory stays flat in the number of records."""
    seeded = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            if len(line) > MAX_LINE_BYTES:
                raise ValueError(f"line longer than {MAX_LINE_BYTES} characters")
            data = json.loads(line, parse_constant=_not_json)
            if not isinstance(data, dict):
                raise ValueError("a record must be a JSON object")
            record = HistoryRecord.from_json(data)
            if record.op == TASK_SEED:
                seeded += record.args["count"]
                if seeded > MAX_SEEDED:  # the audit expands them: bounded work for any input
                    raise ValueError(f"the {TASK_SEED} records claim more than {MAX_SEEDED} "
                                     "tasks in all")
        except RecursionError:
            raise HistoryError(f"{source}:{number}: malformed history record: JSON nested "
                               "too deeply") from None
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise HistoryError(f"{source}:{number}: malformed history record: {exc}") from None
        yield record


def _bounded_lines(stream: TextIO) -> Iterator[str]:
    """The stream's lines, none read past MAX_LINE_BYTES + 1 characters (memory stays
    bounded on a file with no newline, such as /dev/zero)."""
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith("\n"):
            yield line  # parse_history refuses it; the rest of the line is never read
            return
        yield line


def read_history(path: str | Path) -> list[HistoryRecord]:
    """Every record of a JSONL history file, validated; HistoryError on the first bad line,
    and for anything but a regular file (a FIFO or a device would block or never end)."""
    return list(iter_history(path))


def iter_history(path: str | Path) -> Iterator[HistoryRecord]:
    """`read_history` one record at a time. The file is opened and checked now (a missing
    file, a directory, a FIFO fail here); its lines are read and validated as iterated."""
    path = Path(path)
    try:
        # Non-blocking: opening a FIFO for reading would otherwise wait for a writer. The
        # type is then taken from what was opened (fstat), not from the name.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise HistoryError(f"cannot read history {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise HistoryError(f"history {path} is not a regular file")
        os.set_blocking(fd, True)
        stream = open(fd, encoding="utf-8")  # noqa: SIM115 - closed by the generator
    except BaseException:
        os.close(fd)
        raise
    return _stream_records(stream, path)


def _stream_records(stream: TextIO, path: Path) -> Iterator[HistoryRecord]:
    with stream:
        try:
            yield from iter_records(_bounded_lines(stream), str(path))
        except OSError as exc:
            raise HistoryError(f"cannot read history {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise HistoryError(f"history {path} is not UTF-8 text: {exc.reason}") from None


def write_history(path: str | Path, records: Iterable[HistoryRecord]) -> None:
    """Write (replace) a history file with `records`."""
    with HistoryWriter(path, mode="w") as writer:
        for record in records:
            writer.append(record)


class HistoryWriter:
    """Appends records to a JSONL file, one line each, flushed per record; thread-safe.

    Use as a context manager; several processes should each write their own file (or send
    records to one writer), since lines of concurrent appenders may interleave.
    """

    def __init__(self, path: str | Path, *, mode: Literal["a", "w"] = "a") -> None:
        self.path = Path(path)
        self._mode = mode
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> HistoryWriter:
        self._file = self.path.open(self._mode, encoding="utf-8")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def append(self, record: HistoryRecord) -> None:
        """Write one record and flush it."""
        if self._file is None:
            raise RuntimeError("HistoryWriter is not open (use it as a context manager)")
        line = record.to_json() + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def append_lines(self, lines: Iterable[str]) -> None:
        """Write records already serialised by `HistoryRecord.to_json` (one flush for all)."""
        if self._file is None:
            raise RuntimeError("HistoryWriter is not open (use it as a context manager)")
        text = "".join(line + "\n" for line in lines)
        with self._lock:
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
