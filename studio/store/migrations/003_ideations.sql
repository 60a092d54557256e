-- /ideate brainstorms: which message shows which concept and seed, so its buttons work later.
CREATE TABLE ideations (
    message_id  TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id),
    owner_id    TEXT NOT NULL REFERENCES users(id),
    concept     TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    created_at  REAL NOT NULL
);
