"""The run key of a distributed run: who may have the run's setup, and the seal it travels in.

Locust's master/worker protocol (ZeroMQ) authenticates and encrypts nothing: whatever the
master sends "to a worker", any peer on its port receives, and whatever a peer sends, the
master believes. So a worker gets the setup (the runtime roles' URLs, the tenant key, the JWT
secret, the tenants' passwords) only after proving it holds the run's key, and the setup
travels sealed under it; so does every history batch a worker ships back, which the master
accepts from proven workers only.

- Key: 32 random bytes per run (`new_key`), or the operator's own, given as hex in
  CHECKER_RUN_KEY or in a file named by CHECKER_RUN_KEY_FILE (`key_from_env`).
- Proof: the worker says hello with a nonce, the master answers with its own, the worker
  returns HMAC-SHA256(proof key, node id | master nonce | worker nonce), compared in constant
  time. A proof is good for that node and that challenge only.
- Seal: ChaCha20-Poly1305 (`cryptography`) under a key derived from the run key, a random
  96-bit nonce per message, the node id as associated data, so a sealed setup opens only for
  the node it was sealed for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

KEY_ENV = "CHECKER_RUN_KEY"
KEY_FILE_ENV = "CHECKER_RUN_KEY_FILE"
KEY_BYTES = 32
NONCE_BYTES = 16
MAX_SEALED_CHARS = 64 * 1024 * 1024
"""A sealed message longer than this is refused before decoding (history batches are far
smaller)."""


class RunKeyError(ValueError):
    """A run key that cannot be used: missing, malformed, or too short."""


def new_key() -> bytes:
    """A fresh random run key."""
    return secrets.token_bytes(KEY_BYTES)


def parse_key(text: str) -> bytes:
    """A run key from its hex form; RunKeyError naming what is wrong (never the key)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise RunKeyError("the run key must be hexadecimal") from None
    if len(key) < KEY_BYTES:
        raise RunKeyError(f"the run key must be at least {KEY_BYTES} bytes "
                          f"({2 * KEY_BYTES} hex digits)")
    return key


def key_from_env(environ: dict[str, str] | None = None) -> bytes | None:
    """The key given by CHECKER_RUN_KEY or CHECKER_RUN_KEY_FILE, or None when neither is set."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return parse_key(env[KEY_ENV])
    if env.get(KEY_FILE_ENV):
        path = Path(env[KEY_FILE_ENV])
        try:
            return parse_key(path.read_text()[:1024])
        except OSError as exc:
            raise RunKeyError(f"cannot read {KEY_FILE_ENV} {path}: {exc.strerror}") from None
    return None


def write_key_file(path: Path, key: bytes) -> None:
    """Store `key` (hex) in a new file only its owner may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.hex() + "\n")


def nonce() -> str:
    """A fresh challenge nonce (hex)."""
    return secrets.token_hex(NONCE_BYTES)


def _derived(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"taskhub-checker " + purpose, hashlib.sha256).digest()


def proof(key: bytes, node_id: str, master_nonce: str, worker_nonce: str) -> str:
    """What a worker answers to the master's challenge."""
    message = "|".join((node_id, master_nonce, worker_nonce)).encode()
    return hmac.new(_derived(key, b"proof"), message, hashlib.sha256).hexdigest()


def proof_holds(key: bytes, node_id: str, master_nonce: str, worker_nonce: str,
                given: object) -> bool:
    """Whether `given` is the right proof (constant-time comparison)."""
    expected = proof(key, node_id, master_nonce, worker_nonce)
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def seal(key: bytes, payload: Any, node_id: str) -> str:
    """`payload` (JSON-ready) encrypted and authenticated for `node_id`."""
    box = ChaCha20Poly1305(_derived(key, b"seal"))
    iv = secrets.token_bytes(12)
    sealed = box.encrypt(iv, json.dumps(payload).encode(), node_id.encode())
    return base64.b64encode(iv + sealed).decode()


def unseal(key: bytes, sealed: object, node_id: str) -> Any:
    """The payload of a message sealed for `node_id`; RunKeyError if it was not, or was
    changed on the way."""
    if not isinstance(sealed, str) or len(sealed) > MAX_SEALED_CHARS:
        raise RunKeyError("not a sealed message")
    try:
        raw = base64.b64decode(sealed, validate=True)
        box = ChaCha20Poly1305(_derived(key, b"seal"))
        return json.loads(box.decrypt(raw[:12], raw[12:], node_id.encode()))
    except (ValueError, InvalidTag):
        raise RunKeyError("a sealed message did not open with the run key") from None
