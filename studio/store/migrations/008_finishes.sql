-- Finishing results (upscales, grades, exports): kept at full size, whatever Discord could show.
CREATE TABLE finishes (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL REFERENCES users(id),
    kind          TEXT NOT NULL CHECK (kind IN ('upscale', 'grade', 'export')),
    source_image  TEXT REFERENCES images(id),     -- the Atelier image it started from, if any
    source        TEXT NOT NULL,                  -- artifact digest of the input
    params_json   TEXT NOT NULL,                  -- factor, grade or export spec
    artifact      TEXT,                           -- digest of the result (NULL: not made yet)
    preview       TEXT,                           -- a grade's before/after, shown before Apply
    suffix        TEXT NOT NULL DEFAULT '.png',   -- the result's file type
    method        TEXT,                           -- upscale model id, or "resampling"
    width         INTEGER,
    height        INTEGER,
    applied_at    REAL,                           -- a grade: when it was applied
    created_at    REAL NOT NULL
);
CREATE INDEX finishes_owner ON finishes(owner_id, created_at);
