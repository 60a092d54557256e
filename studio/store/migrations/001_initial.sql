-- Users, projects, generations, images and favourites.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,          -- "discord:<snowflake>", "cli:<login>", ...
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    thread_id   TEXT UNIQUE,               -- the Discord thread that hosts it, when there is one
    created_at  REAL NOT NULL
);

CREATE TABLE generations (
    id            TEXT PRIMARY KEY,        -- also the arq job id: a duplicate enqueue is a no-op
    project_id    TEXT NOT NULL REFERENCES projects(id),
    owner_id      TEXT NOT NULL REFERENCES users(id),
    recipe_json   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    worker_seconds REAL,                   -- the worker's own pipeline time
    load_seconds  REAL,                    -- model loading before it (0: the model was warm)
    grid_artifact TEXT
);
CREATE INDEX generations_by_owner ON generations(owner_id, created_at);
CREATE INDEX generations_by_status ON generations(status);

CREATE TABLE images (
    id              TEXT PRIMARY KEY,
    generation_id   TEXT NOT NULL REFERENCES generations(id),
    idx             INTEGER NOT NULL,      -- position in the batch, from 0
    artifact        TEXT NOT NULL,         -- sha256 of the PNG in the artifact store
    recipe_json     TEXT NOT NULL,         -- the single-image recipe that reproduces it
    seed            INTEGER NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    parent_image_id TEXT REFERENCES images(id),
    owner_id        TEXT NOT NULL REFERENCES users(id),
    public          INTEGER NOT NULL DEFAULT 1,
    created_at      REAL NOT NULL,
    UNIQUE (generation_id, idx)            -- at-least-once delivery records one set of images
);
CREATE INDEX images_by_parent ON images(parent_image_id);

CREATE TABLE favourites (
    user_id     TEXT NOT NULL REFERENCES users(id),
    image_id    TEXT NOT NULL REFERENCES images(id),
    created_at  REAL NOT NULL,
    PRIMARY KEY (user_id, image_id)
);
