-- Where front ends showed a generation (a Discord message id, say), so that reactions,
-- buttons and restarts can find it again, and so that nothing is delivered twice.
CREATE TABLE posts (
    message_id    TEXT PRIMARY KEY,
    channel_id    TEXT NOT NULL,
    generation_id TEXT NOT NULL REFERENCES generations(id),
    image_index   INTEGER,                 -- NULL: the whole batch (status / result / share message)
    kind          TEXT NOT NULL CHECK (kind IN ('status', 'image', 'share')),
    created_at    REAL NOT NULL
);
CREATE INDEX posts_by_generation ON posts(generation_id);

CREATE TABLE deliveries (
    generation_id     TEXT PRIMARY KEY REFERENCES generations(id),
    channel_id        TEXT NOT NULL,
    status_message_id TEXT,                -- NULL until the status message is posted
    delivered_at      REAL                 -- NULL until the result is posted
);

-- Private generations stay out of community feeds and remixes.
ALTER TABLE generations ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
