-- Daily GPU-second quotas (per person per server). Portable SQL: it must also run on Postgres.
-- One row per finished piece of work charged to a person: the id names it ("generation:<id>"),
-- so recording the same result twice (a redelivery, two front ends) charges it once.
CREATE TABLE quota_charges (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    server      TEXT NOT NULL,          -- the guild; '' outside any server (CLI, a key minted outside one)
    seconds     REAL NOT NULL,          -- real worker time: model load + the pipeline
    charged_at  REAL NOT NULL           -- unix seconds
);
CREATE INDEX quota_charges_by_person ON quota_charges(user_id, server, charged_at);

-- A server's own daily limits by role. The @everyone role (its id is the guild's) replaces the
-- studio's default for the whole server; other roles can only raise it. 0 seconds: unlimited.
CREATE TABLE quota_role_limits (
    server      TEXT NOT NULL,
    role_id     TEXT NOT NULL,
    seconds     REAL NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      REAL NOT NULL,
    PRIMARY KEY (server, role_id)
);
