"""`statement-timeout:D`: a statement timeout on the run's database for the whole load."""

from __future__ import annotations

from psycopg import sql

from checker.faults.kind import Fault, FaultTarget, StandingFault

CONNECT_TIMEOUT_S = 10


class StatementTimeout(StandingFault):
    """`ALTER DATABASE ... SET statement_timeout` before the users connect; reset when the
    load stops, so the audit runs without it."""

    name = "statement-timeout"
    summary = ("`ALTER DATABASE ... SET statement_timeout` before the users connect, reset "
               "before the audit")
    example = "statement-timeout:200ms"

    def start(self, fault: Fault, target: FaultTarget) -> None:
        """Set it."""
        self._alter(target, f"{fault.value * 1000:g}ms")

    def stop(self, fault: Fault, target: FaultTarget) -> None:
        """Reset it."""
        self._alter(target, None)

    @staticmethod
    def _alter(target: FaultTarget, value: str | None) -> None:
        with target.connect(CONNECT_TIMEOUT_S) as conn:
            name = sql.Identifier(conn.info.dbname)
            if value is None:
                conn.execute(sql.SQL("ALTER DATABASE {} RESET statement_timeout").format(name))
            else:
                conn.execute(sql.SQL("ALTER DATABASE {} SET statement_timeout = {}")
                             .format(name, sql.Literal(value)))


FAULT_KIND = StatementTimeout()
