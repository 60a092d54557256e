-- Community remix channels: public results are cross-posted there for anyone to remix.
CREATE TABLE remix_channels (
    server      TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (server, channel_id)
);
