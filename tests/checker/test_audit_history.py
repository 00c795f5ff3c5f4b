"""checker.history: records, JSONL round trips, and errors that name the line."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checker.errors import UsageError
from checker.history import (
    HistoryError,
    HistoryRecord,
    HistoryWriter,
    parse_history,
    read_history,
    write_history,
)

TENANT, TASK = str(uuid.uuid4()), str(uuid.uuid4())


def line(**fields: Any) -> str:
    base: dict[str, Any] = {"process": "p1", "tenant": TENANT, "op": "task.read",
                            "args": {"task_id": TASK}, "start": 1.0, "end": 1.5,
                            "outcome": "ok", "observed": {"task_ids": [TASK]}}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_round_trip(tmp_path: Path) -> None:
    records = [
        HistoryRecord.run_start("runner", 1.0, complete=True, scenario="concurrency"),
        HistoryRecord("p1", TENANT, "task.create", {"title": "x"}, 2.0, 2.1, "ok",
                      {"task_id": TASK, "owner_ids": [TENANT]}),
        HistoryRecord("w1", None, "task.transition",
                      {"task_id": TASK, "from_status": "pending", "to_status": "processing"},
                      3.0, 3.2, "unknown", error="connection lost"),
    ]
    path = tmp_path / "history.jsonl"
    write_history(path, records)
    assert read_history(path) == records
    assert len(path.read_text().splitlines()) == 3


def test_appending_writer_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"

    def work(n: int) -> None:
        for i in range(200):
            writer.append(HistoryRecord(f"p{n}", TENANT, "login", {"email": "a@b"}, i, i, "ok"))

    with HistoryWriter(path) as writer:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with HistoryWriter(path) as writer:  # appends by default
        writer.append(HistoryRecord.run_start("runner", 0.0, complete=False))
    records = read_history(path)
    assert len(records) == 801 and records[-1].op == "run.start"


def test_blank_lines_are_skipped() -> None:
    assert len(parse_history(["", line(), "   ", line()])) == 2


@pytest.mark.parametrize(("bad", "message"), [
    ("{not json", "Expecting property name"),
    ("[1, 2]", "a record must be a JSON object"),
    (line(outcome="maybe"), "outcome must be one of fail, ok, unknown"),
    (line(start="noon"), "start must be a number"),
    (line(end=0.5), "end (0.5) is before start (1.0)"),
    (line(tenant="alice"), "tenant must be a user id (UUID) or null"),
    (line(colour="red"), "unknown field(s) colour"),
    (line(op=...), "missing field(s) op"),
    (line(args=[]), "args must be an object"),
    (line(args={}), "task.read needs args.task_id (a UUID)"),
    (line(op="task.transition", args={"task_id": TASK, "from_status": "pending",
                                      "to_status": "done"}),
     "task.transition needs args.to_status"),
    (line(op="task.create", args={}, observed={}), "an ok task.create needs observed.task_id"),
    (line(observed={"task_ids": ["nope"]}), "observed.task_ids must be a list of UUIDs"),
    (line(op="run.start", args={}), "run.start needs args.complete"),
    (line()[:-1] + ', "error": NaN}', "NaN is not a JSON value"),
    (line(op="user.delete", args={"user_id": "abc"}), "user.delete: args.user_id must be a UUID"),
    (line(op="logout", args={"user_id": "ABC"}), "logout: args.user_id must be a UUID"),
])
def test_malformed_lines_name_the_line(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join([line(), "", bad, line()]) + "\n")
    with pytest.raises(HistoryError) as failure:
        read_history(path)
    assert str(failure.value).startswith(f"{path}:3: malformed history record: ")
    assert message in str(failure.value)
    assert isinstance(failure.value, UsageError)  # the CLI exits 2


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read history"):
        read_history(tmp_path / "missing.jsonl")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HistoryError, match="not UTF-8"):
        read_history(binary)


def test_unknown_ops_are_accepted_as_they_are() -> None:
    [record] = parse_history([line(op="user.rename", args={"whatever": 1})])
    assert record.op == "user.rename"


def test_records_validate_on_construction() -> None:
    with pytest.raises(ValueError, match="outcome"):
        HistoryRecord("p", None, "login", {}, 1.0, 1.0, "perhaps")  # type: ignore[arg-type]


def _canonical_by_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


@given(st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: f"{{{u}}}"),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),
    st.uuids().map(lambda u: f"{u}\n"),
    st.text(alphabet="0123456789abcdefABCDEF-{}:nru \n", max_size=45),
))
def test_an_id_is_canonical_exactly_when_uuid_says_so(value: str) -> None:
    """The history's id rule is a regular expression for speed; it must accept exactly the
    strings that Python's uuid module gives back unchanged."""
    record = line(args={"task_id": value})
    accepted = True
    try:
        parse_history([record])
    except HistoryError:
        accepted = False
    assert accepted is _canonical_by_uuid(value)
