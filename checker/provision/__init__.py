"""Ephemeral PostgreSQL: choose a provider from flags and environment, start it, clean up."""

from __future__ import annotations

import logging
import os

from checker.errors import UsageError
from checker.provision.base import Provider, Server
from checker.provision.container import (
    ContainerProvider,
    container_usable,
    docker_answers,
    image_name,
)
from checker.provision.dsn import DsnProvider
from checker.provision.embedded import EmbeddedProvider

KINDS = ("auto", "container", "embedded", "dsn")

__all__ = ["KINDS", "Provider", "Server", "select_provider"]

log = logging.getLogger(__name__)


def select_provider(kind: str | None = None, dsn: str | None = None, *,
                    keep: bool = False, options: dict[str, str] | None = None) -> Provider:
    """The provider for `--db KIND` / CHECKER_DB and `--dsn` / CHECKER_DSN.

    `auto` means: the DSN when one is given, else a container when a Docker engine answers
    and the image is present or can be pulled, else the embedded server. `options`: server
    settings for a server the checker starts (not for a DSN's).
    """
    if kind is None and dsn is not None:
        kind = "dsn"  # an explicit --dsn wins over CHECKER_DB from the environment
    kind = (kind or os.environ.get("CHECKER_DB") or "auto").strip().lower()
    dsn = dsn if dsn is not None else os.environ.get("CHECKER_DSN")
    if kind not in KINDS:
        raise UsageError(f"unknown database provider {kind!r}: choose one of {', '.join(KINDS)}")
    if dsn and kind in ("container", "embedded"):
        raise UsageError(f"--dsn names an existing server; it cannot go with --db {kind}")
    if kind == "auto":
        kind = "dsn" if dsn else ("container" if container_usable() else "embedded")
        if kind == "embedded" and docker_answers():
            log.warning("auto: Docker answers but image %s cannot be had; using the embedded "
                        "server (set CHECKER_PG_IMAGE to use a container)", image_name())
    if kind == "dsn":
        if not dsn:
            raise UsageError("--db dsn needs --dsn URL (or CHECKER_DSN)")
        return DsnProvider(dsn, keep=keep)
    if kind == "container":
        return ContainerProvider(keep=keep, options=options)
    return EmbeddedProvider(keep=keep, options=options)
