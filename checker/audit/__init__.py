"""The auditor: named checks proving isolation, legal transitions, no orphans, nothing lost.

`run_audit(url, history=None, only=None)` runs them in one read-only snapshot and returns an
`AuditResult`. Families (one module each): `schema`, `orphans`, `transitions`, `isolation`,
`auth`, `ledger` (the last, and two isolation checks, need a history). `registry.CHECKS` lists
every check with the one-line statement of what it proves.
"""

from checker.audit.options import OWASP_MINIMUM, Argon2Minimum, AuditOptions
from checker.audit.registry import CHECKS, FAMILIES
from checker.audit.result import AuditResult, CheckResult, Finding
from checker.audit.runner import run_audit

__all__ = ["CHECKS", "FAMILIES", "OWASP_MINIMUM", "Argon2Minimum", "AuditOptions",
           "AuditResult", "CheckResult", "Finding", "run_audit"]
