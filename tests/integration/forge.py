"""Hand-made JWTs for attack tests: any header, any claims (PyJWT's encoder refuses some, such
as a non-string `iss`), signed HS256 with any secret or RS256 with a throwaway RSA key.

The RSA key is generated here in pure Python (PyJWT needs `cryptography` for RS256, which
taskhub does not install): PKCS#1 v1.5 with SHA-256, exactly what RS256 specifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from functools import cache
from typing import Any

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS uses it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_input(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """`base64url(header).base64url(claims)` (NaN and lone surrogates pass through json)."""
    return ".".join(b64url(json.dumps(part).encode()) for part in (header, claims))


def hs256(claims: dict[str, Any], secret: str | bytes,
          header: dict[str, Any] | None = None) -> str:
    """A token HMAC-SHA256-signed with `secret`."""
    key = secret.encode() if isinstance(secret, str) else secret
    head = signing_input(header or {"alg": "HS256", "typ": "JWT"}, claims)
    return f"{head}.{b64url(hmac.new(key, head.encode(), hashlib.sha256).digest())}"


@dataclass(frozen=True)
class RsaKey:
    """A textbook RSA key pair."""

    n: int
    e: int
    d: int

    @property
    def size(self) -> int:
        """The modulus length in bytes."""
        return (self.n.bit_length() + 7) // 8

    def public_pem(self) -> str:
        """The public key as an RFC 7468 `RSA PUBLIC KEY` (PKCS#1 DER) block."""
        der = _der_sequence(_der_int(self.n) + _der_int(self.e))
        body = base64.encodebytes(der).decode().replace("\n", "")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return "\n".join(["-----BEGIN RSA PUBLIC KEY-----", *lines,
                          "-----END RSA PUBLIC KEY-----", ""])

    def rs256(self, claims: dict[str, Any]) -> str:
        """A token signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256)."""
        head = signing_input({"alg": "RS256", "typ": "JWT"}, claims)
        digest = SHA256_DIGEST_INFO + hashlib.sha256(head.encode()).digest()
        padded = b"\x00\x01" + b"\xff" * (self.size - len(digest) - 3) + b"\x00" + digest
        signature = pow(int.from_bytes(padded, "big"), self.d, self.n)
        return f"{head}.{b64url(signature.to_bytes(self.size, 'big'))}"

    def verifies(self, token: str) -> bool:
        """Whether the RS256 signature is right for this key (proves the forgery is genuine)."""
        head, _, signature = token.rpartition(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        padded = pow(int.from_bytes(raw, "big"), self.e, self.n).to_bytes(self.size, "big")
        return padded.endswith(SHA256_DIGEST_INFO + hashlib.sha256(head.encode()).digest())


@cache
def rsa_key(bits: int = 1024, seed: int = 8) -> RsaKey:
    """A deterministic RSA key (small: for forging test tokens, nothing else)."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible key for tests, not a secret)
    e = 65537
    while True:
        p, q = _prime(bits // 2, rng), _prime(bits // 2, rng)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e:
            return RsaKey(p * q, e, pow(e, -1, phi))


def _prime(bits: int, rng: random.Random) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
        if _probably_prime(candidate, rng):
            return candidate


def _probably_prime(n: int, rng: random.Random, rounds: int = 24) -> bool:
    if any(n % p == 0 for p in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)):
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _der_int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + _der_length(len(raw)) + raw


def _der_sequence(body: bytes) -> bytes:
    return b"\x30" + _der_length(len(body)) + body


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw
