-- /settings: personal and per-server defaults for new generations (JSON of a Draft subset).
CREATE TABLE defaults (
    scope       TEXT NOT NULL CHECK (scope IN ('user', 'server')),
    owner       TEXT NOT NULL,             -- a user id, or a server (guild) id
    json        TEXT NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (scope, owner)
);
