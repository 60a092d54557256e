-- Evolve by vote (/evolve): a grid per round, posted as a Discord poll; the winner of each round
-- is varied into the next grid. Portable SQL: it must also run on Postgres.
-- ``state`` moves generating -> polling -> voting -> generating (next round) ... -> done, each
-- step a compare-and-set on (state, round), so a poll's end advances the evolution once even
-- when its end is heard twice (Discord's end, our time limit, the owner's button, a restart).
CREATE TABLE evolutions (
    id              TEXT PRIMARY KEY,
    owner_id        TEXT NOT NULL,
    requester       TEXT NOT NULL,      -- JSON of who asked (id, name, server, roles), to start rounds
    server          TEXT,
    project_id      TEXT NOT NULL,
    thread_id       TEXT NOT NULL,
    prompt          TEXT NOT NULL,
    rounds          INTEGER NOT NULL,   -- 1..5
    minutes         INTEGER NOT NULL,   -- our time limit for each round's vote
    round           INTEGER NOT NULL,   -- the current round, from 1
    state           TEXT NOT NULL,      -- generating | polling | voting | done | failed
    generation_id   TEXT NOT NULL,      -- the current round's grid
    poll_message_id TEXT,               -- the current round's poll, once posted
    closes_at       REAL,               -- our time limit for the current round's vote
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX evolutions_by_generation ON evolutions(generation_id);
CREATE INDEX evolutions_by_state ON evolutions(state);

-- One row per round once its grid exists; the winner once its poll closed.
CREATE TABLE evolution_rounds (
    evolution_id    TEXT NOT NULL REFERENCES evolutions(id),
    round           INTEGER NOT NULL,
    generation_id   TEXT NOT NULL,
    poll_message_id TEXT,
    winner          INTEGER,            -- image index (0-based) that won; NULL while voting
    votes           TEXT,               -- JSON list of vote counts by image, as the poll closed
    closed_at       REAL,
    PRIMARY KEY (evolution_id, round)
);
