-- Training sets: a person's images on one server, gathered one message at a time with the
-- "Add to training set" message menu (which needs no privileged intent), for /train source: set.
CREATE TABLE training_set_items (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL REFERENCES users(id),
    server      TEXT NOT NULL DEFAULT '',  -- the guild it was gathered in ('' outside one)
    artifact    TEXT NOT NULL,             -- sha256 of the image in the artifact store (.img)
    caption     TEXT,                      -- the attachment's alt text: what else is in the picture
    created_at  REAL NOT NULL
);
CREATE INDEX training_set_items_by_owner ON training_set_items(owner_id, server, created_at);
