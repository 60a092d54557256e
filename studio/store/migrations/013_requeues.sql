-- A job that vanished from Redis (a restart from the append-only file loses up to its last second
-- of writes; a result may expire before anyone recorded it) is queued again from what the store
-- holds, a bounded number of times: these count those re-enqueues.
ALTER TABLE generations ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0;
ALTER TABLE loras ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0;
-- A training run's prepared dataset, so its job can be rebuilt: {"images": [artifact digests of
-- the PNGs at the training resolution], "captions": [...]}. NULL for runs recorded before this.
ALTER TABLE loras ADD COLUMN dataset_json TEXT;
