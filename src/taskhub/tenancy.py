"""The tenant proof: what the application sends to enter a tenant, and nothing SQL can forge.

`taskhub_enter_tenant(user_id, tag)` (revision 0009) accepts a tenant only with
`tag = HMAC-SHA256(tenant key, "tenant:<user_id>:<backend pid>")`. The key is given to the
application (never to its database roles: it lives in a schema they cannot use), so SQL on an
application connection cannot make a tag for another user, and a tag seen on one backend is
worthless on any other. `taskhub_login_lookup(email, tag)` is guarded the same way, so SQL
on an application connection cannot look a user up by email either.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid


def tenant_tag(key: bytes, user_id: uuid.UUID, backend_pid: int) -> bytes:
    """The tag that lets backend `backend_pid` act for `user_id`."""
    return _mac(key, f"tenant:{user_id}:{backend_pid}")


def login_tag(key: bytes, email: str, backend_pid: int) -> bytes:
    """The tag that lets backend `backend_pid` look up the user with `email` for a sign-in."""
    return _mac(key, f"login:{email}:{backend_pid}")


def _mac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()
