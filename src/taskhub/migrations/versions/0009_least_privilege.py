"""Least privilege: a tenant identity SQL cannot forge, row-level security on every table,
a grants matrix, and nothing a runtime role may create.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Before: `taskhub_app` trusted the plain setting `app.user_id`, which any SQL on the connection
can set, and `users`, `auth_sessions` and `password_history` had no row-level security.

After:
- The tenant of a transaction is whatever `taskhub_enter_tenant(user_id, tag)` accepted: `tag`
  must be HMAC-SHA256(tenant key, 'tenant:<user_id>:<backend pid>'), which the application
  computes with the key it was given and which SQL on its connections cannot (the key lives in
  `taskhub_private.tenant_key`, a schema no runtime role may use). The function records the
  tenant together with a second HMAC bound to this backend and this transaction's start, and
  `taskhub_tenant()` returns the tenant only while that proof verifies: a forged or copied
  `taskhub.tenant` setting, or a proof carried into another transaction, yields NULL, which
  no policy matches.
- Every table (`users`, `password_history`, `auth_sessions`, `tasks`, `task_events`) has
  row-level security ENABLEd and FORCEd; `taskhub_app` sees the rows of `taskhub_tenant()`
  only. `taskhub_worker` reads and moves tasks and writes events, nothing else. The owner
  (who migrates, seeds and audits) keeps a policy that shows it everything, which the
  SECURITY DEFINER functions rely on when the owner is not a superuser.
- Signing in by email, before a tenant is known, goes through
  `taskhub_login_lookup(email, tag)`: the id and hash of the one user with that email, and
  only with `tag = HMAC(key, 'login:<email>:<backend pid>')`, so SQL on an application
  connection can neither list users nor look one up.
- Creating large objects (storage outside row-level security) is revoked from PUBLIC when
  the migrating role is a superuser (it cannot be otherwise).
- Grants are the matrix in `GRANTS` below (also in the README); nothing is granted to
  PUBLIC: EXECUTE on every taskhub function and CONNECT and TEMPORARY on this database are
  revoked from it, and so is CREATE on schema public.

The login roles that connect (one for tenant work, one for workers) are the operator's; they
should be members of `taskhub_app` / `taskhub_worker` and nothing else. The checker creates
them per database (`checker.access`). The upgrade installs a random tenant key nobody knows;
the operator installs the one given to the application with
`SELECT taskhub_private.install_tenant_key(<32+ random bytes>)`.

Data: none changes.

Downgrade restores 0008's policies and grants (the tenant is `app.user_id` again), drops the
functions, the private schema and its key, and gives CONNECT and TEMPORARY on the database (and
large objects) back to PUBLIC; CREATE on schema public stays revoked (PostgreSQL 15's default).
No row is lost.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP, WORKER = "taskhub_app", "taskhub_worker"
TABLES = ("users", "password_history", "auth_sessions", "tasks", "task_events")
TENANT = "(SELECT public.taskhub_tenant())"
OWNER_COLUMN = {"users": "id"}  # every other table says whose it is in user_id

# role -> table -> privileges; a parenthesised column list limits UPDATE to those columns.
GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    APP: {
        "users": ("SELECT", "INSERT", "DELETE",
                  "UPDATE (email, password_hash, must_change_password, "
                  "temp_password_expires_at, password_changed_at, updated_at)"),
        "password_history": ("SELECT", "INSERT", "DELETE", "UPDATE (password_hash)"),
        "auth_sessions": ("SELECT", "INSERT", "UPDATE (revoked_at)"),
        "tasks": ("SELECT", "INSERT", "DELETE",
                  "UPDATE (title, payload, status, result, error, version, updated_at)"),
        "task_events": ("SELECT", "INSERT"),
    },
    WORKER: {
        "tasks": ("SELECT", "UPDATE (status, result, error, version, updated_at)"),
        "task_events": ("SELECT", "INSERT"),
    },
}
FUNCTIONS = {
    "public.taskhub_enter_tenant(uuid, bytea)": (APP,),
    "public.taskhub_tenant()": (APP,),
    "public.taskhub_login_lookup(text, bytea)": (APP,),
    "public.taskhub_end_unit()": (APP, WORKER),
}

_PRIVATE = """
CREATE SCHEMA taskhub_private;
REVOKE ALL ON SCHEMA taskhub_private FROM PUBLIC;

-- The HMAC key as its two padded halves (RFC 2104), so the hot path is two sha256 calls.
CREATE TABLE taskhub_private.tenant_key (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    inner_pad bytea NOT NULL CHECK (length(inner_pad) = 64),
    outer_pad bytea NOT NULL CHECK (length(outer_pad) = 64),
    installed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION taskhub_private.install_tenant_key(key bytea) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea;
    ipad bytea;
    opad bytea;
BEGIN
    IF key IS NULL OR length(key) < 32 THEN
        RAISE EXCEPTION 'a tenant key must be at least 32 bytes';
    END IF;
    k := CASE WHEN length(key) > 64 THEN sha256(key) ELSE key END;
    k := k || decode(repeat('00', 64 - length(k)), 'hex');
    ipad := k;
    opad := k;
    FOR i IN 0..63 LOOP
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);
        opad := set_byte(opad, i, get_byte(k, i) # 92);
    END LOOP;
    INSERT INTO taskhub_private.tenant_key (singleton, inner_pad, outer_pad)
    VALUES (true, ipad, opad)
    ON CONFLICT (singleton) DO UPDATE
        SET inner_pad = EXCLUDED.inner_pad, outer_pad = EXCLUDED.outer_pad, installed_at = now();
END $$;

-- The private helpers have no SET clause (a SET clause costs a settings save and restore on
-- every call, and these run in every policy check): only the owner may call them, from the
-- SECURITY DEFINER functions below whose search_path is pinned, and they name everything by
-- schema.
CREATE FUNCTION taskhub_private.hmac(message text) RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k record;
BEGIN
    -- PL/pgSQL keeps this query's plan for the session (a SQL function would plan it anew on
    -- every call, and this runs in every policy check).
    SELECT inner_pad, outer_pad INTO k FROM taskhub_private.tenant_key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN pg_catalog.sha256(k.outer_pad || pg_catalog.sha256(
        k.inner_pad || pg_catalog.convert_to(message, 'UTF8')));
END $$;

-- What a tenant's proof covers: the tenant, this backend, this transaction (its start, in
-- microseconds since the epoch, so no TimeZone or DateStyle setting changes the text).
CREATE FUNCTION taskhub_private.proof(tenant text) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT taskhub_private.hmac(pg_catalog.format('proof:%s:%s:%s', tenant,
        pg_catalog.pg_backend_pid(),
        (EXTRACT(epoch FROM pg_catalog.transaction_timestamp()) * 1000000)::bigint))
$$;

-- The tag the application sends to enter a tenant on this backend; for the owner's own
-- tools (the audit and tests impersonate tenants with it).
CREATE FUNCTION taskhub_private.tenant_tag(tenant uuid) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT taskhub_private.hmac(pg_catalog.format('tenant:%s:%s', tenant,
                                                  pg_catalog.pg_backend_pid()))
$$;

CREATE FUNCTION public.taskhub_enter_tenant(tenant uuid, tag bytea) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bytea := taskhub_private.tenant_tag(tenant);
BEGIN
    IF expected IS NULL AND tenant IS NOT NULL THEN
        RAISE EXCEPTION 'no tenant key is installed in this database'
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    -- Compare digests of both, so the comparison's timing says nothing about the tag.
    IF tenant IS NULL OR tag IS NULL OR sha256(tag) <> sha256(expected) THEN
        RAISE EXCEPTION 'tenant proof refused'
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    PERFORM set_config('taskhub.tenant', tenant::text, true),
            set_config('taskhub.tenant_proof',
                       encode(taskhub_private.proof(tenant::text), 'base64'), true);
    RETURN tenant;
END $$;

CREATE FUNCTION public.taskhub_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tenant text := nullif(current_setting('taskhub.tenant', true), '');
    proof text := current_setting('taskhub.tenant_proof', true);
BEGIN
    -- IS DISTINCT FROM: without a key the expected proof is NULL, and so must the tenant be.
    IF tenant IS NULL OR proof IS NULL
       OR proof IS DISTINCT FROM encode(taskhub_private.proof(tenant), 'base64') THEN
        RETURN NULL;
    END IF;
    RETURN tenant::uuid;  -- only taskhub_enter_tenant's own text carries a valid proof
END $$;

-- What ends every unit of work on a runtime connection (with its COMMIT, or after its
-- ROLLBACK), in one call: a statement prepared from SQL is hostile by definition (the driver
-- prepares through the protocol; a PREPARE under the driver's next name would run in the next
-- unit of work, as its tenant), so it fails the unit; then the session is reset as DISCARD ALL
-- would (which may not run in a transaction), but for the driver's own prepared statements.
-- SECURITY INVOKER and no SET clause: RESET ALL must reach the session's own settings.
CREATE FUNCTION public.taskhub_end_unit() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE from_sql) THEN
        RAISE EXCEPTION 'a unit of work left a statement prepared from SQL'
            USING ERRCODE = 'invalid_prepared_statement_definition';
    END IF;
    PERFORM pg_catalog.pg_advisory_unlock_all();
    RESET ALL;
    EXECUTE 'SET ROLE NONE';
    EXECUTE 'CLOSE ALL';
    EXECUTE 'UNLISTEN *';
    EXECUTE 'DISCARD SEQUENCES';  -- (no runtime role may create temporary objects)
END $$;

-- The one user with this (normalised) email, for a sign-in: its tag proves the caller holds
-- the key, so SQL on an application connection cannot look anyone up by email.
CREATE FUNCTION public.taskhub_login_lookup(email text, tag bytea)
RETURNS TABLE (id uuid, password_hash text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    expected bytea := taskhub_private.hmac(format('login:%s:%s', email, pg_backend_pid()));
BEGIN
    IF email IS NULL OR tag IS NULL OR expected IS NULL OR sha256(tag) <> sha256(expected) THEN
        RAISE EXCEPTION 'login lookup refused'
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    RETURN QUERY SELECT u.id, u.password_hash FROM public.users u
                 WHERE lower(u.email) = taskhub_login_lookup.email;
END $$;
"""

# Large objects live outside every table's row-level security and any role may create them;
# revoking that needs a superuser (pg_catalog's functions are the bootstrap superuser's).
LARGE_OBJECT_FUNCTIONS = ("pg_catalog.lo_create(oid)", "pg_catalog.lo_creat(integer)",
                          "pg_catalog.lo_from_bytea(oid, bytea)")


def _if_superuser(statement: str) -> str:
    return ("DO $$ BEGIN IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
            f"THEN {statement}; END IF; END $$")


def _on_database(statement: str) -> str:
    """`statement` with `{db}` replaced by this database's name (a DO block, so the offline
    SQL of `checker db upgrade --sql` carries it too)."""
    return (f"DO $$ BEGIN EXECUTE format('{statement}', current_database()); END $$")


def _owner_of(column: str) -> str:
    return f"{column} = {TENANT}"


def upgrade() -> None:
    op.execute("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
    op.execute(_PRIVATE)
    op.execute("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA taskhub_private FROM PUBLIC")
    # A random key from the start (three v4 UUIDs: 366 random bits from pg_strong_random), so
    # the owner's tools can always impersonate a tenant; the application's operator installs
    # the key it gives its processes (`checker.access` does, per database).
    op.execute("SELECT taskhub_private.install_tenant_key(uuid_send(gen_random_uuid()) "
               "|| uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))")
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(_on_database("REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC"))
    for function, roles in FUNCTIONS.items():
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {', '.join(roles)}")
    op.execute(_if_superuser(
        f"REVOKE EXECUTE ON FUNCTION {', '.join(LARGE_OBJECT_FUNCTIONS)} FROM PUBLIC"))
    op.execute(f"REVOKE ALL ON {', '.join(TABLES)} FROM PUBLIC, {APP}, {WORKER}")
    for role, tables in GRANTS.items():
        for table, privileges in tables.items():
            op.execute(f"GRANT {', '.join(privileges)} ON {table} TO {role}")
    op.execute("DROP POLICY tasks_tenant ON tasks")
    op.execute("DROP POLICY task_events_tenant ON task_events")
    for table in TABLES:
        column = OWNER_COLUMN.get(table, "user_id")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_tenant ON {table} FOR ALL TO {APP} "
                   f"USING ({_owner_of(column)}) WITH CHECK ({_owner_of(column)})")
        op.execute(f"CREATE POLICY {table}_owner ON {table} FOR ALL TO CURRENT_USER "
                   "USING (true) WITH CHECK (true)")


def downgrade() -> None:
    legacy = "user_id = NULLIF(current_setting('app.user_id', true), '')::uuid"
    for table in TABLES:
        op.execute(f"DROP POLICY {table}_owner ON {table}")
        op.execute(f"DROP POLICY {table}_tenant ON {table}")
    for table in ("users", "password_history", "auth_sessions"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in ("tasks", "task_events"):
        op.execute(f"CREATE POLICY {table}_tenant ON {table} FOR ALL TO {APP} "
                   f"USING ({legacy}) WITH CHECK ({legacy})")
    op.execute(f"REVOKE ALL ON {', '.join(TABLES)} FROM {APP}, {WORKER}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {APP}")
    op.execute(f"GRANT SELECT, UPDATE (status, result, error, version, updated_at) "
               f"ON tasks TO {WORKER}")
    op.execute(f"GRANT SELECT, INSERT ON task_events TO {WORKER}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute("ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC")
    op.execute(_if_superuser(
        f"GRANT EXECUTE ON FUNCTION {', '.join(LARGE_OBJECT_FUNCTIONS)} TO PUBLIC"))
    op.execute(_on_database("GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC"))
    op.execute("DROP SCHEMA taskhub_private CASCADE")
