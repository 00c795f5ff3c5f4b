"""Every named check, by family, in the order an audit runs them; `select` picks some."""

from __future__ import annotations

from collections.abc import Iterable

from checker.audit import (
    auth,
    isolation,
    ledger,
    ledger_accounts,
    ledger_edits,
    orphans,
    schema,
    transitions,
)
from checker.audit.check import Check
from checker.errors import UsageError


def _families() -> dict[str, tuple[Check, ...]]:
    """The modules' checks by family name (a family may span modules)."""
    families: dict[str, tuple[Check, ...]] = {}
    for module in (schema, orphans, transitions, isolation, auth, ledger, ledger_edits,
                   ledger_accounts):
        name = module.family.name
        families[name] = families.get(name, ()) + tuple(module.family.checks)
    return families


FAMILIES = _families()
CHECKS: tuple[Check, ...] = tuple(check for checks in FAMILIES.values() for check in checks)


def select(only: str | Iterable[str] | None = None, *, with_history: bool = False
           ) -> tuple[Check, ...]:
    """The checks to run: all (or those named by `only`: families or full check names,
    comma-separated or as a list). Without a history the checks that need one are left out,
    unless named explicitly, which is a UsageError, as is an unknown name."""
    if only is None:
        return tuple(c for c in CHECKS if with_history or not c.needs_history)
    names = [only] if isinstance(only, str) else list(only)
    wanted = [n.strip() for name in names for n in name.split(",") if n.strip()]
    if not wanted:
        raise UsageError("--only needs a family or check name")
    known = {c.name for c in CHECKS}
    unknown = [n for n in wanted if n not in FAMILIES and n not in known]
    if unknown:
        raise UsageError(f"unknown check family {', '.join(map(repr, unknown))}: choose from "
                         f"{', '.join(FAMILIES)} (or a check name such as {CHECKS[0].name})")
    chosen = tuple(c for c in CHECKS if c.family in wanted or c.name in wanted)
    if not with_history:
        for name in wanted:
            if all(c.needs_history for c in CHECKS if name in (c.family, c.name)):
                raise UsageError(f"{name} needs a history (--history FILE)")
        chosen = tuple(c for c in chosen if not c.needs_history)
    return chosen
