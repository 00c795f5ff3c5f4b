"""Seeding: the ids PostgreSQL derives are the ids the load processes derive, every seeded
task has its creation event and its history record, and the manifest travels compactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from checker.audit import run_audit
from checker.history import HistoryRecord, HistoryWriter, read_history
from checker.seed import (
    SEED_PROCESS,
    Manifest,
    SeededTaskIds,
    SeedSpec,
    hash_all,
    plan,
    record_lines,
    seed_database,
    task_id,
)
from taskhub.db import libpq_url
from taskhub.settings import TEST_ARGON2
from tests.checker.audit_support import TEST_OPTIONS

SPEC = SeedSpec(tenants=3, tasks_per_tenant=5, legacy_share=0.34, contested=4)


def test_the_plan_is_a_function_of_the_seed() -> None:
    assert plan(SPEC, 7) == plan(SPEC, 7)
    assert plan(SPEC, 7).tenants[0].user_id != plan(SPEC, 8).tenants[0].user_id
    ids = [i for t in plan(SPEC, 7).tenants for i in t.task_ids]
    assert len(set(ids)) == 15 and set(ids).isdisjoint(
        i for t in plan(SPEC, 8).tenants for i in t.task_ids)


def test_seeded_ids_are_a_sequence_of_canonical_uuids() -> None:
    ids = SeededTaskIds(7, 1, 4)
    assert len(ids) == 4 and list(ids) == [task_id(7, 1, n) for n in range(4)]
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


def test_record_lines_are_what_history_record_writes() -> None:
    manifest = plan(SPEC, 7)
    lines = list(record_lines(manifest, 1.5, 2.25))
    tenant = manifest.tenants[1]
    expected = HistoryRecord(SEED_PROCESS, tenant.user_id, "task.create", {"title": "seeded"},
                             1.5, 2.25, "ok", {"task_id": tenant.task_ids[0],
                                               "owner_ids": [tenant.user_id]})
    assert lines[5] == expected.to_json()
    assert len(lines) == 15


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
    assert {(r.observed["task_id"], r.tenant) for r in records if r.op == "task.create"} \
        == planned
    audit = run_audit(db_url, records, options=TEST_OPTIONS)
    assert audit.ok, [c for c in audit.checks if c.status != "pass"]
