"""The guard of every load command: psycopg must wait cooperatively under gevent.

psycopg 3 chooses its wait function when it is imported; imported before gevent's
monkey-patching it keeps the blocking C one (`wait_c`) and the simulated users silently take
turns (20 users: ~5 instead of ~97 requests/s here). `checker.entry` patches first for `run`
and `explore`; anything else that reaches the runner is refused.
"""

from __future__ import annotations

import sys

from checker.errors import UsageError


def require_cooperative() -> None:
    """UsageError unless gevent has patched `select` and psycopg's `wait` is not `wait_c`."""
    monkey = sys.modules.get("gevent.monkey")
    patched = monkey is not None and monkey.is_module_patched("select")
    import psycopg.waiting

    if not patched or psycopg.waiting.wait is getattr(psycopg.waiting, "wait_c", None):
        raise UsageError("psycopg was imported before gevent's monkey-patching, so simulated "
                         "users would block each other: start load through the `checker` "
                         "command (checker.entry:main), not checker.cli:main")
