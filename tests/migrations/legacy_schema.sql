-- The schema the first release of taskhub created by hand, before Alembic: PostgreSQL picks
-- every constraint and index name. `checker db adopt` must recognise it as revision 0001.
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id),
    title text NOT NULL,
    payload json NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'new',
    result text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON tasks (user_id);
