"""Runtime access to one database: its two login roles, their URLs and its tenant key.

For a database `D` the checker creates `D_app` (a member of `taskhub_app`) and `D_worker` (a
member of `taskhub_worker`): LOGIN, neither superuser nor CREATEDB, CREATEROLE, REPLICATION
or BYPASSRLS, members of that one group only (on PostgreSQL 16+ with INHERIT and without SET
or ADMIN), CONNECT on `D` and on nothing else of ours (CONNECT and TEMPORARY on `D` are
revoked from PUBLIC). Roles are cluster-wide, so they are named after their database: two
runs on one server never share one, and a role whose database is gone is garbage, which is
how `sweep` finds what a killed run left. Passwords are random, sent to the server only as
SCRAM-SHA-256 verifiers (the server's log never sees them) and never printed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import URL

from taskhub.db import Database, libpq_url, sqlalchemy_url
from taskhub.settings import APP_ROLE, WORKER_ROLE

SUFFIXES = {"app": APP_ROLE, "worker": WORKER_ROLE}
"""Login role suffix -> the group role it is a member of."""
SCRAM_ITERATIONS = 4096
TENANT_KEY_BYTES = 32


@dataclass(frozen=True)
class RuntimeAccess:
    """What the services of one database need: both login URLs and the tenant key."""

    app_url: URL = field(repr=False)
    worker_url: URL = field(repr=False)
    tenant_key: bytes = field(repr=False)

    def connect(self, **engine_kwargs: Any) -> Database:
        """The services' `Database` (both pools) for this access."""
        return Database.connect(self.app_url, self.worker_url, self.tenant_key,
                                **engine_kwargs)

    def to_dict(self) -> dict[str, str]:
        """Plain strings (passwords and key included) for a process that must connect."""
        return {"app_url": libpq_url(self.app_url), "worker_url": libpq_url(self.worker_url),
                "tenant_key": self.tenant_key.hex()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> RuntimeAccess:
        """The inverse of `to_dict`."""
        return cls(sqlalchemy_url(data["app_url"]), sqlalchemy_url(data["worker_url"]),
                   bytes.fromhex(data["tenant_key"]))


IMPERSONATE = ("SELECT public.taskhub_enter_tenant(%(tenant)s, "
               "taskhub_private.tenant_tag(%(tenant)s))")
"""As the owner: enter tenant `%(tenant)s` as the data layer does (the owner computes the tag)."""


def role_name(database: str, suffix: str) -> str:
    """The login role of `database` for `suffix` (`app` or `worker`)."""
    return f"{database}_{suffix}"


def scram_verifier(password: str, *, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, 7677)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def create_roles(admin: psycopg.Connection[Any], server_url: URL,
                 database: str) -> tuple[URL, URL]:
    """Create (or re-key) both login roles of `database`; their URLs, passwords included."""
    modern = admin.info.server_version >= 160000
    urls = []
    for suffix, group in SUFFIXES.items():
        name, password = role_name(database, suffix), secrets.token_urlsafe(24)
        role = sql.Identifier(name)
        verifier = sql.Literal(scram_verifier(password))
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
        admin.execute(sql.SQL(
            "{} {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
            "INHERIT PASSWORD {}").format(verb, role, verifier))
        options = sql.SQL(" WITH INHERIT TRUE, SET FALSE, ADMIN FALSE" if modern else "")
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), role) + options)
        urls.append(server_url.set(database=database, username=name, password=password))
    confine_database(admin, database)
    return urls[0], urls[1]


def confine_database(admin: psycopg.Connection[Any], database: str) -> None:
    """CONNECT on `database` for its own login roles only; TEMPORARY for nobody but the owner.

    A clone (`CREATE DATABASE ... TEMPLATE`) does not inherit its template's database
    privileges, so this runs for every database the checker creates.
    """
    db = sql.Identifier(database)
    admin.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db))
    for suffix in SUFFIXES:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                         (role_name(database, suffix),)).fetchone():
            admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                db, sql.Identifier(role_name(database, suffix))))


def drop_roles(admin: psycopg.Connection[Any], database: str) -> None:
    """Drop both login roles of `database`, whether the database is gone or still there (its
    CONNECT grants go first: DROP OWNED revokes privileges on shared objects such as
    databases; the roles own nothing). `admin` is in autocommit. A role that goes meanwhile
    is not an error: once the database is dropped, another process's sweep of orphaned roles
    (`orphaned_roles`) may drop them first."""
    for suffix in SUFFIXES:
        name = role_name(database, suffix)
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            with contextlib.suppress(psycopg.errors.UndefinedObject):
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def orphaned_roles(admin: psycopg.Connection[Any], prefix: str) -> list[str]:
    """Login roles named `<prefix>...(_app|_worker)` whose database no longer exists."""
    rows = admin.execute(
        "SELECT r.rolname FROM pg_roles r WHERE r.rolname LIKE %s AND r.rolcanlogin "
        "AND r.rolname ~ '_(app|worker)$' AND NOT EXISTS ("
        "  SELECT FROM pg_database d WHERE r.rolname IN (d.datname || '_app', "
        "                                                d.datname || '_worker'))",
        (prefix.replace("_", "\\_") + "%",)).fetchall()
    return [str(name) for (name,) in rows]


def install_tenant_key(owner_url: URL) -> bytes:
    """A fresh random tenant key, installed in the database (as its owner) and returned."""
    key = secrets.token_bytes(TENANT_KEY_BYTES)
    with psycopg.connect(libpq_url(owner_url), connect_timeout=10) as conn:
        conn.execute("SELECT taskhub_private.install_tenant_key(%s)", (key,))
    return key
