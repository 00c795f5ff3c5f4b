"""Ephemeral PostgreSQL: choose a provider from flags and environment, start it, clean up.

Providers are registered, not listed: each module of this package that exports
`PROVIDER = SomeProvider` (a `checker.provision.base.Provider`) is one `--db` choice.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from checker.errors import UsageError
from checker.provision.base import Capability, Provider, Server

__all__ = ["KINDS", "PROVIDERS", "Capability", "Provider", "Server", "select_provider"]


def _registered() -> dict[str, type[Provider]]:
    """Every module's `PROVIDER`, in `--db auto` order (those auto never takes last)."""
    found: list[type[Provider]] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if (provider := getattr(module, "PROVIDER", None)) is not None:
            found.append(provider)
    found.sort(key=lambda p: (p.auto_rank is None, p.auto_rank or 0, p.name))
    return {p.name: p for p in found}


PROVIDERS = _registered()
AUTO = "auto"
KINDS = (AUTO, *PROVIDERS)
"""Every `--db` choice."""


def select_provider(kind: str | None = None, dsn: str | None = None, *,
                    keep: bool = False, options: dict[str, str] | None = None,
                    extensions: tuple[str, ...] = ()) -> Provider:
    """The provider for `--db KIND` / CHECKER_DB and `--dsn` / CHECKER_DSN.

    `auto` means: the first registered provider (by `auto_rank`) usable here: the DSN when
    one is given, else a container when a Docker engine answers and the image is present or
    can be pulled, else the embedded server. `options`: server settings for a server the
    checker starts (not for a DSN's). `extensions`: what the databases will need (the
    embedded provider picks an installation that has them).
    """
    if kind is None and dsn is not None:
        # An explicit --dsn wins over CHECKER_DB from the environment.
        kind = next(name for name, p in PROVIDERS.items() if p.takes_dsn)
    kind = (kind or os.environ.get("CHECKER_DB") or AUTO).strip().lower()
    dsn = dsn if dsn is not None else os.environ.get("CHECKER_DSN")
    if kind not in KINDS:
        raise UsageError(f"unknown database provider {kind!r}: choose one of {', '.join(KINDS)}")
    if kind == AUTO:
        usable = (name for name, p in PROVIDERS.items()
                  if p.auto_rank is not None and p.usable(dsn))
        if (found := next(usable, None)) is None:
            raise UsageError("--db auto: no provider can be used here")
        kind = found
    provider = PROVIDERS[kind].create(dsn=dsn, keep=keep, options=options)
    provider.extensions = extensions
    return provider


def providers_with(needs: frozenset[Capability]) -> list[str]:
    """The names of the providers that have every capability in `needs`."""
    return [name for name, p in PROVIDERS.items() if needs <= p.capabilities]


def providers_table() -> str:
    """The README's table of `--db` choices (Markdown), from the registry."""
    auto = ", ".join(f"`{name}`" for name, p in PROVIDERS.items() if p.auto_rank is not None)
    rows = ["| `--db` | what runs | can also | cleanup when the owner is killed (SIGKILL) |",
            "|---|---|---|---|",
            f"| `{AUTO}` (default) | the first of {auto} that can be used here: the DSN when "
            "one is given, a container when a Docker engine answers and the image can be had | "
            "as below | as below |"]
    for name, provider in PROVIDERS.items():
        can = ", ".join(c.value for c in Capability
                        if c in provider.capabilities and c is not Capability.OWNS_SERVER)
        rows.append(f"| `{name}` | {provider.summary} | {can or '—'} | {provider.cleanup} |")
    return "\n".join(rows)
