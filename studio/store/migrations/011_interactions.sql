-- Commands acknowledged in Discord, recorded before the acknowledgement, so a bot that stops
-- between "thinking…" and its answer finishes the command when it is back (the interaction
-- token lives 15 minutes). One row per interaction; done_at set once the answer went out.
CREATE TABLE interactions (
    id              TEXT PRIMARY KEY,          -- the interaction's snowflake
    application_id  TEXT NOT NULL,
    token           TEXT NOT NULL,             -- the interaction webhook's token (dies after 15 min)
    command         TEXT NOT NULL,             -- e.g. "imagine"
    options_json    TEXT NOT NULL,             -- the command's options, as Discord sent them
    user_id         TEXT NOT NULL,             -- the Discord user's snowflake
    requester_json  TEXT NOT NULL,             -- who asked, with the permissions they had then
    guild_id        TEXT,
    channel_id      TEXT NOT NULL,
    upload_limit    INTEGER,                   -- the interaction's attachment_size_limit
    generation_id   TEXT NOT NULL,             -- chosen up front: a resumed command never submits twice
    thread_id       TEXT,                      -- the project thread, once opened for it
    created_at      REAL NOT NULL,
    done_at         REAL,
    outcome         TEXT                       -- answered, failed, expired
);
CREATE INDEX interactions_pending ON interactions(done_at, created_at);

-- The effective upload limit Discord tells per server (boosts included), remembered across
-- restarts so resumed deliveries fit their files before the first try.
CREATE TABLE upload_limits (
    server      TEXT PRIMARY KEY,
    bytes       INTEGER NOT NULL,
    updated_at  REAL NOT NULL
);
