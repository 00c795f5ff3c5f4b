"""ledger.acknowledged_edits_persist: each task field the history wrote holds a value some write
may have left there last.

A task's `title` and its `payload` are each a register. The writes of one field of one task are
its `task.create` (the initial value) and every `task.update` that set it, as `args.wrote`
digests (`checker.history.digest`). A write is superseded when an acknowledged write of the same
field started after it had returned; the final value must be the value of a write that is
not superseded and that may have happened (`ok` or `unknown`): the last acknowledged one, or one
that overlapped it, or one of unknown outcome after it. A field with no acknowledged write in
the history (a seeded task only ever edited with unknown outcome) is not checked: its value
before the run is not the history's to know. Tasks that are gone are the creates and deletes
checks' business.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

from checker.audit.check import Family
from checker.audit.context import AuditContext, sample
from checker.audit.ledger import MAY_HAVE_HAPPENED, Deletions, brief
from checker.audit.result import Finding
from checker.history import HistoryRecord, digest

family = Family("ledger")



class Write(NamedTuple):
    """One write of one field of one task (a tuple: there is one per field a create or an
    edit set, millions in a long run)."""

    value: str  # the digest
    record: HistoryRecord


def field_writes(records: Sequence[HistoryRecord]) -> dict[tuple[str, str], list[Write]]:
    """(task id, field) -> the writes of it that may have happened."""
    writes: dict[tuple[str, str], list[Write]] = defaultdict(list)
    for r in records:
        wrote = r.args.get("wrote")
        if r.outcome not in MAY_HAVE_HAPPENED or not isinstance(wrote, dict):
            continue
        if r.op == "task.create" and r.observed.get("task_id"):
            task = str(r.observed["task_id"])
        elif r.op == "task.update":
            task = str(r.args["task_id"])
        else:
            continue
        for name, value in wrote.items():
            writes[(task, name)].append(Write(value, r))
    return writes


def possible_finals(writes: Sequence[Write], skew: float = 0.0) -> set[str] | None:
    """The values the field may hold now, or None when the history cannot tell (no
    acknowledged write). `skew`: how far two records' clocks may disagree."""
    if len(writes) == 1:  # most fields: written once, by the create
        return {writes[0].value} if writes[0].record.outcome == "ok" else None
    acked = [w.record.start for w in writes if w.record.outcome == "ok"]
    if not acked:
        return None
    latest_start = max(acked)  # a write is superseded iff it returned before this
    return {w.value for w in writes if w.record.end + skew >= latest_start}


@family.check("acknowledged_edits_persist",
              "each task field a client wrote (title, payload) holds the value of the last "
              "acknowledged write of it, or of a write that overlapped it or whose outcome is "
              "unknown: no acknowledged edit reverted or lost, no edited task gone without a "
              "delete, no acknowledged edit the history cannot check", needs_history=True)
def acknowledged_edits_persist(ctx: AuditContext) -> Finding:
    """One violation per (task, field) whose value no surviving write explains, per edited
    task (one with no create in the history: a seeded one) missing without a delete to explain
    it, and per acknowledged edit that did not record what it wrote."""
    records = ctx.history or ()
    blind = [brief(r, task_id=r.args["task_id"], problem="acknowledged edit without args.wrote")
             for r in records if r.op == "task.update" and r.outcome == "ok"
             and not isinstance(r.args.get("wrote"), dict)]
    writes = field_writes(records)
    tasks = sorted({task for task, _ in writes})
    if not tasks:
        return Finding(len(blind), sample(blind, ctx.options), {"fields_checked": 0})
    rows = ctx.rows("SELECT id, title, payload FROM tasks WHERE id = ANY (%(ids)s::uuid[])",
                    {"ids": tasks})
    current = {str(row["id"]): row for row in rows}
    bad: list[dict[str, Any]] = list(blind)
    deletions = Deletions.in_history(ctx)
    missing: set[str] = set()
    checked = unchecked = 0
    for (task, name), field_log in writes.items():  # in the history's order
        row = current.get(task)
        if row is None:
            # A created task's absence is acknowledged_creates_persist's to judge; a seeded
            # task that was edited has no other check to notice it went.
            created = any(w.record.op == "task.create" for w in field_log)
            owners = {w.record.tenant for w in field_log}
            if not created and task not in missing and any(
                    w.record.outcome == "ok" for w in field_log) and not any(
                    deletions.explain(task, owner) for owner in owners):
                missing.add(task)
                bad.append({"task_id": task, "problem": "edited, then missing without a delete"})
            continue
        finals = possible_finals(field_log, ctx.options.history_skew)
        if finals is None:
            unchecked += 1
            continue
        checked += 1
        if digest(row[name]) not in finals:
            last = max((w for w in field_log if w.record.outcome == "ok"),
                       key=lambda w: w.record.end)
            bad.append({"task_id": task, "field": name,
                        "last_acknowledged": brief(last.record), "writes": len(field_log)})
    return Finding(len(bad), sample(bad, ctx.options),
                   {"fields_checked": checked, "fields_unchecked": unchecked,
                    "writes": sum(map(len, writes.values()))})
