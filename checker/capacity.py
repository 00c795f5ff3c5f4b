"""How many connections a run needs, sizing the servers the checker starts, and refusing to
start on a server that cannot take them (instead of failing operations with "too many
clients" halfway through)."""

from __future__ import annotations

import math

import psycopg

from checker.errors import UsageError
from checker.provision.base import FAST_CLUSTER_OPTIONS

PER_PROCESS = 4
"""Connections a load process holds beside its users' (a pool's spare, the setup's)."""
CHECKER_OWN = 10
"""The checker's own: seeding, the janitor, fault control, the audit."""
RESERVED = 10
"""Slots a server the checker starts keeps beyond the need (superuser_reserved_connections,
the administrator's own connections)."""
HEADROOM = 1.25
"""A simulated user holds one connection at a time; a few (the two-tab editors) hold two."""


def connections_needed(users: int, processes: int) -> int:
    """Connections a run of `users` simulated users over `processes` load processes opens at
    most, the checker's own included."""
    return math.ceil(users * HEADROOM) + PER_PROCESS * max(processes, 1) + CHECKER_OWN


def server_options(users: int, processes: int) -> dict[str, str]:
    """Settings for a server the checker starts for this run: enough connections for it."""
    default = int(FAST_CLUSTER_OPTIONS["max_connections"])
    return {"max_connections": str(max(default, connections_needed(users, processes)
                                       + RESERVED))}


_FREE = """
SELECT current_setting('max_connections')::int
       - current_setting('superuser_reserved_connections')::int
       - coalesce(current_setting('reserved_connections', true)::int, 0)
       - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
"""


def require_room(conninfo: str, users: int, processes: int) -> int:
    """The connections the server has free; UsageError (before anything starts) when fewer
    than the run needs."""
    need = connections_needed(users, processes)
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        row = conn.execute(_FREE).fetchone()
    free = int(row[0]) if row else 0
    if free < need:
        raise UsageError(f"the server has {free} connections free and --users {users} needs "
                         f"about {need}: raise its max_connections or run fewer users")
    return free
