-- The web studio (web/): sign-in sessions, the servers the bot is in, generations it started.

-- A signed-in browser. Only the sha256 of the cookie's random token is stored, so a copy of the
-- database opens no session; the CSRF token is per session (double-submitted in forms and headers).
CREATE TABLE web_sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,          -- "discord:<id>", as the bot names people
    user_name    TEXT NOT NULL,
    guilds_json  TEXT NOT NULL,          -- [{"id", "name", "permissions"}] at sign-in, all of them
    csrf_token   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);

-- The guilds the bot is in (the bot keeps this up to date): a person sees a server on the web
-- only if both they and the bot are in it.
CREATE TABLE bot_guilds (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    joined_at  REAL NOT NULL
);

-- Generations started from the web: the API process follows them (and again after a restart),
-- and the bot shows them in their project's thread, as it does the API's.
CREATE TABLE web_generations (
    generation_id  TEXT PRIMARY KEY REFERENCES generations(id),
    user_id        TEXT NOT NULL,
    created_at     REAL NOT NULL
);
