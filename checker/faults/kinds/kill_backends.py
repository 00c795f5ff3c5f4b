"""`kill-backends:every=D`: terminate every client backend of the run's database."""

from __future__ import annotations

from checker.faults.kind import Fault, FaultTarget, PeriodicFault

CONNECT_TIMEOUT_S = 2
_TERMINATE = """SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend'"""


class KillBackends(PeriodicFault):
    """`pg_terminate_backend` on every client connection (the clients see them drop)."""

    name = "kill-backends"
    summary = ("`pg_terminate_backend` of the run database's client backends (not the "
               "injector's own)")
    example = "kill-backends:every=5s"

    def inject(self, fault: Fault, target: FaultTarget) -> str:
        """Terminate them; how many."""
        with target.connect(CONNECT_TIMEOUT_S) as conn:
            row = conn.execute(_TERMINATE).fetchone()
        return f"terminated {row[0] if row else 0} backends"


FAULT_KIND = KillBackends()
