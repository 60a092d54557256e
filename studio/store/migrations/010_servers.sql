-- Per-server scoping: one bot serves many Discord servers (guilds), and people can only open
-- jump links into servers they belong to, so everything community-facing (the feed, lineage,
-- remix channels, model samples) keeps to the server a generation was made in.
-- NULL: no server (the command line, an API key minted outside a server, rows made before this).
ALTER TABLE projects ADD COLUMN server TEXT;        -- the guild of the project's thread
ALTER TABLE generations ADD COLUMN server TEXT;     -- where it is shown: its thread's guild, else the requester's
ALTER TABLE images ADD COLUMN server TEXT;          -- copied from its generation when recorded (like public)
CREATE INDEX images_by_server ON images(server, created_at);
