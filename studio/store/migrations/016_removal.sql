-- Removal (/atelier remove, /forget): a removed image's children keep working with no parent
-- link (foreign keys hold), and their lineage says their parent was removed, and when.
ALTER TABLE images ADD COLUMN parent_removed_at REAL;
