"""Seeding: the ids PostgreSQL derives are the ids the load processes derive, every seeded
task has its creation event, the history claims them in one `task.seed` record per tenant,
and the manifest travels compactly. The ledger holds the database to those claims."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from checker.audit import run_audit
from checker.audit.ledger import brief
from checker.history import (
    MAX_SEEDED,
    HistoryError,
    HistoryRecord,
    HistoryWriter,
    parse_history,
    read_history,
    seeded_task_id,
)
from checker.seed import (
    Manifest,
    SeededTaskIds,
    SeedSpec,
    hash_all,
    plan,
    seed_database,
    seed_records,
)
from taskhub.db import libpq_url
from taskhub.settings import TEST_ARGON2
from tests.checker.audit_support import TEST_OPTIONS, assert_fails_only, audit, owner, sampled

SPEC = SeedSpec(tenants=3, tasks_per_tenant=5, legacy_share=0.34, contested=4)


def test_the_plan_is_a_function_of_the_seed() -> None:
    assert plan(SPEC, 7) == plan(SPEC, 7)
    assert plan(SPEC, 7).tenants[0].user_id != plan(SPEC, 8).tenants[0].user_id
    ids = [i for t in plan(SPEC, 7).tenants for i in t.task_ids]
    assert len(set(ids)) == 15 and set(ids).isdisjoint(
        i for t in plan(SPEC, 8).tenants for i in t.task_ids)


def test_seeded_ids_are_a_sequence_of_canonical_uuids() -> None:
    ids = SeededTaskIds(7, 1, 4)
    assert len(ids) == 4 and list(ids) == [seeded_task_id(7, 1, n) for n in range(4)]
    assert ids[-1] == ids[3] and ids[1:3] == [ids[1], ids[2]] and ids[:0] == []
    with pytest.raises(IndexError):
        ids[4]
    HistoryRecord("p", None, "task.read", {"task_id": ids[0]}, 0, 0, "ok")  # canonical


def test_contested_tasks_go_round_robin_over_the_tenants() -> None:
    manifest = plan(SPEC, 7)
    t = manifest.tenants
    assert manifest.contested == (t[0].task_ids[0], t[1].task_ids[0], t[2].task_ids[0],
                                  t[0].task_ids[1])


def test_the_manifest_travels_without_its_ids() -> None:
    manifest = plan(SeedSpec(tenants=2, tasks_per_tenant=100_000), 7)
    sent = json.dumps(manifest.to_dict())
    assert len(sent) < 1000
    assert Manifest.from_dict(json.loads(sent)) == manifest


def test_one_hash_per_distinct_password_and_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskhub import passwords

    hashed: list[str] = []

    def counting(password: str, settings: Any) -> str:
        hashed.append(password)
        return f"hash of {password} at {settings.argon2}"

    monkeypatch.setattr(passwords, "hash_password", counting)
    manifest = plan(SPEC, 7)
    twins = Manifest(7, (manifest.tenants[0], manifest.tenants[0], manifest.tenants[1]), 5)
    hashes = hash_all(twins, TEST_ARGON2, TEST_ARGON2)
    assert hashes[0] == hashes[1] != hashes[2] and len(hashed) == 2


def test_one_seed_record_per_tenant_claims_its_tasks() -> None:
    manifest = plan(SPEC, 7)
    records = seed_records(manifest, 1.5, 2.25)
    assert [r.tenant for r in records] == [t.user_id for t in manifest.tenants]
    claimed = [seeded_task_id(r.args["seed"], r.args["tenant_number"], n)
               for r in records for n in range(r.args["count"])]
    assert claimed == [i for t in manifest.tenants for i in t.task_ids]
    line = records[0].to_json()
    assert read_records(line) == [records[0]]


@pytest.mark.parametrize(("change", "problem"), [
    ({"count": -1}, "args.count"), ({"count": 10**9}, "args.count"),
    ({"count": True}, "args.count"), ({"seed": 2**63}, "args.seed"),
    ({"tenant_number": "0"}, "args.tenant_number"), ({"tenant": None}, "needs its tenant"),
    ({"outcome": "unknown"}, "must be ok"),
])
def test_a_seed_record_claims_a_bounded_well_formed_range(change: dict[str, Any],
                                                          problem: str) -> None:
    data = json.loads(seed_records(plan(SPEC, 7), 1.0, 2.0)[0].to_json())
    for key, value in change.items():
        if key in data:
            data[key] = value
        else:
            data["args"][key] = value
    with pytest.raises(HistoryError, match=problem):
        read_records(json.dumps(data))


def read_records(*lines: str) -> list[HistoryRecord]:
    return parse_history(lines, "test")


def test_the_database_holds_what_the_manifest_says(db_url: Any, db_engine: Any,
                                                   tmp_path: Path) -> None:
    manifest = plan(SPEC, 7)
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path, mode="w") as writer:
        seed_database(libpq_url(db_url), manifest, hash_all(manifest, TEST_ARGON2, TEST_ARGON2),
                      writer)
        writer.append(HistoryRecord.run_start("runner", 9e9, complete=True))
    with db_engine.connect() as conn:
        tasks = {(str(r.id), str(r.user_id)) for r in conn.execute(text(
            "SELECT id, user_id FROM tasks WHERE status = 'pending' AND title LIKE 'seeded%'"))}
        events = {(str(r.task_id), str(r.user_id)) for r in conn.execute(text(
            "SELECT task_id, user_id FROM task_events WHERE from_status IS NULL "
            "AND to_status = 'pending' AND actor = 'seed'"))}
        order = [str(r.id) for r in conn.execute(text("SELECT id FROM tasks "
                                                       "ORDER BY created_at, id"))]
    planned = {(i, t.user_id) for t in manifest.tenants for i in t.task_ids}
    assert tasks == events == planned
    assert order == [t.task_ids[n] for n in range(5) for t in manifest.tenants]
    records = read_history(path)
    assert records[:-1] == seed_records(manifest, records[0].start, records[0].end)
    audit = run_audit(db_url, records, options=TEST_OPTIONS)
    assert audit.ok, [c for c in audit.checks if c.status != "pass"]


@pytest.fixture
def seeded(db_url: Any, tmp_path: Path) -> tuple[Manifest, list[HistoryRecord]]:
    """A database seeded with SPEC and its history (seed records and the run.start header)."""
    manifest = plan(SPEC, 7)
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path, mode="w") as writer:
        seed_database(libpq_url(db_url), manifest,
                      hash_all(manifest, TEST_ARGON2, TEST_ARGON2), writer)
        writer.append(HistoryRecord.run_start("runner", time.time(), complete=True))
    return manifest, read_history(path)


def test_a_seeded_task_lost_behind_the_clients_back(db_url: Any, seeded: Any) -> None:
    manifest, records = seeded
    lost = manifest.tenants[2].task_ids[4]
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (lost,))
    result = audit(db_url, records)
    assert_fails_only(result, "ledger.acknowledged_creates_persist")
    assert result.get("ledger.acknowledged_creates_persist").samples == [
        {**brief(records[2]), "task_id": lost, "problem": "missing"}]


def test_a_seeded_task_deleted_by_a_client_is_explained(db_url: Any, seeded: Any) -> None:
    manifest, records = seeded
    tenant = manifest.tenants[1]
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (tenant.task_ids[0],))
    deleted = HistoryRecord("c1", tenant.user_id, "task.delete",
                            {"task_id": tenant.task_ids[0]}, time.time(), time.time(), "ok")
    result = audit(db_url, [*records, deleted])
    assert result.ok, result.summary()
    assert result.get("ledger.acknowledged_creates_persist").details == {
        "acknowledged": 15, "explained_by_delete": 1, "unknown": 0}


def test_seeded_tasks_owned_by_another_tenant(db_url: Any, seeded: Any) -> None:
    manifest, records = seeded
    claimant, owner_id = manifest.tenants[1].user_id, manifest.tenants[0].user_id
    wrong = dataclasses.replace(records[0], tenant=claimant,
                                observed={"owner_ids": [claimant]})
    result = audit(db_url, [wrong, *records[1:]])
    assert_fails_only(result, "ledger.acknowledged_creates_persist")
    assert result.get("ledger.acknowledged_creates_persist").violations == 5
    assert set(sampled(result, "ledger.acknowledged_creates_persist", "problem")) == {
        f"owned by {owner_id}"}


def test_a_seed_record_claiming_more_than_was_seeded(db_url: Any, seeded: Any) -> None:
    _, records = seeded
    bigger = dataclasses.replace(records[0], args={**records[0].args, "count": 6})
    result = audit(db_url, [bigger, *records[1:]])
    assert_fails_only(result, "ledger.acknowledged_creates_persist")
    assert sampled(result, "ledger.acknowledged_creates_persist", "problem") == ["missing"]


def test_a_task_no_seed_record_claims_is_a_phantom(db_url: Any, seeded: Any) -> None:
    manifest, records = seeded
    result = audit(db_url, [r for r in records if r.tenant != manifest.tenants[2].user_id])
    assert_fails_only(result, "ledger.no_phantom_tasks")
    assert result.get("ledger.no_phantom_tasks").violations == 5


def test_a_deleted_seeded_task_seen_by_another_tenant(db_url: Any, seeded: Any) -> None:
    """The owner of a task that is gone comes from the seed record that claimed it."""
    manifest, records = seeded
    victim, reader = manifest.tenants[0], manifest.tenants[1]
    task = victim.task_ids[3]
    with owner(db_url) as conn:
        conn.execute("DELETE FROM tasks WHERE id = %s", (task,))
    now = time.time()
    history = [*records,
               HistoryRecord("c0", victim.user_id, "task.delete", {"task_id": task}, now, now,
                             "ok"),
               HistoryRecord("c1", reader.user_id, "task.read", {"task_id": task}, now, now,
                             "ok", {"task_ids": [task], "owner_ids": [reader.user_id]})]
    result = audit(db_url, history)
    assert_fails_only(result, "isolation.observed_rows_owned")
    assert sampled(result, "isolation.observed_rows_owned", "owner") == [victim.user_id]


def test_the_seed_records_of_a_history_claim_a_bounded_total() -> None:
    records = seed_records(plan(SeedSpec(tenants=3, tasks_per_tenant=1), 7), 1.0, 2.0)
    big = [json.loads(r.to_json()) for r in records]
    for data in big:
        data["args"]["count"] = MAX_SEEDED // 2
    with pytest.raises(HistoryError, match=r"test:3: .*claim more than 100000000 tasks in all"):
        parse_history([json.dumps(data) for data in big], "test")
    assert len(parse_history([json.dumps(data) for data in big[:2]], "test")) == 2
