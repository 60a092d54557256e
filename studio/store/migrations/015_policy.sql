-- Content policy. Each server's prompt blocklist: whole words (stored lower-case) and regexes.
CREATE TABLE policy_rules (
    server TEXT NOT NULL,
    kind TEXT NOT NULL,            -- 'word' or 'regex'
    pattern TEXT NOT NULL,
    added_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (server, kind, pattern)
);
-- The worker's image safety classifier on each image: flagged images are only shown in channels
-- Discord marks age-restricted. safety_label/score: its top flagged label and that label's score.
ALTER TABLE images ADD COLUMN flagged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE images ADD COLUMN safety_label TEXT;
ALTER TABLE images ADD COLUMN safety_score REAL;
-- The grid with the flagged tiles blurred, for every other channel (NULL: nothing was flagged).
ALTER TABLE generations ADD COLUMN safe_grid_artifact TEXT;
