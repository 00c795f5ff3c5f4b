"""Argon2id cost profiles a load run may use, and the taskhub settings built from one.

`owasp` (the default of `checker run`) is OWASP's minimum, m = 19 MiB, t = 2, p = 1;
`rfc9106` is taskhub's own default (argon2-cffi's RFC 9106 low-memory profile, 64 MiB, t = 3,
p = 4, ~230 ms of CPU per hash here); `test` is taskhub's cheap test profile. The audit holds
current hashes to the run's profile, and seeded "legacy" hashes use one more iteration than the
profile, so logging in with one re-hashes (to the profile) without ever going below it.
"""

from __future__ import annotations

from dataclasses import replace

from checker.audit import Argon2Minimum
from checker.errors import UsageError
from taskhub.settings import TEST_ARGON2, Argon2Params, Settings

PROFILES: dict[str, Argon2Params] = {
    "owasp": Argon2Params(time_cost=2, memory_cost=19456, parallelism=1),
    "rfc9106": Argon2Params(),
    "test": TEST_ARGON2,
}
DEFAULT_PROFILE = "owasp"


def argon2_params(profile: str) -> Argon2Params:
    """The parameters of a profile; UsageError naming the choices."""
    try:
        return PROFILES[profile]
    except KeyError:
        raise UsageError(f"unknown Argon2 profile {profile!r}: choose one of "
                         f"{', '.join(PROFILES)}") from None


def profiles_help() -> str:
    """`--argon2`'s help, from the profiles."""
    choices = ", ".join(f"{name} (m={params.memory_cost // 1024}MiB, t={params.time_cost}, "
                        f"p={params.parallelism})" for name, params in PROFILES.items())
    return f"Argon2id cost of the load: {choices}."


def legacy_params(profile: str) -> Argon2Params:
    """Parameters of seeded hashes that must be re-hashed at login (never weaker)."""
    params = argon2_params(profile)
    return replace(params, time_cost=params.time_cost + 1)


def audit_minimum(profile: str) -> Argon2Minimum:
    """The weakest cost the audit accepts after a run with this profile."""
    return Argon2Minimum.of(argon2_params(profile))


def load_settings(profile: str, jwt_secret: str) -> Settings:
    """taskhub settings for a load run: the profile's Argon2id, a run-wide JWT secret."""
    return Settings(argon2=argon2_params(profile), jwt_secret=jwt_secret)
