-- Mood boards: reference images collected in a project.
CREATE TABLE board_items (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id),
    artifact    TEXT NOT NULL,             -- sha256 of the image in the artifact store (.img)
    added_by    TEXT NOT NULL REFERENCES users(id),
    created_at  REAL NOT NULL
);
CREATE INDEX board_items_by_project ON board_items(project_id, created_at);
