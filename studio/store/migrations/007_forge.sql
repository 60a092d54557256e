-- The Forge: LoRA training runs, each of which becomes a custom model when it is done.
CREATE TABLE loras (
    id            TEXT PRIMARY KEY,               -- also the training job's id
    owner_id      TEXT NOT NULL REFERENCES users(id),
    project_id    TEXT REFERENCES projects(id),
    server        TEXT,                           -- the community it was trained in
    name          TEXT NOT NULL,                  -- as typed
    name_key      TEXT NOT NULL,                  -- lower-cased: names are unique regardless of case
    version       INTEGER NOT NULL,
    trigger       TEXT NOT NULL,
    base_model    TEXT NOT NULL,
    family        TEXT NOT NULL,
    visibility    TEXT NOT NULL CHECK (visibility IN ('private', 'server')),
    params_json   TEXT NOT NULL,                  -- jobs.TrainingParams
    image_count   INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'retrying', 'done', 'failed', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    step          INTEGER NOT NULL DEFAULT 0,
    loss          REAL,
    error         TEXT,
    weights       TEXT,                           -- artifact digests, once done
    kohya         TEXT,
    sample        TEXT,
    comparison    TEXT,
    size_bytes    INTEGER,
    losses_json   TEXT,
    seconds       REAL,
    channel_id    TEXT,                           -- where the run is shown, and its status message
    message_id    TEXT,
    delivered_at  REAL,
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    deleted_at    REAL
);
CREATE INDEX loras_owner ON loras(owner_id, created_at);
-- One live model per name and version; failed, cancelled and deleted runs free their name.
CREATE UNIQUE INDEX loras_live_name ON loras(name_key, version)
    WHERE deleted_at IS NULL AND status NOT IN ('failed', 'cancelled');

-- Roles allowed to train in a server; none listed means everyone may.
CREATE TABLE training_roles (
    server      TEXT NOT NULL,
    role_id     TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (server, role_id)
);
