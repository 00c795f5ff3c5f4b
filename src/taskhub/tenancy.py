"""The tenant proof: what the application sends to enter a tenant, and nothing SQL can forge.

`taskhub_enter_tenant(user_id, tag)` (revision 0009) accepts a tenant only with
`tag = HMAC-SHA256(tenant key, "tenant:<user_id>:<backend pid>")`. The key is given to the
application (never to its database roles: it lives in a schema they cannot use), so SQL on an
application connection cannot make a tag for another user, and a tag seen on one backend is
worthless on any other.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid


def tenant_tag(key: bytes, user_id: uuid.UUID, backend_pid: int) -> bytes:
    """The tag that lets backend `backend_pid` act for `user_id`."""
    message = f"tenant:{user_id}:{backend_pid}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()
