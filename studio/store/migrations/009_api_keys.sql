-- REST API bearer tokens, minted and revoked with /apikey. Only a token's sha256 is stored.
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL REFERENCES users(id),
    owner_name      TEXT NOT NULL,
    server          TEXT,                     -- the guild it was minted in
    name            TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,     -- sha256 hex of the token
    prefix          TEXT NOT NULL,            -- the token's first characters, for /apikey list
    webhook_secret  TEXT NOT NULL,            -- signs webhook bodies: must stay readable
    created_at      REAL NOT NULL,
    last_used_at    REAL,
    revoked_at      REAL
);
CREATE INDEX api_keys_owner ON api_keys(owner_id, created_at);

-- Generations started through the API: which key, and the webhook called when they end.
CREATE TABLE api_generations (
    generation_id     TEXT PRIMARY KEY REFERENCES generations(id),
    key_id            TEXT NOT NULL REFERENCES api_keys(id),
    webhook_url       TEXT,
    webhook_status    TEXT NOT NULL CHECK (webhook_status IN ('none', 'pending', 'delivered', 'failed')),
    webhook_attempts  INTEGER NOT NULL DEFAULT 0,
    webhook_error     TEXT,
    created_at        REAL NOT NULL
);
CREATE INDEX api_generations_webhooks ON api_generations(webhook_status) WHERE webhook_status = 'pending';
